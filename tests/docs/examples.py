"""Reading the examples out of the documentation's Markdown: fenced blocks, their titles (the
file a block holds), console sessions and curl commands with their expected output."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))

_FENCE = re.compile(
    r"(?:<!-- docs-example: (?P<directive>.*?) -->\n)?"
    r"^```(?P<lang>[\w-]*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^```\s*$", re.M | re.S)
_TITLE = re.compile(r'title="([^"]+)"')
LOCAL_SERVER = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    title: str | None
    body: str
    directive: list[str]


@dataclass(frozen=True)
class Command:
    argv: list[str]
    expected: list[str]


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        title = _TITLE.search(m["attrs"])
        directive = shlex.split(m["directive"]) if m["directive"] else []
        out.append(Block(path.name, text.count("\n", 0, m.start("lang")) + 1, m["lang"],
                         title.group(1) if title else None, m["body"], directive))
    return out


def console_commands(block: Block) -> list[Command]:
    """``$ command`` lines and the output lines after each."""
    commands: list[Command] = []
    for line in block.body.splitlines():
        if line.startswith("$ "):
            commands.append(Command(shlex.split(line[2:]), []))
        else:
            assert commands, f"{block.page}:{block.line}: output before the first `$ `"
            commands[-1].expected.append(line)
    return commands


def curl_example(block: Block) -> tuple[str, str] | None:
    """(command, expected output) of a shell block that asks the local server with curl."""
    if block.lang != "sh" or not block.body.startswith(f"curl -s {LOCAL_SERVER}/"):
        return None
    command = "\n".join(line for line in block.body.splitlines() if not line.startswith("#"))
    expected = "\n".join(line[2:] for line in block.body.splitlines() if line.startswith("# "))
    return command, expected
