"""A policy file rewritten in place (truncated, then written, as editors, `cp` and
configuration tools do) never goes live half-written, while clients keep asking."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pdp.authzen.model import Action, Entity, EvaluationRequest
from pdp.engine import Engine
from pdp.entities import InMemoryEntityStore
from pdp.policies.compiled import compile_directory
from pdp.policies.holder import PolicyHolder
from pdp.service.reload import Reloader
from tests.waiting import wait_until

ALLOW = '@id("allow-all")\npermit (principal, action, resource);\n'
# Two policies: the first half of the file alone is a valid, smaller policy set.
DENY_HEAD = ('@id("no-launches")\nforbid (principal, action == Action::"launch", resource);\n'
             + "// " + "padding " * 40 + "\n")
DENY_TAIL = '@id("no-deletes")\nforbid (principal, action == Action::"delete", resource);\n'
DELETE = EvaluationRequest(Entity("user", "mallory"), Action("delete"), Entity("doc", "d"))


class Client:
    """Asks for `delete` without pause on its own thread, counting answers and permits."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.answers = 0
        self.permits = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            decision = self.engine.decide([DELETE])[0]
            self.answers += 1
            self.permits += decision.allowed

    def more_answers(self, n: int) -> Callable[[], bool]:
        target = self.answers + n
        return lambda: self.answers >= target


def reload_attempts(reloader: Reloader) -> int:
    stats = reloader.stats()
    return (stats.reloads + stats.failures + stats.unchanged
            + getattr(stats, "snapshots", 0))


@pytest.mark.parametrize("first_write", ["", DENY_HEAD], ids=["truncated", "half-written"])
def test_in_place_rewrites_while_a_client_asks_give_no_false_permit(
        tmp_path: Path, first_write: str) -> None:
    (tmp_path / "allow.cedar").write_text(ALLOW)
    deny = tmp_path / "deny.cedar"
    deny.write_text(DENY_HEAD + DENY_TAIL)
    holder = PolicyHolder(compile_directory(tmp_path))
    engine = Engine(holder, InMemoryEntityStore())
    # The settle interval ends when the writer has finished (an event, not a clock): the
    # writer's pause, however long the machine makes it, is within the interval.
    written = threading.Event()
    reloader = Reloader(holder, engine.store, tmp_path, settle=0.5, on_swap=(engine.refresh,),
                        quiet=lambda _: written.wait(20))
    client = Client(engine)
    client.thread.start()
    try:
        for _ in range(5):
            written.clear()
            with deny.open("w") as f:  # truncate...
                f.write(first_write)
            before = reload_attempts(reloader)
            worker = threading.Thread(target=reloader.reload, args=("files changed",))
            worker.start()  # (what the watcher does on the truncation)
            # ...pause until the reloader has read the directory as it is now...
            wait_until(lambda b=before, w=worker: reload_attempts(reloader) > b or not w.is_alive())
            wait_until(client.more_answers(20))
            with deny.open("a") as f:  # ...then write the rest
                f.write("" if first_write else DENY_HEAD)
                f.write(DENY_TAIL)
            written.set()
            worker.join(timeout=20)
            assert not worker.is_alive()
            assert reloader.reload("files changed") is not None  # (the watcher, on the write)
            assert holder.current.policy("no-deletes") is not None
            wait_until(client.more_answers(20))
    finally:
        client.stop.set()
        client.thread.join(timeout=20)
    assert client.answers > 200
    assert client.permits == 0, f"{client.permits} of {client.answers} answers were permits"
    assert holder.current.policy("no-deletes") is not None


def test_an_emptied_file_keeps_the_previous_set_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "allow.cedar").write_text(ALLOW)
    (tmp_path / "deny.cedar").write_text(DENY_TAIL)
    holder = PolicyHolder(compile_directory(tmp_path))
    engine = Engine(holder, InMemoryEntityStore())
    reloader = Reloader(holder, engine.store, tmp_path, settle=0.0)
    (tmp_path / "deny.cedar").write_text("// nothing here yet\n")
    assert reloader.reload("files changed") is None
    assert not engine.decide([DELETE])[0].allowed
    assert reloader.stats().failures == 1
    assert holder.last_failure is not None
    assert "deny.cedar" in holder.last_failure.error.message
    # deleting the file is how policies are removed on purpose
    (tmp_path / "deny.cedar").unlink()
    assert reloader.reload("files changed") is not None
    assert engine.decide([DELETE])[0].allowed
