"""Hypothesis profiles: ``ci`` (the default) and ``deep``.

* ``ci``: derandomized, so a run is repeatable and the suite stays quick; example counts are the
  modest ones each test asks for.
* ``deep``: random, ``DEEP_FACTOR`` times the examples, failures kept in ``.hypothesis/`` to be
  replayed; ``make test-deep`` (or ``HYPOTHESIS_PROFILE=deep``) runs every property with it.

Tests ask for ``examples(n)`` rather than a fixed ``max_examples=n`` so that ``deep`` can scale
them: an explicit count on a test would otherwise win over any profile.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["DEEP_FACTOR", "examples", "load"]

DEEP_FACTOR = 20


def load() -> str:
    """Register both profiles and load the chosen one (``HYPOTHESIS_PROFILE``, default ci)."""
    settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                              print_blob=True)
    settings.register_profile("deep", derandomize=False, deadline=None,
                              max_examples=100 * DEEP_FACTOR,
                              suppress_health_check=[HealthCheck.too_slow])
    name = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    settings.load_profile(name)
    return name


def examples(n: int) -> int:
    """``n`` examples, or ``DEEP_FACTOR`` times as many under the deep profile."""
    return n * DEEP_FACTOR if settings.get_current_profile_name() == "deep" else n
