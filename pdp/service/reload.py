"""Hot reload of what is served: what triggers it, how it runs, how it reaches every worker.

Every trigger below calls one entry point, :meth:`Reloader.reload`; it builds what is to be
served and installs it (``_install``) as one new generation: the engine's state derived from
the new set and the template links stored with the entities (``on_swap``, given the new set
while the old one still serves), then the policy set swapped in one assignment
(:meth:`PolicyHolder.swap <pdp.policies.holder.PolicyHolder.swap>`), so a request decides
with the old generation or the new one, never a mix, and none waits for the new state. Each
generation is counted (``GET /status``: ``reload.generation``) and logged by the same line.

For the policy files, a reload compiles the directory again with the same
:func:`~pdp.policies.compiled.compile_directory` as start-up, so a broken edit is rejected with
the same ``file:line:column`` diagnostics; the last good set keeps serving, the failure is
logged and shown by ``GET /status`` (``last_reload_error``) until a reload succeeds. A valid
new set first has its ``entities.json`` applied to the entity store (when it changed: as
file-managed entities, :meth:`~pdp.entities.store.MutableEntityStore.replace_file_managed`).
If the store cannot take the new entities the reload fails as a whole and the old set keeps
serving. A reload that finds the same content (same version) and the same stored links
installs nothing. For a change of the stored template links (the store tells its listener:
:data:`STORED_LINKS_CHANGED`), the set in force is kept and served with the new links.

A change goes live only once it has settled: before compiling, every file of the set is
read, and read again after ``settle`` seconds (``PDP_RELOAD_SETTLE``, 0.5 s by default) of
quiet; the two reads must agree (size, modification time and content), and a third read after
compiling must agree with them, else the reloader waits again. A file rewritten in place
(truncated, then written, as editors, ``cp`` and configuration tools do) therefore never
goes live half-written. And a ``.cedar`` file that held policies in the served set but holds
none now (emptied, or cut to comments) is refused like an invalid set: the previous set keeps
serving, with the error in the log, ``GET /status`` and ``/metrics``. To remove a file's
policies on purpose, delete the file. Safe deploys write elsewhere, check (``pdp check``)
and rename into place.

Compiling happens on a background thread, never on the request path, and is kept from
stalling the event loop that shares the GIL with it: cedarpy's parsers release the GIL; while
a reload runs, the interpreter's thread switch interval is lowered (the loop waits at most
half a millisecond for the GIL instead of five) and the cyclic garbage collector is paused (a
full collection over a freshly compiled set holds the GIL for 100 ms and more), then what is
alive is frozen out of later collections. The engine derives its per-version state on the
reload thread before the swap (``on_swap``), and the old set is freed piece by piece on a
background thread a second later, not in one tens-of-milliseconds cascade inside whichever
request drops it last.

Triggers, in every process that serves requests (each ``--workers`` process runs its own
:class:`Reloader`):

* **the directory changes** (``PDP_WATCH``, on by default): a ``watchfiles`` watcher on the
  policy directory, debounced, ignoring files that are not part of a policy set. Each worker
  watches for itself, so all pick a change up at once;
* **SIGHUP or SIGUSR1** to a single-process server (``pdp serve`` without ``--workers``).
  With ``--workers`` > 1, uvicorn's supervisor owns SIGHUP (it restarts the workers), so send
  **SIGUSR1 to the supervisor** instead: ``pdp serve`` then bumps the generation file below;
* **``POST /admin/reload``** (needs ``PDP_ADMIN_TOKEN``): the worker that receives it reloads
  at once and answers with the result, and bumps the generation file;
* **the generation file** ``$PDP_DATA_DIR/policy-generation``: one line, rewritten atomically
  by every bump. Each worker checks it every ``PDP_POLL_INTERVAL`` seconds (1 s by default)
  and reloads when it changed. Workers other than the one that was asked therefore follow
  within one poll interval plus the compile time;
* **the stored template links changed** (``POST /admin/links``, ``pdp links``, or another
  replica on the same database, seen by the store's poll): the store's listener asks for a
  reload that keeps the policy set. A reload of the directory queued meanwhile absorbs it
  (it serves the store's current links too). Decisions never wait for it: until it has run,
  the engine derives the same state on first use.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pdp.entities.store import MutableEntityStore
from pdp.errors import PDPError, PolicyDiagnostic, PolicyLoadError
from pdp.policies.compiled import ENTITIES_FILE, CompiledPolicySet, compile_directory
from pdp.policies.holder import PolicyHolder, ReloadFailure, ReloadStats
from pdp.policies.links import LinkSet, schema_problems, stranded

__all__ = ["GENERATION_FILE", "STORED_LINKS_CHANGED", "GenerationFile", "Reloader",
           "policy_file"]

log = logging.getLogger("pdp.policies")

GENERATION_FILE = "policy-generation"
STORED_LINKS_CHANGED = "stored links changed"  # the trigger of the entity store's listener
_SWITCH_INTERVAL = 0.0005  # seconds, while a reload compiles
_DEBOUNCE_MS = 200
_SETTLE_ROUNDS = 120  # a directory still changing after this many settle intervals: refused

# name → (size, modification time, content digest) of every policy-set file
_Snapshot = dict[str, tuple[int, int, bytes]]


def policy_file(name: str) -> bool:
    """Whether a file in the policy directory is part of the policy set."""
    return (name.endswith((".cedar", ".cedarschema", ".cedarschema.json", ".links.json"))
            or name == ENTITIES_FILE) and not name.startswith(".")


class GenerationFile:
    """A one-line file whose every change means "reload"; shared by the workers of a server.

    Writers replace it atomically (write a temporary file, then rename) with a new counter and
    a random token, so two bumps at the same time still change it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = self.read()

    def read(self) -> str | None:
        try:
            return self.path.read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            log.warning("cannot read %s: %s", self.path, exc)
            return None

    def bump(self) -> None:
        current = self.read() or "0"
        counter = int(current.split()[0]) + 1 if current.split()[0].isdigit() else 1
        content = f"{counter} {uuid.uuid4().hex}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex}")
        tmp.write_text(content + "\n")
        os.replace(tmp, self.path)
        self._seen = content  # this process acts on its own bump directly

    def changed(self) -> bool:
        """True once per change made by another process (or another GenerationFile)."""
        content = self.read()
        if content is None or content == self._seen:
            return False
        self._seen = content
        return True


