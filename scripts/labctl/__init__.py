"""Host-side tooling of the lab: building interpreters, running the lab natively, Docker bootstrap.

Runs on any CPython >= 3.10 with the standard library only, so it works before any venv exists.
The worker side's standard-library modules (app.kernel.defaults, app.kernel.axes, app.kernel.envparse, app.kernel.procfs)
are shared with it: the repository root goes on sys.path here, once.
"""

import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
