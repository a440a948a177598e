"""Results on disk: results/<run>/records.jsonl and friends, each written atomically.

The writer is app/kernel/results_io.py, shared with scripts/lab claims and bench/; the producer's
modules keep importing it from here.
"""

from __future__ import annotations

from app.kernel.results_io import read_jsonl, write_atomic, write_json, write_jsonl, write_text

__all__ = ["read_jsonl", "write_atomic", "write_json", "write_jsonl", "write_text"]
