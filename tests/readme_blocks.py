"""The documentation's code blocks — the README and every page of ``docs/`` — and the markers that say how a test
runs them.

A fenced ``bash`` or ``python`` block runs as written, in a fresh folder, unless HTML comments right above its fence
(invisible on GitHub) say otherwise — one directive per comment:

``<!-- test: setup NAME -->``
    before the block, ``tests/readme_setups.py``'s ``NAME(folder)`` writes the files the block names and returns the
    variables a Python block uses (its placeholders: ``X_train``, ``epochs``, ...).
``<!-- test: continue -->``
    run in the previous block's folder and (Python) namespace.
``<!-- test: replace "OLD" "NEW" -->`` (JSON strings)
    run with ``OLD`` replaced by ``NEW`` — to make a documented full-size run small (fewer epochs, a tiny config
    instead of downloaded weights). Each replacement must match, so the README cannot drift from it.
``<!-- test: drop "TEXT" REASON -->``
    leave out the commands (bash) or lines (Python) that contain ``TEXT``, for the reason given (the network, a GPU).
``<!-- test: skip REASON -->``
    do not run the block; the reason is printed.
``<!-- test: usage COMMAND -->``
    a synopsis: every ``--option`` in it must appear in ``COMMAND --help``.

Fences without a language (program output, the layout tree) are text, not code.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def pages() -> list[Path]:
    """The README and the documentation's hand-written pages (generated pages and the gallery's are not here)."""
    skip = {"_build", "generated", "auto_examples"}
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if not skip & set(p.relative_to(ROOT / "docs").parts)
                  and p.name != "configuration.md")
    return [README, *docs]
DIRECTIVE = re.compile(r"<!--\s*test:\s*(\w+)\s*(.*?)\s*-->")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclasses.dataclass
class Block:
    line: int                     # of the opening fence, 1-based
    lang: str
    code: str
    section: str
    setup: str | None = None
    cont: bool = False
    replace: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    drop: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    skip: str | None = None
    usage: str | None = None
    ordinal: int = 1              # among the section's blocks
    page: str = "README.md"       # relative to the repository root

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.split("(")[0].lower()).strip("-")[:40]
        where = "" if self.page == "README.md" else Path(self.page).with_suffix("").as_posix().removeprefix("docs/") + ":"
        return f"{where}{slug}-{self.ordinal}"

    @property
    def where(self) -> str:
        return f"{self.page} line {self.line}"

    def runnable(self) -> str:
        """The code as the test runs it: replacements applied (each must match), dropped commands left out."""
        code = self.code
        for old, new in self.replace:
            if old not in code:
                raise AssertionError(f"{self.where}: the test's replacement {old!r} no longer matches the "
                                     "block; update the marker with the block")
            code = code.replace(old, new)
        if not self.drop:
            return code
        units = commands(code) if self.lang == "bash" else code.splitlines()
        for text, _ in self.drop:
            if not any(text in u for u in units):
                raise AssertionError(f"{self.where}: the test drops {text!r}, which the block no longer has")
        return "\n".join(u for u in units if not any(text in u for text, _ in self.drop))


def commands(code: str) -> list[str]:
    """Shell commands of a bash block: continuation lines joined, comments and blank lines left out."""
    out, current = [], ""
    for raw in code.splitlines():
        line = raw.rstrip()
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        out.append((current + line).strip())
        current = ""
    return out


def _directive(block: Block, name: str, arg: str, where: str) -> None:
    if name == "setup":
        block.setup = arg
    elif name == "continue":
        block.cont = True
    elif name == "replace":
        parts = [json.loads(s) for s in STRING.findall(arg)]
        if len(parts) != 2 or STRING.sub("", arg).strip():
            raise ValueError(f"{where}: 'replace' takes two JSON strings, got {arg!r}")
        block.replace.append((parts[0], parts[1]))
    elif name == "drop":
        m = STRING.match(arg)
        if not m or not arg[m.end():].strip():
            raise ValueError(f"{where}: 'drop' takes a JSON string and a reason, got {arg!r}")
        block.drop.append((json.loads(m.group(0)), arg[m.end():].strip()))
    elif name == "skip":
        if not arg:
            raise ValueError(f"{where}: 'skip' needs a reason")
        block.skip = arg
    elif name == "usage":
        block.usage = arg
    else:
        raise ValueError(f"{where}: unknown test directive {name!r}")


def parse(path: Path = README) -> list[Block]:
    """Every fenced block of one page with its directives."""
    page = path.resolve().relative_to(ROOT).as_posix()
    lines = path.read_text().splitlines()
    blocks, section, pending, i = [], "", [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            section = line.lstrip("#").strip()
        for m in DIRECTIVE.finditer(line):
            pending.append((m.group(1), m.group(2), i + 1))
        if line.startswith("```"):
            lang, start = line[3:].strip(), i
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            block = Block(start + 1, lang, "\n".join(body) + "\n", section,
                          ordinal=1 + sum(b.section == section for b in blocks), page=page)
            for name, arg, where in pending:
                _directive(block, name, arg, f"{page} line {where}")
            pending = []
            blocks.append(block)
        elif line.strip() and not DIRECTIVE.search(line):
            pending = []              # a directive belongs to the fence right below it
        i += 1
    return blocks


def parse_all() -> list[Block]:
    """Every fenced block of the README and of the documentation's pages."""
    return [b for p in pages() for b in parse(p)]
