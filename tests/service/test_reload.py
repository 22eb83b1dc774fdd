"""Hot reload: atomic swaps under load, rejected edits, the watcher, the generation file that
carries a reload to every worker, entities.json reaching the store, and signals to a real
server."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.engine import Engine, EngineOptions, version
from pdp.entities import InMemoryEntityStore, StoredEntity
from pdp.errors import StoreUnavailable
from pdp.http import create_app
from pdp.policies.compiled import CompiledPolicySet, compile_directory
from pdp.policies.holder import PolicyHolder
from pdp.service.reload import GenerationFile, Reloader
from tests.conftest import make_service, start_server, stop_server
from tests.waiting import wait_until

TOKEN = "reload-test-token"


def policy(name: str, extra: str = "") -> str:
    return f'@id("{name}")\npermit (principal, action, resource){extra};\n'


def entities_json(*ids: str) -> str:
    return "[" + ",".join(f'{{"uid": {{"type": "User", "id": "{i}"}}, "attrs": {{}}, '
                          f'"parents": []}}' for i in ids) + "]"


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    wait_until(predicate, timeout=timeout)
    return True


def setup(directory: Path, text: str, *, store: Any = None, cache: int = 0,
          **options: Any) -> tuple[PolicyHolder, Engine, Reloader]:
    directory.mkdir(exist_ok=True)
    (directory / "p.cedar").write_text(text)
    holder = PolicyHolder(compile_directory(directory))
    store = store if store is not None else InMemoryEntityStore()
    engine = Engine(holder, store, EngineOptions(decision_cache_bytes=cache * 600))
    options.setdefault("settle", 0.0)
    return holder, engine, Reloader(holder, store, directory, **options)


def ask(engine: Engine, n: int = 3) -> list[tuple[bool, tuple[str, ...]]]:
    reqs = [EvaluationRequest(Entity("User", f"u{i}"), Action("read"), Entity("Doc", "d"))
            for i in range(n)]
    return [(d.allowed, d.reasons) for d in engine.decide(reqs)]


@pytest.mark.parametrize("cache", [0, 64])
def test_reloading_in_a_loop_while_requests_run_never_fails_a_request(
        tmp_path: Path, cache: int) -> None:
    """Every batch is decided wholly by the old set or wholly by the new one."""
    sets = [policy("old"), policy("new")]
    holder, engine, reloader = setup(tmp_path, sets[0], cache=cache)
    stop = threading.Event()
    seen: set[tuple[tuple[bool, tuple[str, ...]], ...]] = set()
    errors: list[BaseException] = []

    def decide() -> None:
        try:
            while not stop.is_set():
                seen.add(tuple(ask(engine)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=decide) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            (tmp_path / "p.cedar").write_text(sets[(i + 1) % 2])
            assert reloader.reload("test") is not None
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    assert seen <= {((True, ("old",)),) * 3, ((True, ("new",)),) * 3}
    assert len(seen) == 2
    assert reloader.stats().reloads == 20 and reloader.stats().failures == 0


@pytest.mark.asyncio
async def test_an_invalid_edit_keeps_the_last_good_set_and_status_shows_why(
        tmp_path: Path) -> None:
    (tmp_path / "p.cedar").write_text(policy("good"))
    service = make_service(tmp_path, entity_store="memory", admin_token=TOKEN)
    app = create_app(service)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {"subject": {"type": "User", "id": "u"}, "action": {"name": "read"},
            "resource": {"type": "Doc", "id": "d"}}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://pdp.test") as client:
        good = (await client.get("/status")).json()["policy_set"]["version"]
        (tmp_path / "p.cedar").write_text(policy("good") + "\npermit (principal, action, "
                                                           "resource) whenn { true };\n")
        answer = await client.post("/admin/reload", headers=auth)
        assert answer.status_code == 422
        diagnostics = answer.json()["diagnostics"]
        assert diagnostics[0]["file"] == "p.cedar" and diagnostics[0]["line"] == 4
        status = (await client.get("/status")).json()
        assert status["policy_set"]["version"] == good
        assert status["last_reload_error"]["diagnostics"] == diagnostics
        assert status["reload"]["failures"] == 1
        assert (await client.post("/access/v1/evaluation", json=body)).json() == {
            "decision": True}
        metrics = (await client.get("/metrics")).text
        assert "pdp_policy_reload_failures_total 1.0" in metrics

        (tmp_path / "p.cedar").write_text(policy("better"))
        answer = await client.post("/admin/reload", headers=auth)
        assert answer.status_code == 200 and answer.json()["version"] != good
        status = (await client.get("/status")).json()
        assert status["last_reload_error"] is None
        assert status["policy_set"]["version"] == answer.json()["version"]


class WatchTicks(GenerationFile):
    """A generation file that counts the watcher's passes: the watcher reads it after each
    batch of file events (or quiet timeout), so a new count means every earlier file change has
    been seen (and acted on, if relevant)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.ticks = 0

    def changed(self) -> bool:
        self.ticks += 1
        return super().changed()


