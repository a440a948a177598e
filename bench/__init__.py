"""The lab's benchmarks, run on the host: each file starts the interpreters it measures itself.

    bench/run [options]           # strategies.py on the lab's gil and nogil venvs (__main__.py)
    bench/run pools [options]     # pools.py
    python bench/strategies.py    # every timeout strategy side by side, without Celery
    python bench/workloads.py     # the cancellation matrix: which C calls each strategy stops
    python3 bench/soak.py         # 1000 timeouts per strategy, the caller's resources watched
    python bench/pools.py         # the free-threaded payoff: Celery's threads pool on 3.14t

A file run by its path becomes the module `bench.<name>` (scripts/labctl/launch.py puts the
repository and scripts/ on PYTHONPATH); its children run as `python -m bench.<name>` too.
"""
