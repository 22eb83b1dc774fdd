"""Cedar's own integration-test corpus through ``pdp.cedar.is_authorized``: every one of its
62,472 requests gets Cedar's decision and Cedar's set of determining policies, and nearly all
are decided by the native evaluator rather than by the cedarpy fallback."""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import pdp.cedar

ARCHIVE = Path(__file__).resolve().parent / "corpus-tests.tar.gz"
REQUESTS_IN_CORPUS = 62_472
TESTS_IN_CORPUS = 7_809


@dataclass
class CorpusRun:
    tests: int = 0
    requests: int = 0
    native: int = 0
    mismatches: list[str] = field(default_factory=list)
    fallbacks: Counter[str] = field(default_factory=Counter)


def _files() -> dict[str, bytes]:
    out = {}
    with tarfile.open(ARCHIVE) as tar:
        for member in tar:
            f = tar.extractfile(member) if member.isfile() else None
            if f is not None:
                out[member.name] = f.read()
    return out


@pytest.fixture(scope="module")
def corpus_run() -> CorpusRun:
    files = _files()
    run = CorpusRun()
    for name in sorted(n for n in files if n.endswith(".json")
                       and not n.endswith(".entities.json")):
        test: dict[str, Any] = json.loads(files[name])
        run.tests += 1
        policies = pdp.cedar.PolicySet(files[test["policies"]].decode())
        entities = pdp.cedar.EntitySet(files[test["entities"]].decode())
        for reason in (policies.native_reason, entities.native_reason):
            if reason:
                run.fallbacks[reason] += 1
        for req in test["requests"]:
            run.requests += 1
            request = {k: req[k] for k in ("principal", "action", "resource", "context")}
            answer = pdp.cedar.is_authorized(request, policies, entities)
            run.native += answer["evaluator"] == "native"
            if (answer["decision"], set(answer["reasons"])) != (req["decision"],
                                                                set(req["reason"])):
                run.mismatches.append(
                    f"{name} {req['description']}: expected {req['decision']} "
                    f"{sorted(req['reason'])}, got {answer['decision']} "
                    f"{sorted(answer['reasons'])} ({answer['evaluator']}; "
                    f"errors {answer['errors']})")
    return run


def test_the_vendored_corpus_is_complete(corpus_run: CorpusRun) -> None:
    assert (corpus_run.tests, corpus_run.requests) == (TESTS_IN_CORPUS, REQUESTS_IN_CORPUS)


def test_every_request_gets_cedars_decision_and_reasons(corpus_run: CorpusRun) -> None:
    shown = "\n".join(corpus_run.mismatches[:50])
    assert not corpus_run.mismatches, (
        f"{len(corpus_run.mismatches)} of {corpus_run.requests} requests disagree:\n{shown}")


def test_at_least_ninety_five_percent_are_decided_natively(
        corpus_run: CorpusRun, record_property: Any) -> None:
    share = corpus_run.native / corpus_run.requests
    record_property("native_share", share)
    assert share >= 0.95, f"native {share:.2%}; fallbacks: {corpus_run.fallbacks.most_common(10)}"
