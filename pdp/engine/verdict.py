"""The fail-closed verdict: Cedar's answer (from either evaluator) as a decision.

With ``PDP_FORBID_ERRORS=deny`` a permit stands only if every policy that erred is a permit:
an error in a forbid policy (or one naming no policy) denies, where Cedar would skip the
forbid. The same rule reads the native evaluator's :class:`~pdp.cedar.Answer` and cedarpy's
JSON answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pdp.authzen.model import Decision
from pdp.caches import Memo
from pdp.cedar import Answer

__all__ = ["cedar_decision", "native_decision", "verdict"]

log = logging.getLogger("pdp.engine")

_POLICY_ERROR = "error while evaluating policy `"


def native_decision(answer: Answer, permits: frozenset[str] | None,
                    memo: Memo[tuple[bool, tuple[str, ...]], Decision]) -> Decision:
    """The native evaluator's answer as a decision (as :func:`cedar_decision` reads Cedar's).
    Answers without errors are few and their decisions immutable: ``memo`` keeps them."""
    if not answer.errors:
        key = (answer.allow, answer.reasons)
        found = memo.get(key)
        if found is None:
            reasons = tuple(sorted(answer.reasons))
            found = (Decision(True, "permit", reasons) if answer.allow else
                     Decision(False, "forbid" if reasons else "no_permit", reasons))
            memo.keep(key, found)
        return found
    errors = tuple(sorted(f"{_POLICY_ERROR}{p}`: {m}" for p, m in answer.errors))
    return verdict(answer.allow, tuple(sorted(answer.reasons)), errors,
                    [p for p, _ in answer.errors], permits)


def verdict(allow: bool, reasons: tuple[str, ...], errors: tuple[str, ...],
             erring: Sequence[str | None], permits: frozenset[str] | None) -> Decision:
    """Cedar's verdict as a decision, with the fail-closed rule for both evaluators: with
    ``permits`` (PDP_FORBID_ERRORS=deny), a permit stands only if every erring policy
    (``erring``; None: an error naming none) is a permit."""
    if allow:
        if errors and permits is not None and not all(p in permits for p in erring):
            return Decision(False, "error", (), errors)
        return Decision(True, "permit", reasons, errors)
    outcome = "forbid" if reasons else ("error" if errors else "no_permit")
    return Decision(False, outcome, reasons, errors)


def cedar_decision(answer: Mapping[str, Any], permits: frozenset[str] | None = None) -> Decision:
    """Cedar's answer as a decision. With ``permits`` (PDP_FORBID_ERRORS=deny), a permit
    stands only if every error Cedar reports names a permit policy: an error in a forbid
    policy (or one that names no policy) denies, where Cedar would skip the forbid."""
    diagnostics = answer.get("diagnostics") or {}
    reasons = tuple(sorted(diagnostics.get("reason") or ()))
    errors = tuple(sorted(diagnostics.get("errors") or ()))
    said = answer.get("decision")
    if said in ("Allow", "Deny"):
        return verdict(said == "Allow", reasons, errors, [_erring_policy(e) for e in errors],
                       permits)
    log.error("cedar returned no decision: %s", "; ".join(errors) or said)
    return Decision(False, "error", (), errors or ("no decision",))


def _erring_policy(error: str) -> str | None:
    """The policy a Cedar evaluation error names (None: it names none)."""
    if not error.startswith(_POLICY_ERROR):
        return None
    policy_id, sep, _ = error[len(_POLICY_ERROR):].partition("`: ")
    return policy_id if sep else None
