"""`python -m labctl COMMAND ...`: scripts/lab's commands (cli.py)."""

from .cli import main

raise SystemExit(main())
