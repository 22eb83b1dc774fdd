"""Every example of the documentation runs as shown: the files of a walkthrough are written, its
``$ pdp ...`` commands are run and print what the page says, and every curl asking the local
server gets the answer the page shows (line numbers included)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from pdp.cli import main
from tests.conftest import POLICIES, ROOT, Server, launch_server
from tests.docs.examples import (
    LOCAL_SERVER,
    PAGES,
    Block,
    blocks,
    console_commands,
    curl_example,
)

Capture = pytest.CaptureFixture[str]
WALKTHROUGHS = [p for p in PAGES if any(b.lang == "console" for b in blocks(p))]


def run_console_block(block: Block, workdir: Path, capsys: Capture) -> None:
    restore: tuple[Path, str] | None = None
    if block.directive:
        verb, name, old, new = block.directive
        assert verb == "replace", f"{block.page}:{block.line}: unknown directive {verb}"
        path = workdir / name
        text = path.read_text()
        old, new = old.replace("\\n", "\n"), new.replace("\\n", "\n")
        assert old in text, f"{block.page}:{block.line}: {old!r} is not in {name}"
        restore = (path, text)
        path.write_text(text.replace(old, new, 1))
    try:
        for command in console_commands(block):
            assert command.argv[0] == "pdp", (
                f"{block.page}:{block.line}: only `pdp` commands run in examples")
            capsys.readouterr()
            main(command.argv[1:])
            out, err = capsys.readouterr()
            got = out.splitlines() + err.splitlines()
            assert got == command.expected, (
                f"{block.page}:{block.line}: `{' '.join(command.argv)}` printed:\n"
                + "\n".join(got))
    finally:
        if restore is not None:
            restore[0].write_text(restore[1])


@pytest.mark.parametrize("page", WALKTHROUGHS, ids=[p.name for p in WALKTHROUGHS])
def test_every_console_session_of_a_page_prints_what_the_page_shows(
        page: Path, tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PDP_"):
            monkeypatch.delenv(name)
    ran = 0
    for block in blocks(page):
        if block.title is not None:  # a file of the walkthrough, written where it says
            target = tmp_path / block.title
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.body)
        elif block.lang == "console":
            run_console_block(block, tmp_path, capsys)
            ran += 1
    assert ran >= 1


def test_the_walkthrough_of_writing_policies_is_among_the_pages_run() -> None:
    assert "writing-policies.md" in [p.name for p in WALKTHROUGHS]


CURLS = [(page.name, block.line, example) for page in [*PAGES, ROOT / "README.md"]
         for block in blocks(page) if (example := curl_example(block)) is not None]


@pytest.fixture(scope="module")
def default_server() -> object:
    server: Server = launch_server(POLICIES / "default", "--log-level", "warning")
    try:
        yield server
    finally:
        server.stop()


def test_the_docs_have_curl_examples_against_the_local_server() -> None:
    assert len(CURLS) >= 3
    assert {"README.md", "api.md"} <= {page for page, _, _ in CURLS}


@pytest.mark.parametrize(("page", "line", "example"), CURLS,
                         ids=[f"{page}:{line}" for page, line, _ in CURLS])
def test_a_curl_example_gets_the_answer_the_page_shows(
        page: str, line: int, example: tuple[str, str], default_server: Server) -> None:
    command, expected = example
    command = command.replace(LOCAL_SERVER, default_server.base)
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(expected), f"{page}:{line}: {done.stdout}"


def test_a_title_names_a_relative_file() -> None:
    for page in PAGES:
        for block in blocks(page):
            if block.title is not None:
                assert not block.title.startswith("/") and ".." not in block.title, (
                    f"{page.name}:{block.line}")
                assert re.fullmatch(r"[\w./-]+", block.title)
