"""Every reload trigger takes the one path, :meth:`Reloader.reload`: the directory watcher,
SIGHUP, ``POST /admin/reload``, the generation file and a change of the template links stored
with the entities. Each installs a new generation of what is served, counted by the same
statistics and logged by the same line."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.entities import InMemoryEntityStore
from pdp.entities.manage_links import LinkAdmin
from pdp.http import create_app
from pdp.policies.compiled import CompiledPolicySet, compile_directory
from pdp.policies.holder import PolicyHolder
from pdp.service import PDPService
from pdp.service.reload import STORED_LINKS_CHANGED, GenerationFile, Reloader
from pdp.settings import Settings
from tests.conftest import fresh_data_dir
from tests.service.test_reload import WatchTicks
from tests.waiting import eventually, wait_until

TOKEN = "admin-secret"
SCHEMA = """\
entity User;
entity Doc;
action view appliesTo { principal: User, resource: Doc };
"""
SHARE = """\
@id("share")
permit (principal == ?principal, action == Action::"view", resource == ?resource);
"""
VIEW = EvaluationRequest(Entity("User", "alice"), Action("view"), Entity("Doc", "report"))
LINK = {"template_id": "share", "link_id": "alice-report",
        "args": {"?principal": 'User::"alice"', "?resource": 'Doc::"report"'}}


def policy_set(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "p.cedar").write_text(SHARE)
    (directory / "s.cedarschema").write_text(SCHEMA)
    return directory


def add_policy(directory: Path, name: str) -> None:
    (directory / f"{name}.cedar").write_text(
        f'@id("{name}")\nforbid (principal, action, resource == Doc::"{name}");\n')


def service(directory: Path, *, watch: bool, **overrides: Any) -> PDPService:
    overrides.setdefault("data_dir", fresh_data_dir(directory.name))
    return PDPService.from_settings(Settings(
        policies=directory, decision_log="off", admin_token=TOKEN, watch=watch,
        reload_settle=0.0, poll_interval=0.05, **overrides))


@pytest.fixture
def reload_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="pdp.policies"):
        yield caplog


def installed(caplog: pytest.LogCaptureFixture, generation: int, trigger: str) -> bool:
    """The reload's one log line for this generation and trigger."""
    return any(r.name == "pdp.policies" and f"generation {generation}; {trigger})"
               in r.getMessage() for r in caplog.records)


def went_through_the_reload(svc: PDPService, caplog: pytest.LogCaptureFixture, before: int,
                            trigger: str) -> None:
    stats = svc.reloader.stats()
    assert stats.generation == before + 1
    assert stats.last_trigger == trigger
    assert stats.last_reload_at is not None
    assert installed(caplog, before + 1, trigger)
    assert svc.status()["reload"]["generation"] == before + 1


def test_a_changed_file_seen_by_the_watcher_goes_through_the_reload(
        tmp_path: Path, reload_log: pytest.LogCaptureFixture) -> None:
    directory = policy_set(tmp_path / "set")
    ticks = WatchTicks(tmp_path / "generation")  # counts the watcher's passes
    holder = PolicyHolder(compile_directory(directory))
    reloader = Reloader(holder, InMemoryEntityStore(), directory, generation=ticks,
                        poll_interval=0.05, settle=0.0)
    reloader.start()
    try:
        wait_until(lambda: ticks.ticks > 0, message="the watcher being up")
        add_policy(directory, "secret")
        # the reload's log line is its last step (the generation counts before it)
        wait_until(lambda: installed(reload_log, 1, "files changed"),
                   message="the watcher's reload")
        stats = reloader.stats()
        assert (stats.generation, stats.last_trigger) == (1, "files changed")
        assert installed(reload_log, 1, "files changed")
        assert holder.current.policy("secret") is not None
    finally:
        reloader.close()


@pytest.mark.asyncio
async def test_sighup_goes_through_the_reload(
        tmp_path: Path, reload_log: pytest.LogCaptureFixture) -> None:
    directory = policy_set(tmp_path / "set")
    svc = service(directory, watch=False)
    before = svc.reloader.stats().generation
    svc.start()  # on the event loop in the main thread: SIGHUP and SIGUSR1 are handled
    try:
        handler = signal.getsignal(signal.SIGHUP)
        assert handler not in (signal.SIG_DFL, signal.SIG_IGN, None)  # else SIGHUP kills us
        add_policy(directory, "secret")
        os.kill(os.getpid(), signal.SIGHUP)

        async def advanced() -> bool:  # (the log line is the reload's last step)
            return installed(reload_log, before + 1, "SIGHUP")

        await eventually(advanced, message="the SIGHUP reload")
        went_through_the_reload(svc, reload_log, before, "SIGHUP")
    finally:
        svc.close()
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL  # closing gave the signal back