class Reloader:
    """Reloads one :class:`PolicyHolder` from its directory; see the module docstring."""

    def __init__(self, holder: PolicyHolder, store: MutableEntityStore, directory: Path, *,
                 generation: GenerationFile | None = None, poll_interval: float = 1.0,
                 watch: bool = True,
                 compile: Callable[[Path, CompiledPolicySet | None],
                                   CompiledPolicySet] = compile_directory,
                 on_swap: Sequence[Callable[[CompiledPolicySet], None]] = (),
                 grace: float = 1.0,
                 settle: float = 0.5,
                 quiet: Callable[[float], object] | None = None) -> None:
        self._settle = settle
        self._holder = holder
        self._store = store
        self._directory = Path(directory)
        self._generation = generation
        self._poll_interval = poll_interval
        self._watch = watch
        self._compile = compile
        self._on_swap = tuple(on_swap)
        self._grace = grace
        self._lock = threading.Lock()  # one reload at a time
        self._queue_lock = threading.Lock()
        self._queued: str | None = None  # a requested reload the background runner will do
        self._runner: threading.Thread | None = None
        self._stop = threading.Event()
        # waits out one settle interval (tests replace it to end the interval on an event)
        self._quiet: Callable[[float], object] = quiet or self._stop.wait
        self._watcher: threading.Thread | None = None
        self._signals: list[int] = []
        self._reloads = 0
        self._failures = 0
        self._unchanged = 0
        self._last_at: datetime | None = None
        self._last_trigger: str | None = None
        self._snapshots = 0
        self._unsettled = 0
        self._served = 0  # generations installed: a new set, or the same with new links
        self._served_links: LinkSet | None = None
        with contextlib.suppress(PDPError):
            self._served_links = store.links()
        self._listening = False

    @property
    def directory(self) -> Path:
        return self._directory

    def stats(self) -> ReloadStats:
        return ReloadStats(self._reloads, self._failures, self._unchanged, self._last_at,
                           self._last_trigger, self._snapshots, self._unsettled, self._served)

    # -- reloading ------------------------------------------------------------------------

    def reload(self, trigger: str = "manual") -> CompiledPolicySet | None:
        """The one entry point of every trigger: build what is to be served, then install it
        (:meth:`_install`). In the calling thread (never an event loop's).

        A change of the stored template links (:data:`STORED_LINKS_CHANGED`) keeps the policy
        set in force; every other trigger compiles the directory again. Returns the active
        set afterwards, or None if the new one was rejected."""
        with self._lock:
            self._last_trigger = trigger
            old = self._holder.current
            if trigger == STORED_LINKS_CHANGED:
                return self._install(old, old, trigger)
            try:
                new = self._settled_compile(old)
                self._refuse_emptied(old, new)
            except PolicyLoadError as exc:
                self._reject(old, exc, trigger)
                return None
            with _fine_grained_switching(), _collector_paused():
                problems = self._stranded_links(new)
                if problems:
                    self._reject(old, PolicyLoadError(problems), trigger)
                    _retire(new, self._grace)
                    return None
                if new.version == old.version:
                    self._unchanged += 1
                    _retire(new, self._grace)
                    new = old
                elif new.entities != old.entities:
                    try:
                        self._apply_entities(new)
                    except PDPError as exc:
                        self._reject(old, PolicyLoadError([PolicyDiagnostic(
                            ENTITIES_FILE, f"cannot apply to the entity store: {exc.message}")]),
                            trigger)
                        _retire(new, self._grace)
                        return None
            return self._install(old, new, trigger)

    def _install(self, old: CompiledPolicySet, new: CompiledPolicySet,
                 trigger: str) -> CompiledPolicySet:
        """Serve ``new`` with the store's current template links: swap the set in one
        assignment once the engine has derived its state from the pair (``on_swap``), and
        count a new generation. Nothing happens when neither the set nor the links changed."""
        self._holder.last_failure = None
        links = self._served_links
        with contextlib.suppress(PDPError):  # unreadable: the engine reads them when it can
            links = self._store.links()
        if new is old and links is self._served_links:
            return old
        with _fine_grained_switching(), _collector_paused():
            for hook in self._on_swap:  # before the swap: requests keep the set in force
                hook(new)
            if new is not old:
                self._holder.swap(new)
        self._served_links = links
        self._served += 1
        self._last_at = datetime.now(UTC)
        if new is old:
            log.info("policy set %s now served with %d stored template links (generation %d; "
                     "%s)", new.version, len(links.by_id) if links is not None else 0,
                     self._served, trigger)
            return new
        self._reloads += 1
        log.info("policy set %s loaded from %s (%d policies; was %s; generation %d; %s)",
                 new.version, self._directory, len(new.policies), old.version, self._served,
                 trigger)
        _retire(old, self._grace)
        return new

    def _settled_compile(self, old: CompiledPolicySet) -> CompiledPolicySet:
        """Compile the directory once two reads ``settle`` seconds apart agree and a read
        after compiling still agrees (so the compiler read the settled files); ``old``, the
        set in force, lends its entities when their files have not changed."""
        previous = self._snapshot()
        for _ in range(_SETTLE_ROUNDS):
            self._quiet(self._settle)
            current = self._snapshot()
            if current == previous:
                with _fine_grained_switching(), _collector_paused():
                    new = self._compile(self._directory, old)
                after = self._snapshot()
                if after == current:
                    return new
                _retire(new, self._grace)
                current = after
            self._unsettled += 1
            previous = current
        raise PolicyLoadError([PolicyDiagnostic(
            str(self._directory), f"the policy files kept changing for "
            f"{_SETTLE_ROUNDS} settle intervals of {self._settle:g} s; not loaded")])

    def _snapshot(self) -> _Snapshot:
        self._snapshots += 1
        found: _Snapshot = {}
        try:
            entries = sorted(os.scandir(self._directory), key=lambda e: e.name)
        except OSError:
            return found  # the compiler reports a missing directory
        for entry in entries:
            if not policy_file(entry.name):
                continue
            try:
                stat = entry.stat()
                with open(entry.path, "rb") as f:
                    digest = hashlib.sha256(f.read()).digest()
            except OSError:
                digest = b""
                stat = None
            found[entry.name] = (stat.st_size if stat else -1,
                                 stat.st_mtime_ns if stat else -1, digest)
        return found

    @staticmethod
    def _refuse_emptied(old: CompiledPolicySet, new: CompiledPolicySet) -> None:
        """A file that held policies and still exists but holds none is a file being
        rewritten (or a mistake), not a deliberate removal: that is deleting the file."""
        held: dict[str, int] = {}
        for p in old.policies:
            held[p.file] = held.get(p.file, 0) + 1
        kept = {p.file for p in new.policies}
        emptied = [name for name in sorted(held) if name in new.files and name not in kept]
        if emptied:
            _retire(new, 0.0)
            raise PolicyLoadError([PolicyDiagnostic(
                name, f"holds no policy now but held {held[name]}: refused as an emptied or "
                "half-written file (delete the file to remove its policies)")
                for name in emptied])

    def request(self, trigger: str) -> None:
        """Reload on a background thread; requests made meanwhile coalesce into one more."""
        with self._queue_lock:
            already = self._queued is not None or (
                self._runner is not None and self._runner.is_alive())
            # a reload of the directory serves the store's links too: it absorbs a links change
            if trigger != STORED_LINKS_CHANGED or self._queued in (None, STORED_LINKS_CHANGED):
                self._queued = trigger
            if already:
                return
            self._runner = threading.Thread(target=self._run_queued, name="pdp-reload",
                                            daemon=True)
            self._runner.start()

    def announce(self) -> None:
        """Tell the other workers to reload (bump the generation file)."""
        if self._generation is not None:
            try:
                self._generation.bump()
            except OSError as exc:
                log.error("cannot bump %s: %s", self._generation.path, exc)

    def _run_queued(self) -> None:
        while True:
            with self._queue_lock:
                trigger, self._queued = self._queued, None
                if trigger is None:
                    self._runner = None
                    return
            try:
                self.reload(trigger)
            except Exception:  # noqa: BLE001 - the thread must survive anything
                log.exception("policy reload failed")

    def _reject(self, old: CompiledPolicySet, exc: PolicyLoadError,
                trigger: str) -> None:
        self._holder.last_failure = ReloadFailure(datetime.now(UTC), exc)
        self._failures += 1
        log.error("policy reload (%s) rejected, still serving %s:\n%s", trigger, old.version,
                  exc.message)

    def _stranded_links(self, new: CompiledPolicySet) -> list[PolicyDiagnostic]:
        """A set that cannot hold a template link stored with the entities is refused (its
        link would silently stop applying, and a forbid would stop forbidding): remove the
        link first (``pdp links remove``), or keep the template as it is."""
        try:
            stored = list(self._store.links().by_id.values())
        except PDPError as exc:  # cannot tell: keep the set that is known to fit
            return [PolicyDiagnostic("<stored links>", f"cannot check the stored template "
                                                       f"links: {exc.message}")]
        taken = {p.id for p in new.policies} | {x.link_id for x in new.links}
        templates = new.templates()
        found = dict(stranded(stored, templates, new.schema_types, taken))
        for link_id, problem in schema_problems(
                [x for x in stored if x.link_id not in found], templates, new.schema).items():
            found[link_id] = problem
        return [PolicyDiagnostic("<stored links>", f"{problem} (remove the link first)")
                for problem in found.values()]

    def _apply_entities(self, new: CompiledPolicySet) -> None:
        self._store.replace_file_managed(new.entities)

    # -- background triggers --------------------------------------------------------------

    def start(self) -> None:
        """Watch the directory (if enabled) and poll the generation file, on one thread."""
        if self._watcher is not None:
            return
        self._stop.clear()
        if not self._listening:
            self._listening = True
            self._store.watch_links(self._on_links_changed)
        self._watcher = threading.Thread(target=self._watch_loop, name="pdp-policy-watch",
                                         daemon=True)
        self._watcher.start()

    def install_signal_handlers(self) -> None:
        """SIGHUP and SIGUSR1 reload (call from the event loop's thread, in the main thread)."""
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGHUP, signal.SIGUSR1):
            name = signal.Signals(sig).name
            try:
                loop.add_signal_handler(sig, self._on_signal, name)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            self._signals.append(sig)

    def close(self) -> None:
        if self._signals:
            import asyncio

            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_running_loop()
                for sig in self._signals:
                    loop.remove_signal_handler(sig)
            self._signals.clear()
        self._stop.set()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.join(timeout=5)

    def _on_signal(self, name: str) -> None:
        log.info("%s received: reloading the policy set", name)
        self.request(name)
        self.announce()

    def _on_links_changed(self) -> None:
        if not self._stop.is_set():
            self.request(STORED_LINKS_CHANGED)

    def _check_generation(self) -> None:
        if self._generation is not None and self._generation.changed():
            self.request("generation file")

    def _watch_loop(self) -> None:
        if self._watch:
            try:
                self._watch_files()
                return
            except Exception as exc:  # noqa: BLE001 - fall back to polling only
                if self._stop.is_set():
                    return
                log.error("cannot watch %s (%s); polling the generation file only",
                          self._directory, exc)
        while not self._stop.wait(self._poll_interval):
            self._check_generation()

    def _watch_files(self) -> None:
        import watchfiles

        def relevant(_: Any, path: str) -> bool:
            return policy_file(os.path.basename(path))

        for changes in watchfiles.watch(
                self._directory, watch_filter=relevant, debounce=_DEBOUNCE_MS,
                stop_event=self._stop, rust_timeout=max(int(self._poll_interval * 1000), 50),
                yield_on_timeout=True, raise_interrupt=False, recursive=False):
            if self._stop.is_set():
                return
            if changes:
                self.request("files changed")
            self._check_generation()


