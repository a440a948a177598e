"""Every relative link in README.md, README.ja.md and docs/*.md resolves, and the README starts with the two commands."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

import labtest

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
LINK = re.compile(r"\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...
THE_TWO_COMMANDS = ["scripts/lab quick", "scripts/test"]


def documents() -> list[Path]:
    """The files whose links are checked: both READMEs and every page under docs/."""
    return [labtest.REPO / "README.md", labtest.REPO / "README.ja.md", *sorted((labtest.REPO / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text, lowercased, punctuation and symbols dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors on its text
    kept = [c for c in text.lower() if c in " -_" or unicodedata.category(c)[0] in "LNM"]
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, with GitHub's -1, -2 suffixes for repeated headings."""
    seen: dict[str, int] = {}
    out = set()
    for match in HEADING.finditer(FENCE.sub("", path.read_text())):
        base = slug(match.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    """Each relative link in `path` (outside code blocks) whose file, or whose heading anchor, does not exist."""
    problems = []
    for target in LINK.findall(FENCE.sub("", path.read_text())):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{path.name}: ({target}): no such file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{path.name}: ({target}): no heading #{anchor} in {dest.name}")
    return problems


def first_code_block(path: Path) -> list[str]:
    """The lines of the first fenced code block of a markdown file."""
    match = FENCE.search(path.read_text())
    assert match, f"{path.name} has no code block"
    return match.group(0).split("\n")[1:-1]


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(labtest.REPO)))
def test_every_relative_link_resolves(path):
    """Every `](file)` and `](file#anchor)` of the page points at an existing file and, for an anchor, an existing heading."""
    assert path.exists()
    assert broken_links(path) == []


def test_the_checker_finds_a_broken_link(tmp_path):
    """A missing file, a missing heading and a repeated heading's suffix are told apart from links that resolve."""
    (tmp_path / "other.md").write_text("# Other\n\n## Tear down\n\n## Tear down\n\n## Orphans and `scripts/lab down`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Settings (env overrides)\n\n"
        "[ok](other.md) [ok](other.md#tear-down) [ok](other.md#tear-down-1) [ok](other.md#orphans-and-scriptslab-down)\n"
        "[ok](#settings-env-overrides) [ok](https://example.org/nowhere.md)\n"
        "[missing file](nope.md) [missing heading](other.md#nope) [missing here](#nope)\n"
        "```\n[in a code block](not-checked.md)\n```\n"
    )
    problems = broken_links(page)
    assert len(problems) == 3, problems
    assert "(nope.md)" in problems[0] and "(other.md#nope)" in problems[1] and "(#nope)" in problems[2]


@pytest.mark.parametrize("name", ["README.md", "README.ja.md"])
def test_the_readme_starts_with_the_two_commands(name):
    """The README's first code block is exactly `scripts/lab quick` and `scripts/test`, each with at most a comment."""
    lines = first_code_block(labtest.REPO / name)
    commands = [re.sub(r"\s+#.*$", "", line).strip() for line in lines]
    assert commands == THE_TWO_COMMANDS, lines
