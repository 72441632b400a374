"""Every relative link in the repository's Markdown leads somewhere: the file exists and, for `file.md#anchor` or
`#anchor`, a heading of the target makes that anchor by GitHub's rule. External links are not checked (no network).
"""

from __future__ import annotations

import functools
import re
import subprocess
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.helpers.repos import REPO

# Runs' and the environment's folders: their Markdown is not the project's.
SKIPPED = {".venv", "mlruns", "multirun", "data", "outputs", "node_modules"}

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?:[^`]|(?!\1)`)+?\1")
ATX_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*<?([^\s>]+)>?", re.MULTILINE)
HTML_LINK = re.compile(r"\b(?:href|src)=\"([^\"]+)\"")
HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:name|id)=\"([^\"]+)\"")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def markdown_files(root: Path) -> list[Path]:
    """The Markdown files git tracks or would track (not ignored), outside the SKIPPED folders."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.md"],
        cwd=root,
        capture_output=True,
        check=True,
        text=True,
    )
    names = [n for n in listed.stdout.split("\0") if n and n.split("/")[0] not in SKIPPED]
    return sorted(root / n for n in names if (root / n).is_file())


def prose_lines(text: str) -> list[str | None]:
    """The lines of a Markdown text, None for those of fenced code blocks (fences included)."""
    lines: list[str | None] = []
    fence = None
    for line in text.splitlines():
        opened = FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)
        elif fence is not None and opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
            fence = None
        elif fence is None:
            lines.append(line)
            continue
        lines.append(None)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (links and images as their text, HTML tags dropped) in lower case,
    every character but letters, digits, `_` (a word character to GitHub), hyphens and spaces dropped, each space
    a hyphen."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LMN")
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a Markdown text defines: one per heading (ATX or setext; a repeated one gets -1, -2, …) and
    each HTML `<a name=…>` or `<a id=…>`."""
    lines = prose_lines(text)
    headings = []
    for i, line in enumerate(lines):
        previous = lines[i - 1] if i else None
        if line is None:
            continue
        if atx := ATX_HEADING.match(line):
            headings.append(atx.group(1) or "")
        elif SETEXT_UNDERLINE.match(line) and previous and previous.strip() and not ATX_HEADING.match(previous):
            headings.append(previous.strip())
    found, seen = set(), {}
    for heading in headings:
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    found.update(m.group(1) for line in lines if line for m in HTML_ANCHOR.finditer(line))
    return found


@functools.cache
def anchors_of(path: Path) -> frozenset[str]:
    return frozenset(anchors(path.read_text(encoding="utf-8")))


def link_targets(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link and image in a Markdown text, outside code; a link's text may run over
    several lines."""
    prose = "\n".join(line or "" for line in prose_lines(text))
    prose = CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), prose)
    found = sorted(
        (m.start(), m.group(1))
        for pattern in (INLINE_LINK, REFERENCE_DEFINITION, HTML_LINK)
        for m in pattern.finditer(prose)
    )
    return [(prose.count("\n", 0, start) + 1, target) for start, target in found]


def broken_links(path: Path, root: Path) -> list[str]:
    """`<file>:<line>: <target>: <why>` for each relative link of a Markdown file that leads nowhere: a file or
    folder that does not exist (or is outside `root`), or an anchor that no heading of the Markdown target makes."""
    problems = []
    where = path.relative_to(root).as_posix()
    for number, target in link_targets(path.read_text(encoding="utf-8")):
        if not target or SCHEME.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        file_part = unquote(file_part)
        if not file_part:
            linked = path
        elif file_part.startswith("/"):
            linked = (root / file_part.lstrip("/")).resolve()
        else:
            linked = (path.parent / file_part).resolve()
        if not linked.is_relative_to(root.resolve()):
            problems.append(f"{where}:{number}: {target}: outside the repository")
        elif not linked.exists():
            problems.append(f"{where}:{number}: {target}: no such file or folder")
        elif anchor and linked.suffix == ".md" and unquote(anchor) not in anchors_of(linked):
            problems.append(f"{where}:{number}: {target}: no heading of {linked.name} makes #{anchor}")
    return problems


# The checker itself, on cases worked by hand.


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("What a run produces", "what-a-run-produces"),
        (
            "The accuracy-per-FLOP frontier: how the default network was chosen (#20)",
            "the-accuracy-per-flop-frontier-how-the-default-network-was-chosen-20",
        ),
        (
            "1. Training throughput — `bench/train_throughput.py --ladder` (goal: ≥ 1.5× a plain fit)",
            "1-training-throughput--benchtrain_throughputpy---ladder-goal--15-a-plain-fit",
        ),
        ("Offline, or with [a local mirror](data.md)", "offline-or-with-a-local-mirror"),
        ("Données **à jour**", "données-à-jour"),
    ],
)
def test_a_headings_anchor_is_githubs(heading, anchor):
    assert slug(heading) == anchor


def test_repeated_headings_are_numbered_and_code_is_not_a_heading():
    text = '# Notes\n\n## Notes\n\n```bash\n# Notes\n```\n\nNotes\n-----\n\nSetext\n======\n<a name="here"></a>\n'
    assert anchors(text) == {"notes", "notes-1", "notes-2", "setext", "here"}


def test_a_link_to_a_missing_file_or_heading_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Two words\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(
        "# Top\n\n"
        "[fine](docs/guide.md#two-words) [here](#top) [folder](docs/) [web](https://example.com/x.md#nowhere)\n"
        "[gone](docs/missing.md) [no such heading](docs/guide.md#three-words)\n"
        "![picture](docs/picture.png)\n\n"
        "`[in code](nowhere.md)`\n\n```\n[in a block](nowhere.md)\n```\n\n"
        "[ref]: docs/guide.md#guide\n[bad ref]: ../elsewhere.md\n\n"
        "A [link over\ntwo lines](docs/guide.md#two-lines) and `code over\ntwo lines [x](nowhere.md)`.\n",
        encoding="utf-8",
    )
    assert broken_links(tmp_path / "README.md", tmp_path) == [
        "README.md:4: docs/missing.md: no such file or folder",
        "README.md:4: docs/guide.md#three-words: no heading of guide.md makes #three-words",
        "README.md:5: docs/picture.png: no such file or folder",
        "README.md:14: ../elsewhere.md: outside the repository",
        "README.md:16: docs/guide.md#two-lines: no heading of guide.md makes #two-lines",
    ]


# The repository's own Markdown.

MARKDOWN = markdown_files(REPO)


def test_the_documentation_is_found():
    names = {p.relative_to(REPO).as_posix() for p in MARKDOWN}
    assert {"README.md", "docs/frontier.md", "bench/RESULTS.md"} <= names


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_leads_somewhere(path):
    broken = broken_links(path, REPO)
    assert not broken, "links that lead nowhere:\n" + "\n".join(broken)


def test_the_readme_stays_short():
    """What it is, the two commands, what a run produces and the map of the code; the rest is in docs/."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move what is not for a first reading to docs/"


def test_every_doc_is_linked_from_the_readme():
    linked = {
        (REPO / unquote(target.partition("#")[0])).resolve()
        for _, target in link_targets((REPO / "README.md").read_text(encoding="utf-8"))
    }
    unlinked = sorted(p.name for p in (REPO / "docs").glob("*.md") if p.resolve() not in linked)
    assert not unlinked, f"docs/ files the README does not link to: {unlinked}"