@contextlib.contextmanager
def _fine_grained_switching() -> Iterator[None]:
    """Let other threads (the event loop) take the GIL sooner while a reload runs."""
    previous = sys.getswitchinterval()
    if previous <= _SWITCH_INTERVAL:
        yield
        return
    sys.setswitchinterval(_SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a reload allocates a whole policy set: a full
    collection over hundreds of thousands of new objects holds the GIL for 100 ms and more.
    Afterwards everything alive is frozen (:func:`gc.freeze`): the long-lived policy set is
    never scanned again, so later collections stay short."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _retire(old: CompiledPolicySet, grace: float) -> None:
    """Free a policy set that is no longer served, piece by piece, on a background thread.

    Dropping a large set in one go (its policies' JSON forms, the memo of Cedar sub-sets,
    the Cedar policy set) is one uninterruptible cascade of tens of milliseconds: done by
    whichever thread drops the last reference, possibly a request. After ``grace`` seconds
    (requests decided with the old set have finished) the pieces are released one at a time,
    giving the GIL back in between."""
    pieces: list[Any] = [p.est for p in old.policies]
    pieces.extend(old.index.drain())
    pieces.append(old.policy_set)
    del old

    def release() -> None:
        time.sleep(grace)
        while pieces:
            for _ in range(64):
                if not pieces:
                    break
                pieces.pop()
            time.sleep(0)

    threading.Thread(target=release, name="pdp-retire", daemon=True).start()
