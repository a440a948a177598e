"""One table renderer for every table the lab prints or writes: plain text and markdown.

Standard library only, so the producer, the bench scripts (their parents run on any python3)
and the host scripts (scripts/labctl) import it as the workers do.

- text: left-aligned columns padded to their widest cell, joined by two spaces, a line of
  dashes under the headers (summary.txt, the bench tables on a terminal);
- markdown: `| a | b |`, then `|---|---|`, then one `| ... |` line per row, cells unpadded
  (report.md, claims.md, bench/soak.py's table).

Cells are written as given (`str()` of each): a markdown caller escapes `|` in free text itself.
"""

from __future__ import annotations

from typing import Iterable, Sequence


def render(headers: Sequence[object], rows: Iterable[Sequence[object]], markdown: bool = False) -> str:
    """The table as text (two-space columns, dashes under the headers) or markdown, without a final newline."""
    head = [str(h) for h in headers]
    body = [[str(cell) for cell in row] for row in rows]
    for n, cells in enumerate(body, 1):
        if len(cells) != len(head):
            raise ValueError(f"table row {n} has {len(cells)} cells for {len(head)} headers: {cells!r}")
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max([len(h)] + [len(cells[i]) for cells in body]) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*cells) for cells in body]
    return "\n".join(lines)
