"""Every results file of the lab is written here, atomically: temp file, fsync, rename.

records.jsonl, summary.txt, report.md (producer/), claims.json and claims.md (scripts/lab
claims), the bench and soak JSON (bench/): a reader, or a run killed mid-write, sees the old
file or the new one, never half of one (docs/reliability.md, "Results files"). A kill can
leave a dot-named temp file (`.claims.json.XXXX`) beside the target.

Standard library only, so the producer, the bench scripts and the host scripts import it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable


def write_atomic(path: Path | str, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_text(path: Path | str, text: str) -> None:
    write_atomic(Path(path), text.encode())


def write_json(path: Path | str, data: object, indent: int | None = 2, sort_keys: bool = False) -> None:
    """`json.dumps(data, indent=..., sort_keys=...)` and a newline, atomically."""
    write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n")


def write_jsonl(path: Path | str, records: Iterable[dict]) -> None:
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    write_atomic(Path(path), lines.encode())


def read_jsonl(path: Path | str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
