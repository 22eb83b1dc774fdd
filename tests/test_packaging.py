"""What ships: the Dockerfile, the wheel (with the shipped policies inside), the default policy
set of ``pdp serve``, and the README's first commands."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pdp.settings import Settings, shipped_policies_dir
from tests.conftest import ROOT, free_port, stop_server
from tests.waiting import wait_until

DOCKERFILE = ROOT / "Dockerfile"
README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"

INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
                "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
                "HEALTHCHECK", "SHELL"}


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with their continuation lines joined; comments and blanks skipped."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, args = " ".join(p for p in pending if p).partition(" ")
        out.append(Instruction(start, keyword, args.strip()))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return out


def _exec_form(args: str) -> list[str]:
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value
    return ["/bin/sh", "-c", args]


def _flags_and_words(args: str) -> tuple[dict[str, str], list[str]]:
    words = shlex.split(args)
    flags = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    return flags, words


def _stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            stages.append([])
        assert stages, f"line {ins.line}: {ins.keyword} before the first FROM"
        stages[-1].append(ins)
    return stages


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


# -- Dockerfile --------------------------------------------------------------------------------


def test_the_parser_joins_continuations_and_skips_comments() -> None:
    parsed = parse_dockerfile("# syntax=docker/dockerfile:1\nFROM a AS b\n\nRUN x \\\n"
                              "  # inner comment\n  && y\nCMD [\"z\"]\n")
    assert [(i.line, i.keyword, i.args) for i in parsed] == [
        (2, "FROM", "a AS b"), (4, "RUN", "x && y"), (7, "CMD", '["z"]')]


def test_every_dockerfile_instruction_is_a_known_keyword(
        dockerfile: list[Instruction]) -> None:
    assert dockerfile
    for ins in dockerfile:
        assert ins.keyword in INSTRUCTIONS, f"line {ins.line}: unknown {ins.keyword!r}"
        assert ins.args, f"line {ins.line}: {ins.keyword} without arguments"


def test_the_image_is_built_in_at_least_two_named_stages(dockerfile: list[Instruction]) -> None:
    stages = _stages(dockerfile)
    assert len(stages) >= 2
    names = []
    for stage in stages:
        words = stage[0].args.split()
        if len(words) == 3 and words[1].upper() == "AS":
            names.append(words[2])
    for ins in dockerfile:
        if ins.keyword == "COPY":
            flags, _ = _flags_and_words(ins.args)
            if "from" in flags:
                assert flags["from"] in names, f"line {ins.line}: unknown stage {flags['from']}"


def test_the_final_stage_runs_as_a_user_that_is_not_root(dockerfile: list[Instruction]) -> None:
    final = _stages(dockerfile)[-1]
    users = [ins.args.split(":")[0] for ins in final if ins.keyword == "USER"]
    assert users, "the final stage sets no USER"
    assert users[-1] not in {"root", "0"}


def test_the_final_stage_exposes_and_listens_on_port_8080_on_all_interfaces(
        dockerfile: list[Instruction]) -> None:
    final = _stages(dockerfile)[-1]
    exposed = [p.split("/")[0] for i in final if i.keyword == "EXPOSE" for p in i.args.split()]
    assert "8080" in exposed
    env: dict[str, str] = {}
    for ins in final:
        if ins.keyword == "ENV":
            for word in shlex.split(ins.args):
                key, _, value = word.partition("=")
                env[key] = value
    assert env.get("PDP_HOST") == "0.0.0.0"
    assert env.get("PDP_PORT", "8080") == "8080"


def test_the_healthcheck_asks_for_health(dockerfile: list[Instruction]) -> None:
    checks = [i for i in _stages(dockerfile)[-1] if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    args = checks[0].args
    assert not args.upper().startswith("NONE")
    assert "CMD" in args.split()
    assert re.search(r"https?://(127\.0\.0\.1|localhost):8080/health\b", args)


def test_the_container_command_is_pdp_serve(dockerfile: list[Instruction]) -> None:
    final = _stages(dockerfile)[-1]
    entrypoint = [_exec_form(i.args) for i in final if i.keyword == "ENTRYPOINT"]
    cmd = [_exec_form(i.args) for i in final if i.keyword == "CMD"]
    command = (entrypoint[-1] if entrypoint else []) + (cmd[-1] if cmd else [])
    if command[:2] == ["/bin/sh", "-c"]:
        assert re.search(r"\bpdp serve\b", command[2])
    else:
        assert Path(command[0]).name == "pdp" and command[1] == "serve", command


def test_every_copied_source_exists_in_the_repository(dockerfile: list[Instruction]) -> None:
    missing = []
    for ins in dockerfile:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        flags, words = _flags_and_words(ins.args)
        if "from" in flags:
            continue
        sources = json.loads(ins.args)[:-1] if ins.args.startswith("[") else words[:-1]
        assert sources, f"line {ins.line}: {ins.keyword} without a source"
        for source in sources:
            if not list(ROOT.glob(source)):
                missing.append(source)
    assert missing == []


def test_the_image_installs_the_package_that_ships_the_policies(
        dockerfile: list[Instruction]) -> None:
    copied = {w for i in dockerfile if i.keyword == "COPY"
              for w in _flags_and_words(i.args)[1][:-1]}
    assert {"pyproject.toml", "pdp", "policies"} <= copied
    runs = " ".join(i.args for i in _stages(dockerfile)[-1] if i.keyword == "RUN")
    assert re.search(r"pip install .*\.whl", runs)


# -- the wheel --------------------------------------------------------------------------------


def _build_wheel(out: Path) -> Path:
    if importlib.util.find_spec("hatchling") is not None:
        isolation = ["--no-build-isolation"]
    else:
        isolation = []  # pip builds hatchling's environment from local sources only
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", *isolation,
         "--disable-pip-version-check", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    if done.returncode != 0 and "hatchling" in output and re.search(
            r"No matching distribution|Could not find a version|no-index", output):
        pytest.skip("the build backend hatchling cannot be installed offline here (no local "
                    "wheel of the pinned version); install it into the environment to run "
                    "this test")
    assert done.returncode == 0, output
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1
    return wheels[0]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_contains_the_shipped_policies(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for directory in sorted(p for p in (ROOT / "policies").iterdir() if p.is_dir()):
        for source in directory.iterdir():
            if source.is_file():
                assert f"pdp/_shipped_policies/{directory.name}/{source.name}" in names, source
    default = [n for n in names if re.fullmatch(r"pdp/_shipped_policies/default/[^/]+\.cedar", n)]
    assert default


def test_the_wheel_has_the_package_and_the_pdp_command_but_not_the_tests(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    assert "pdp/__init__.py" in names and "pdp/cli/__init__.py" in names
    assert not any(n.startswith("tests/") for n in names)
    for asset in ("playground.html", "assets/playground.js", "assets/playground.css"):
        assert f"pdp/http/playground_assets/{asset}" in names  # the page works once installed
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert re.search(r"^pdp = pdp\.cli:main$", archive.read(entry_points).decode(), re.M)


def test_the_unpacked_wheel_serves_its_own_shipped_policies(wheel: Path,
                                                            tmp_path: Path) -> None:
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    script = ("from pdp.settings import Settings; import pdp.cli; "
              "print(Settings().policies_dir()); raise SystemExit(pdp.cli.main(['check', "
              "str(Settings().policies_dir())]))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDP_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env={**env, "PYTHONPATH": str(
                              tmp_path / "site")})
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first == str(tmp_path / "site" / "pdp" / "_shipped_policies" / "default")
    assert done.stdout.splitlines()[1].startswith("ok: ")


# -- pdp serve without --policies --------------------------------------------------------------


def test_the_default_policy_directory_is_the_shipped_default_set(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PDP_POLICIES", raising=False)
    assert Settings().policies_dir() == shipped_policies_dir() / "default"
    assert shipped_policies_dir() == ROOT / "policies"


def test_pdp_serve_without_policies_serves_the_default_set(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDP_")}
    env.update(PYTHONPATH=str(ROOT), PDP_DECISION_LOG="off", PDP_DATA_DIR=str(tmp_path / "d"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pdp", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                return httpx.get(base + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=30, message="pdp serve becoming healthy")
        status = httpx.get(base + "/status", timeout=5).json()
        assert Path(status["policy_set"]["directory"]) == (ROOT / "policies" / "default").resolve()
        decision = httpx.post(base + "/access/v1/evaluation", timeout=5, json={
            "subject": {"type": "user", "id": "bob"}, "action": {"name": "view"},
            "resource": {"type": "document", "id": "roadmap"}}).json()
        assert decision == {"decision": True}
    finally:
        stop_server(proc)


# -- README and Makefile -----------------------------------------------------------------------


def shell_commands(markdown: str) -> list[str]:
    """Commands of the fenced shell blocks, in order (prompts, comments, output dropped)."""
    commands: list[str] = []
    for block in re.finditer(r"^```(sh|bash|shell|console)\s*\n(.*?)^```", markdown,
                             re.M | re.S):
        console = block.group(1) == "console"
        for line in block.group(2).splitlines():
            line = line.strip()
            if console:
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def make_targets(makefile: str) -> set[str]:
    targets: set[str] = set()
    for m in re.finditer(r"^([A-Za-z0-9_.%/$()-][^:=\s]*(?:\s+[^:=\s]+)*)\s*:(?!=)", makefile,
                         re.M):
        targets.update(m.group(1).split())
    return targets


def test_shell_commands_and_make_targets_are_read_as_expected() -> None:
    md = "x\n```sh\nmake run  # serve\n# note\nmake test\n```\n```console\n$ ls\nout\n```\n"
    assert shell_commands(md) == ["make run", "make test", "ls"]
    assert make_targets("a b: c\nX := 1\n.PHONY: a\nrun: $(STAMP)\n\tcmd: x\n") == {
        "a", "b", ".PHONY", "run"}


def test_the_readme_starts_with_two_commands_that_are_make_targets() -> None:
    if not README.is_file():
        pytest.skip("README.md has not been written yet")
    commands = shell_commands(README.read_text())[:2]
    assert len(commands) == 2
    targets = make_targets(MAKEFILE.read_text())
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "make" and len(words) == 2, command
        assert words[1] in targets, f"{command}: no such Makefile target"


@pytest.mark.slow
def test_the_image_builds_where_a_container_engine_is_available(tmp_path: Path) -> None:
    engine = next((e for e in ("docker", "podman") if shutil.which(e)), None)
    if engine is None or subprocess.run([engine, "info"], capture_output=True, timeout=30,
                                        check=False).returncode != 0:
        pytest.skip("no working docker or podman: the image was NOT built (its build steps "
                    "are checked by the other Dockerfile tests)")
    done = subprocess.run([engine, "build", "--quiet", "--tag", "authzen-pdp-test", str(ROOT)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    version = subprocess.run([engine, "run", "--rm", "authzen-pdp-test", "--version"],
                             capture_output=True, text=True, timeout=120, check=False)
    assert version.stdout.startswith("pdp "), version.stderr


def test_make_run_installs_the_runtime_dependencies_only() -> None:
    makefile = MAKEFILE.read_text()
    recipes = {m.group(1): m.group(2) for m in re.finditer(
        r"^(\S[^:\n]*):[^\n]*\n((?:\t[^\n]*\n)*)", makefile, re.M)}
    run_line = re.search(r"^run:(.*)$", makefile, re.M)
    assert run_line is not None and run_line.group(1).split() == ["$(STAMP)"]
    assert "-e ." in recipes["$(STAMP)"] and "[dev]" not in recipes["$(STAMP)"]
    assert '-e ".[dev]"' in recipes["$(DEV)"]
    for target in ("lint", "typecheck", "policies", "pytest", "docs"):
        line = re.search(rf"^{target}:(.*)$", makefile, re.M)
        assert line is not None and "$(DEV)" in line.group(1).split(), target
