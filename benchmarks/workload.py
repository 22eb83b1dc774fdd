"""Generated workloads: a document-sharing policy set of any size, entities, and requests.

Policies. Ten core policies are always present: role checks (``principal.role == ...``), an
owner check (``resource.owner == principal``), a group share (``principal in Group::...``),
conditions on resource attributes and on the context, and three ``forbid`` policies. The
rest are per-entity grants, as a large deployment accumulates them: a user shares a document
(``principal == User, resource == Doc``), a group gets a folder (``principal in Group,
resource in Folder``), a document is visible to a department (``resource == Doc when
principal.dept``), a group may not delete a final document (``forbid``), a user may share a
folder with MFA (``context.mfa``). Their entity ids are drawn from the stored entities, so
requests do hit them.

Entities. 10% users (a role, a department, one or two groups), 1% groups, 4% folders (some
nested), the rest documents (an owner, a department, a status, a folder; some public, some
locked). Requests: a random user, action (view, edit, delete, share) and document, with a
context of ``hour`` and ``mfa``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pdp.authzen.model import Action, Entity, EvaluationRequest

ACTIONS = ("view", "edit", "delete", "share")

CORE = """\
@id("admins-do-anything")
permit (principal, action, resource) when { principal.role == "admin" };

@id("owners-manage-their-documents")
permit (principal, action in [Action::"view", Action::"edit", Action::"delete", Action::"share"],
        resource is Doc)
when { resource.owner == principal };

@id("editors-edit-live-documents")
permit (principal, action == Action::"edit", resource is Doc)
when { principal.role == "editor" && resource.status != "archived" };

@id("viewers-view")
permit (principal, action == Action::"view", resource)
when { principal.role == "viewer" || principal.role == "editor" };

@id("group-0-views-folder-0")
permit (principal in Group::"g0", action == Action::"view", resource in Folder::"f0");

@id("anyone-views-public-documents")
permit (principal, action == Action::"view", resource)
when { resource has public && resource.public };

@id("locked-documents-are-frozen")
forbid (principal, action in [Action::"edit", Action::"delete"], resource)
when { resource has locked && resource.locked };

@id("deletes-in-business-hours")
forbid (principal, action == Action::"delete", resource)
unless { context has hour && context.hour >= 8 && context.hour < 18 };

@id("share-within-the-department")
permit (principal, action == Action::"share", resource is Doc)
when { resource.dept == principal.dept };

