"""The PDP as a framework-free service: policies + entity store + engine, wired once.

HTTP routes, the CLI and the MCP gateway (in-process mode) all call this object; it takes
parsed JSON bodies and returns response bodies, knowing nothing of any web framework.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.registry import Collector

from pdp.authzen import (
    Decision,
    Entity,
    EvaluationRequest,
    apply_semantic,
    build_metadata,
    item_error,
    parse_evaluations,
)
from pdp.decision_log import DecisionLog
from pdp.decision_log.metrics import DecisionLogCollector
from pdp.engine import Engine, EngineOptions
from pdp.engine.metrics import DecisionCollector
from pdp.entities.setup import open_entity_store
from pdp.entities.store import MutableEntityStore
from pdp.errors import NotFound, PDPError, StoreUnavailable
from pdp.policies.compiled import locate
from pdp.policies.holder import PolicyHolder
from pdp.search import PageTokens, Searcher, SearchKind, SearchOptions, parse_search
from pdp.service.reload import GENERATION_FILE, GenerationFile, Reloader
from pdp.settings import Settings

__all__ = ["PDPService"]

log = logging.getLogger("pdp")


@dataclass
class PDPService:
    settings: Settings
    policies: PolicyHolder
    store: MutableEntityStore
    engine: Engine
    reloader: Reloader  # every reload trigger goes through Reloader.reload
    decision_log: DecisionLog | None = None
    searcher: Searcher | None = None
    # the batch items' subjects and resources without properties, reused from batch to batch
    _kept: dict[tuple[str, str], Entity] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, *,
                      store: MutableEntityStore | None = None) -> PDPService:
        """Load the configured policy set (raising PolicyLoadError if invalid) and wire up.

        ``store`` replaces the configured entity store (``PDP_ENTITY_STORE``: the SQL store
        by default, StoreUnavailable if its database cannot be reached)."""
        holder = PolicyHolder.load(settings.policies_dir())
        if store is None:
            store = open_entity_store(settings, holder.current.entities)
        engine = Engine(holder, store, EngineOptions.from_settings(settings))
        searcher = Searcher(engine, PageTokens.from_secret(
            settings.page_token_key.get_secret_value() if settings.page_token_key else None),
            SearchOptions(namespace=settings.namespace,
                          action_properties_key=settings.action_properties_key,
                          default_limit=settings.max_search_page,
                          max_limit=settings.max_search_page,
                          max_scan=settings.max_search_scan))
        reloader = Reloader(holder, store, settings.policies_dir(),
                            generation=GenerationFile(settings.data_dir / GENERATION_FILE),
                            poll_interval=settings.poll_interval, watch=settings.watch,
                            settle=settings.reload_settle,
                            on_swap=(engine.refresh,))
        return cls(settings, holder, store, engine, reloader,
                   DecisionLog.from_settings(settings), searcher)

    # -- background work (started and stopped by the application's lifespan) -----------------

    def start(self) -> None:
        """Start the entity store's poller, the decision-log writer and the policy reloader
        (its watcher and generation-file poller; SIGHUP/SIGUSR1 when called on the event
        loop in the main thread), where configured."""
        self.store.start()
        if self.decision_log is not None:
            self.decision_log.start()
        self.reloader.install_signal_handlers()
        self.reloader.start()
        # The engine's state for the loaded set (the native code of a large set takes seconds
        # to build): now, before the first request, which would otherwise wait for it.
        try:
            self.engine.refresh()
        except PDPError as exc:  # the store's links unreachable: the first request retries
            log.warning("the policy set is compiled on first use: %s", exc.message)
        # What start-up loaded (policy set, entities) lives as long as the process: keep the
        # cyclic GC from rescanning it, a pause that grows with the data (see pdp.service.reload).
        gc.freeze()

    def close(self) -> None:
        """Stop background threads (the decision log writes what it still can first)."""
        self.reloader.close()
        if self.decision_log is not None:
            self.decision_log.close()
        self.store.close()

    # -- AuthZEN --------------------------------------------------------------------------

    def decide(self, requests: list[EvaluationRequest]) -> list[Decision]:
        return self.engine.decide(requests)

    def evaluation(self, request: EvaluationRequest, *, explain: bool = False,
                   request_id: str | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        decision = self.engine.decide_one(request)
        decision_log = self.decision_log
        if decision_log is not None:
            decision_log.evaluation(request_id, request, decision,
                                    self.policies.current.version,
                                    time.perf_counter() - started)
        return self._wire(decision, explain) if explain else decision.to_wire()

    def _wire(self, decision: Decision, explain: bool) -> dict[str, Any]:
        """The decision's response body; explained, it also says where each determining
        policy is (``context.policies``: id, file relative to the policy set, line, column)."""
        body = decision.to_wire(explain)
        if explain and decision.reasons and decision.error is None:
            compiled = self.policies.current
            links = self.engine.links()
            body["context"]["policies"] = [locate(compiled, pid, links)
                                           for pid in decision.reasons]
        return body

    def search(self, kind: SearchKind | str, body: Any, *,
               request_id: str | None = None) -> dict[str, Any]:
        """``/access/v1/search/{subject,resource,action}`` (AuthZEN 1.0 section 8)."""
        started = time.perf_counter()
        searcher = self.searcher
        if searcher is None:  # a service assembled by hand: tokens valid in this process
            searcher = self.searcher = Searcher(
                self.engine, PageTokens(), SearchOptions(
                    namespace=self.settings.namespace,
                    action_properties_key=self.settings.action_properties_key,
                    max_scan=self.settings.max_search_scan))
        request = parse_search(SearchKind(kind), body, max_limit=searcher.options.max_limit)
        result = searcher.search(request)
        if self.decision_log is not None:
            self.decision_log.search(request_id, result, time.perf_counter() - started)
        return result.to_wire()

    def evaluations(self, body: Any, *, explain: bool = False,
                    request_id: str | None = None) -> dict[str, Any]:
        """``/access/v1/evaluations``: defaults, per-item errors and the three semantics."""
        started = time.perf_counter()
        parsed = parse_evaluations(body, max_items=self.settings.max_batch, kept=self._kept)
        if parsed.single:
            item = parsed.items[0]
            assert isinstance(item, EvaluationRequest)
            return self.evaluation(item, explain=explain, request_id=request_id)
        items = parsed.items
        valid = [it for it in items if isinstance(it, EvaluationRequest)]
        decided = self.engine.decide(valid)
        if len(decided) != len(valid):
            raise ValueError(f"{len(valid)} requests and {len(decided)} decisions")
        if len(valid) == len(items):
            results = decided
        else:  # each bad item answered by its error, in its place
            answers = iter(decided)
            results = [next(answers) if isinstance(it, EvaluationRequest) else item_error(it)
                       for it in items]
        final = apply_semantic(results, parsed.semantic)
        if self.decision_log is not None:
            self.decision_log.evaluations(request_id, items, final,
                                          self.policies.current.version,
                                          time.perf_counter() - started)
        if explain:
            return {"evaluations": [self._wire(d, explain) for d in final]}
        return {"evaluations": [d.to_wire() for d in final]}

    def metadata(self, tenant: str | None = None) -> dict[str, Any]:
        """The PDP metadata; for ``tenant``, that tenant's (NotFound unless configured)."""
        if tenant is not None and tenant not in self.settings.tenants:
            raise NotFound(f"no tenant {tenant!r}", field="tenant")
        return build_metadata(self.settings.base_url(), search=True, tenant=tenant)

    def collectors(self) -> list[Collector]:
        """Prometheus collectors for ``/metrics``, read at scrape time."""
        found: list[Collector] = [DecisionCollector(
            self.engine, self.policies, self.reloader.stats)]
        if self.decision_log is not None:
            found.append(DecisionLogCollector(self.decision_log))
        return found

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when a policy set is loaded and the entity store answers (the same check a
        decision makes: for the SQL store, its mirror is within PDP_ENTITY_MAX_STALENESS of
        the last successful poll, a throttled query when nothing polls in the background).
        The decision log is reported but never makes the PDP unready: decisions do not wait
        for it. May query the database: call it off the event loop."""
        ready = True
        current = self.policies.current
        checks: dict[str, Any] = {"policy_set": {"ready": True, "version": current.version}}
        try:
            checks["entity_store"] = {"ready": True, "version": self.store.version}
        except StoreUnavailable as exc:
            ready = False
            checks["entity_store"] = {"ready": False, "message": exc.message}
        if self.decision_log is not None:
            stats = self.decision_log.stats()
            checks["decision_log"] = {"database_up": stats.last_error is None,
                                      "queued": stats.queued, "last_error": stats.last_error}
        return ready, {"status": "ready" if ready else "not_ready", "checks": checks}

    def status(self) -> Mapping[str, Any]:
        current = self.policies.current
        failure = self.policies.last_failure
        return {
            "policy_set": {
                "version": current.version,
                "directory": str(current.directory),
                "loaded_at": current.loaded_at.isoformat(),
                "policies": len(current.policies),
                "files": list(current.files),
            },
            "entities": self._store_status(),
            "decision_log": ({"enabled": False} if self.decision_log is None
                             else self.decision_log.status()),
            "last_reload_error": None if failure is None else {
                "at": failure.at.isoformat(),
                "diagnostics": [d.to_dict() for d in failure.error.diagnostics],
            },
            "reload": self._reload_status(),
            "decision_cache": ({"enabled": False} if self.engine.cache is None
                               else {"enabled": True, **self.engine.cache.stats()}),
        }

    def _reload_status(self) -> dict[str, Any]:
        stats = self.reloader.stats()
        return {"enabled": True, "watch": self.settings.watch,
                "poll_interval": self.settings.poll_interval,
                "settle": self.settings.reload_settle, "unsettled": stats.unsettled,
                "reloads": stats.reloads, "failures": stats.failures,
                "unchanged": stats.unchanged, "generation": stats.generation,
                "last_trigger": stats.last_trigger,
                "last_reload_at": (None if stats.last_reload_at is None
                                   else stats.last_reload_at.isoformat())}

    def _store_status(self) -> dict[str, Any]:
        return dict(self.store.status())