@pytest.mark.asyncio
async def test_the_admin_api_goes_through_the_reload(
        tmp_path: Path, reload_log: pytest.LogCaptureFixture) -> None:
    directory = policy_set(tmp_path / "set")
    svc = service(directory, watch=False)
    before = svc.reloader.stats().generation
    add_policy(directory, "secret")
    transport = httpx.ASGITransport(app=create_app(svc))
    async with httpx.AsyncClient(transport=transport, base_url="http://pdp.test") as client:
        answer = await client.post("/admin/reload",
                                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == svc.policies.current.version
    went_through_the_reload(svc, reload_log, before, "POST /admin/reload")


def test_the_generation_file_goes_through_the_reload(
        tmp_path: Path, reload_log: pytest.LogCaptureFixture) -> None:
    directory = policy_set(tmp_path / "set")
    data = fresh_data_dir("generation")
    svc = service(directory, watch=False, data_dir=data)
    before = svc.reloader.stats().generation
    svc.start()
    try:
        add_policy(directory, "secret")
        GenerationFile(data / "policy-generation").bump()  # what another worker does
        wait_until(lambda: installed(reload_log, before + 1, "generation file"),
                   message="the generation file's reload")
        went_through_the_reload(svc, reload_log, before, "generation file")
    finally:
        svc.close()


def test_a_link_stored_by_another_replica_goes_through_the_reload(
        tmp_path: Path, reload_log: pytest.LogCaptureFixture) -> None:
    directory = policy_set(tmp_path / "set")
    url = f"sqlite:///{tmp_path / 'entities.db'}"
    served = service(directory, watch=False, database_url=url)
    other = service(directory, watch=False, database_url=url)
    before = served.reloader.stats().generation
    assert served.engine.decide([VIEW])[0].allowed is False
    served.start()
    try:
        store = other.store.administered()
        assert store is not None
        LinkAdmin(store, lambda: other.policies.current).add([LINK])
        wait_until(lambda: installed(reload_log, before + 1, STORED_LINKS_CHANGED),
                   message="the stored link's reload")
        went_through_the_reload(served, reload_log, before, STORED_LINKS_CHANGED)
        assert served.policies.current is served.policies.current  # the set itself is kept
        assert "alice-report" in served.engine.links()
        assert served.engine.decide([VIEW])[0].allowed is True
    finally:
        served.close()
        other.close()


def test_a_reload_that_changes_neither_the_set_nor_the_links_installs_nothing(
        tmp_path: Path, reload_log: pytest.LogCaptureFixture) -> None:
    svc = service(policy_set(tmp_path / "set"), watch=False)
    version = svc.policies.current.version
    assert svc.reloader.reload("manual") is svc.policies.current
    assert svc.reloader.reload(STORED_LINKS_CHANGED) is svc.policies.current
    stats = svc.reloader.stats()
    assert (stats.generation, stats.reloads, stats.unchanged) == (0, 0, 1)
    assert svc.policies.current.version == version
    assert not any("generation" in r.getMessage() for r in reload_log.records)
    assert json.loads(json.dumps(svc.status()["reload"]))["generation"] == 0


def test_a_links_change_queued_after_a_file_change_does_not_replace_it(
        tmp_path: Path) -> None:
    """The directory's reload serves the store's links too, so it absorbs a links change
    queued behind it; the reverse would lose the file change."""
    directory = policy_set(tmp_path / "set")
    entered, gate = threading.Event(), threading.Event()
    compiled: list[str] = []

    def slow_compile(path: Path, previous: CompiledPolicySet | None) -> Any:
        entered.set()
        gate.wait(5)
        compiled.append("compiled")
        return compile_directory(path, previous)

    holder = PolicyHolder(compile_directory(directory))
    reloader = Reloader(holder, InMemoryEntityStore(), directory, watch=False, settle=0.0,
                        compile=slow_compile)
    add_policy(directory, "secret")
    reloader.request("first")
    assert entered.wait(5)
    reloader.request("files changed")
    reloader.request(STORED_LINKS_CHANGED)  # would replace the queued file reload
    gate.set()
    # "files changed" is only ever the last trigger if its reload ran
    wait_until(lambda: reloader.stats().last_trigger == "files changed"
               and len(compiled) == 2, message="the queued file reload")
    assert holder.current.policy("secret") is not None
