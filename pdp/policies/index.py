"""Slice index: from a request's (action, principal, resource) to the policies that can apply.

This first form keeps one slice, the whole set; it is the seam the compiled policy cache
replaces with a real index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SliceIndex"]


@dataclass(frozen=True, slots=True)
class SliceIndex:
    full: Any  # cedarpy.PolicySet

    @classmethod
    def build(cls, policy_set: Any, policies: Sequence[Any]) -> SliceIndex:
        return cls(policy_set)

    def select(self, action: str, principal_type: str, principal_id: str,
               resource_type: str, resource_id: str) -> Any:
        return self.full