def test_a_file_change_is_picked_up_by_the_watcher_within_seconds(tmp_path: Path) -> None:
    ticks = WatchTicks(tmp_path / "generation")
    holder, engine, reloader = setup(tmp_path / "policies", policy("before"), watch=True,
                                     poll_interval=0.1, generation=ticks)
    directory = tmp_path / "policies"
    reloader.start()
    try:
        wait_until(lambda: ticks.ticks > 0, message="the watcher being up")
        (directory / "p.cedar").write_text(policy("after"))
        assert wait_for(lambda: ask(engine, 1) == [(True, ("after",))], timeout=10)
        (directory / "notes.txt").write_text("not part of the policy set")
        (directory / ".p.cedar.swp").write_text("an editor's scratch file")
        seen = ticks.ticks
        wait_until(lambda: ticks.ticks > seen + 2, message="the watcher passing the writes")
        assert reloader.stats().last_trigger == "files changed"
        assert reloader.stats().reloads + reloader.stats().unchanged == 1
    finally:
        reloader.close()


def test_a_reload_in_one_worker_reaches_the_others_through_the_generation_file(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    workers = [setup(tmp_path / "policies", policy("v1"), watch=False, poll_interval=0.05,
                     generation=GenerationFile(data / "policy-generation")) for _ in range(3)]
    for _, _, reloader in workers:
        reloader.start()
    try:
        (tmp_path / "policies" / "p.cedar").write_text(policy("v2"))
        first = workers[0][2]
        assert first.reload("admin") is not None
        first.announce()
        for _, engine, _ in workers:
            assert wait_for(lambda e=engine: ask(e, 1) == [(True, ("v2",))], timeout=10)
        assert first.stats().reloads == 1  # its own bump does not reload it again
    finally:
        for _, _, reloader in workers:
            reloader.close()


def test_requests_made_during_a_reload_coalesce_into_one_more(tmp_path: Path) -> None:
    compiled: list[str] = []
    entered, gate = threading.Event(), threading.Event()

    def slow_compile(directory: Path, previous: CompiledPolicySet | None) -> Any:
        entered.set()
        gate.wait(5)
        compiled.append((directory / "p.cedar").read_text())
        return compile_directory(directory, previous)

    holder, _, reloader = setup(tmp_path, policy("a"), compile=slow_compile)
    (tmp_path / "p.cedar").write_text(policy("b"))
    reloader.request("one")
    assert entered.wait(5)
    for trigger in ("two", "three", "four"):
        reloader.request(trigger)
    gate.set()
    assert wait_for(lambda: reloader.stats().unchanged == 1, 10)
    assert reloader.stats().last_trigger == "four" and holder.current.policy("b") is not None
    # a later request is a barrier: once it is done, any extra run of two-four would be too
    reloader.request("barrier")
    assert wait_for(lambda: reloader.stats().unchanged == 2, 10)
    assert len(compiled) == 3 and reloader.stats().reloads == 1


class RecordingStore(InMemoryEntityStore):
    """A store with file-managed entities, as the SQL store has."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.calls: list[list[Mapping[str, Any]]] = []
        self.fail = fail

    def replace_file_managed(self, entities: Iterable[Mapping[str, Any]]) -> None:
        if self.fail:
            raise StoreUnavailable("the database is down")
        docs = list(entities)
        self.calls.append(docs)
        self.replace_all(StoredEntity.from_cedar_json(e) for e in docs)


def test_entities_json_reaches_the_store_as_file_managed_entities(tmp_path: Path) -> None:
    store = RecordingStore()
    (tmp_path / "entities.json").write_text(entities_json("alice"))
    holder, _, reloader = setup(tmp_path, policy("p"), store=store)
    (tmp_path / "entities.json").write_text(entities_json("alice", "bob"))
    assert reloader.reload("test") is not None
    assert [e["uid"]["id"] for e in store.calls[-1]] == ["alice", "bob"]
    assert store.get(("User", "bob")) is not None
    (tmp_path / "p.cedar").write_text(policy("q"))  # entities unchanged: store untouched
    assert reloader.reload("test") is not None
    assert len(store.calls) == 1


def test_entities_json_replaces_an_in_memory_store(tmp_path: Path) -> None:
    store = InMemoryEntityStore()
    holder, _, reloader = setup(tmp_path, policy("p"), store=store)
    (tmp_path / "entities.json").write_text(entities_json("carol"))
    assert reloader.reload("test") is not None
    assert store.get(("User", "carol")) is not None and len(store) == 1


def test_a_store_that_cannot_take_the_new_entities_fails_the_whole_reload(
        tmp_path: Path) -> None:
    holder, _, reloader = setup(tmp_path, policy("p"), store=RecordingStore(fail=True))
    before = holder.current
    (tmp_path / "entities.json").write_text(entities_json("dave"))
    (tmp_path / "p.cedar").write_text(policy("q"))
    assert reloader.reload("test") is None
    assert holder.current is before
    assert holder.last_failure is not None
    assert "database is down" in holder.last_failure.error.diagnostics[0].message


def test_a_reload_that_finds_the_same_content_changes_nothing(tmp_path: Path) -> None:
    holder, _, reloader = setup(tmp_path, policy("p"))
    before = holder.current
    assert reloader.reload("test") is before
    assert reloader.stats().unchanged == 1 and reloader.stats().reloads == 0


def _version(base: str) -> str:
    version: str = httpx.get(base + "/status", timeout=5).json()["policy_set"]["version"]
    return version


@pytest.mark.slow
@pytest.mark.parametrize(("workers", "sig"), [(1, signal.SIGHUP), (2, signal.SIGUSR1)])
def test_a_signal_reloads_every_worker_of_a_real_server(tmp_path: Path, workers: int,
                                                        sig: signal.Signals) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.cedar").write_text(policy("before"))
    proc, base = start_server(policies, "--workers", str(workers), env={
        "PDP_WATCH": "false", "PDP_POLL_INTERVAL": "0.1", "PDP_ENTITY_STORE": "memory",
        "PDP_DATA_DIR": str(tmp_path / "data")})
    try:
        before = _version(base)
        (policies / "p.cedar").write_text(policy("after"))
        os.kill(proc.pid, sig)
        assert wait_for(lambda: all(_version(base) != before for _ in range(8)), timeout=15)
        assert proc.poll() is None
    finally:
        stop_server(proc)


def test_the_engine_derives_a_new_sets_state_while_the_old_set_still_serves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = InMemoryEntityStore()
    holder, engine, _ = setup(tmp_path, policy("old"), store=store)
    assert ask(engine, 1) == [(True, ("old",))]
    old = holder.current
    seen: list[tuple[bool, bool, list[tuple[bool, tuple[str, ...]]]]] = []

    def after_the_engine(new: CompiledPolicySet) -> None:
        seen.append((holder.current is old, new is not old, ask(engine, 1)))

    reloader = Reloader(holder, store, tmp_path, settle=0.0,
                        on_swap=(engine.refresh, after_the_engine))
    (tmp_path / "p.cedar").write_text(policy("new"))
    builds: list[CompiledPolicySet] = []
    build = version.build

    def counted(compiled: CompiledPolicySet, *args: Any) -> version.VersionState:
        builds.append(compiled)
        return build(compiled, *args)

    monkeypatch.setattr(version, "build", counted)
    new = reloader.reload("test")
    # the engine's state for the new set was ready while the old set still served (and
    # decided), and the first request under the new set built nothing
    assert new is not None and new is not old and holder.current is new
    assert seen == [(True, True, [(True, ("old",))])]
    assert ask(engine, 1) == [(True, ("new",))]
    assert builds == [new]


def test_entities_with_several_parents_unchanged_leave_the_store_untouched(
        tmp_path: Path) -> None:
    store = RecordingStore()
    groups = [{"type": "Group", "id": f"g{i}"} for i in range(8)]
    (tmp_path / "entities.json").write_text(json.dumps([
        {"uid": {"type": "User", "id": f"u{n}"}, "attrs": {}, "parents": groups}
        for n in range(20)]))
    holder, _, reloader = setup(tmp_path, policy("p"), store=store)
    for n in range(3):  # (Cedar writes a set of parents in an order of its own each time)
        (tmp_path / "p.cedar").write_text(policy(f"q{n}"))
        assert reloader.reload("test") is holder.current
    assert store.calls == []