@id("suspended-users-do-nothing")
forbid (principal is User, action, resource)
when { principal has suspended && principal.suspended };
"""
CORE_POLICIES = CORE.count("@id(")


@dataclass(frozen=True)
class Population:
    """How many stored entities of each type (at least one of each)."""

    users: int
    groups: int
    folders: int
    docs: int

    @classmethod
    def of(cls, total: int) -> Population:
        users = max(1, total // 10)
        groups = max(1, total // 100)
        folders = max(1, total * 4 // 100)
        return cls(users, groups, folders, max(1, total - users - groups - folders))

    @property
    def total(self) -> int:
        return self.users + self.groups + self.folders + self.docs


def policies(count: int, population: Population, seed: int = 1) -> str:
    """``count`` policies (the core ten, then per-entity grants) as Cedar text."""
    rnd = random.Random(seed)
    parts = [CORE]
    p = population
    for i in range(max(0, count - CORE_POLICIES)):
        kind = i % 5
        user, group = rnd.randrange(p.users), rnd.randrange(p.groups)
        doc, folder = rnd.randrange(p.docs), rnd.randrange(p.folders)
        pid = f'@id("grant-{i}")\n'
        if kind == 0:
            parts.append(f'{pid}permit (principal == User::"u{user}", action in '
                         f'[Action::"view", Action::"edit"], resource == Doc::"d{doc}");\n')
        elif kind == 1:
            parts.append(f'{pid}permit (principal in Group::"g{group}", action == '
                         f'Action::"view", resource in Folder::"f{folder}");\n')
        elif kind == 2:
            parts.append(f'{pid}permit (principal, action == Action::"view", '
                         f'resource == Doc::"d{doc}")\nwhen {{ principal.dept == '
                         f'"dept{rnd.randrange(20)}" }};\n')
        elif kind == 3:
            parts.append(f'{pid}forbid (principal in Group::"g{group}", action == '
                         f'Action::"delete", resource == Doc::"d{doc}")\nwhen {{ '
                         f'resource.status == "final" }};\n')
        else:
            parts.append(f'{pid}permit (principal == User::"u{user}", action == '
                         f'Action::"share", resource in Folder::"f{folder}")\n'
                         f'when {{ context has mfa && context.mfa }};\n')
    return "\n".join(parts)


def entities(population: Population, seed: int = 2) -> Iterator[dict[str, Any]]:
    """Cedar entity JSON documents."""
    rnd = random.Random(seed)
    p = population

    def ref(t: str, i: str) -> dict[str, str]:
        return {"type": t, "id": i}

    for g in range(p.groups):
        parents = [ref("Group", f"g{rnd.randrange(g)}")] if g and rnd.random() < 0.3 else []
        yield {"uid": ref("Group", f"g{g}"), "attrs": {}, "parents": parents}
    for f in range(p.folders):
        parents = [ref("Folder", f"f{rnd.randrange(f)}")] if f and rnd.random() < 0.5 else []
        yield {"uid": ref("Folder", f"f{f}"), "attrs": {}, "parents": parents}
    roles = ("viewer", "viewer", "editor", "none", "none")
    for u in range(p.users):
        attrs: dict[str, Any] = {
            "role": "admin" if rnd.random() < 0.01 else rnd.choice(roles),
            "dept": f"dept{rnd.randrange(20)}"}
        if rnd.random() < 0.02:
            attrs["suspended"] = True
        groups = {rnd.randrange(p.groups) for _ in range(rnd.randint(1, 2))}
        yield {"uid": ref("User", f"u{u}"), "attrs": attrs,
               "parents": [ref("Group", f"g{g}") for g in sorted(groups)]}
    for d in range(p.docs):
        attrs = {"owner": {"__entity": ref("User", f"u{rnd.randrange(p.users)}")},
                 "dept": f"dept{rnd.randrange(20)}",
                 "status": rnd.choice(("draft", "final", "archived"))}
        if rnd.random() < 0.1:
            attrs["public"] = True
        if rnd.random() < 0.05:
            attrs["locked"] = True
        yield {"uid": ref("Doc", f"d{d}"), "attrs": attrs,
               "parents": [ref("Folder", f"f{rnd.randrange(p.folders)}")]}


def requests(population: Population, count: int, seed: int = 3) -> list[EvaluationRequest]:
    rnd = random.Random(seed)
    return [EvaluationRequest(
        Entity("User", f"u{rnd.randrange(population.users)}"),
        Action(rnd.choice(ACTIONS)),
        Entity("Doc", f"d{rnd.randrange(population.docs)}"),
        {"hour": rnd.randrange(24), "mfa": rnd.random() < 0.5}) for _ in range(count)]


def wire(request: EvaluationRequest) -> dict[str, Any]:
    """An AuthZEN request body."""
    return {"subject": {"type": request.subject.type, "id": request.subject.id},
            "action": {"name": request.action.name},
            "resource": {"type": request.resource.type, "id": request.resource.id},
            "context": dict(request.context or {})}


def write_policy_set(directory: Path, policy_count: int, population: Population,
                     *, with_entities: bool = True) -> Path:
    """A policy-set directory (``policies.cedar``, optionally ``entities.json``)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "policies.cedar").write_text(policies(policy_count, population))
    if with_entities:
        (directory / "entities.json").write_bytes(orjson.dumps(list(entities(population))))
    return directory
