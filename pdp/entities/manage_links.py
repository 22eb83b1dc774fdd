"""Managing the template links held in the entity store: what the admin API and ``pdp links``
call. A link is checked against the policy set in force (its template exists, its slots are
exactly filled, each entity's type is declared by the schema, its id is no policy's or other
link's) before one transaction writes the whole batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pdp.entities.store import AdministeredEntityStore, WriteResult
from pdp.errors import LinkError, NotFound
from pdp.policies.compiled import CompiledPolicySet, locate
from pdp.policies.links import LinkInfo, check_link, schema_problems

__all__ = ["LinkAdmin"]

MAX_LINKS_PER_WRITE = 10_000


class LinkAdmin:
    """Checked writes and listings of stored template links."""

    def __init__(self, store: AdministeredEntityStore,
                 policies: Callable[[], CompiledPolicySet]) -> None:
        self.store = store
        self._policies = policies

    def add(self, docs: Sequence[Any]) -> WriteResult:
        """Add links given in the Cedar CLI's template-linked form (all or nothing)."""
        if not isinstance(docs, list | tuple) or not docs:
            raise LinkError("expected a link {template_id, link_id, args} or an array of them")
        if len(docs) > MAX_LINKS_PER_WRITE:
            raise LinkError(f"at most {MAX_LINKS_PER_WRITE} links per write")
        compiled = self._policies()
        templates = compiled.templates()
        taken = {p.id for p in compiled.policies} | {x.link_id for x in compiled.links}
        links: list[LinkInfo] = []
        for i, doc in enumerate(docs):
            if not isinstance(doc, Mapping):
                raise LinkError(f"links[{i}] must be an object", field=f"links[{i}]")
            link = check_link(doc.get("link_id"), doc.get("template_id"), doc.get("args"),
                              templates, compiled.schema_types, taken)
            taken.add(link.link_id)
            links.append(link)
        wrong = schema_problems(links, templates, compiled.schema)
        if wrong:
            raise LinkError(next(iter(wrong.values())), field="args")
        return self.store.put_links(links)

    def remove(self, link_ids: Sequence[str]) -> WriteResult:
        result = self.store.delete_links(link_ids)
        if not result.changed:
            raise NotFound(f"no stored link {', '.join(link_ids)}")
        return result

    def list(self) -> list[dict[str, Any]]:
        """Every link: the policy set's files' (``managed_by: file``, with where) and the
        store's (``managed_by: api``), by id, each with its template's location."""
        compiled = self._policies()
        found = [dict(x.to_dict(), managed_by="file", file=x.file, line=x.line)
                 for x in compiled.links]
        found.extend(dict(x.to_dict(), managed_by="api")
                     for x in self.store.links().by_id.values())
        for doc in found:  # where each link's template is (the decision log names the link)
            doc["template"] = locate(compiled, str(doc["template_id"]))
        return sorted(found, key=lambda d: str(d["link_id"]))
