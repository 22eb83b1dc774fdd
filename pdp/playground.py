"""The playground's logic, free of any web framework: show a policy set (the served one,
read-only, or a scratch set compiled from pasted text), its tests' requests as examples, and
decide an AuthZEN request against it with everything a policy author wants to see — the
decision, the determining policies with the lines they span, the errors, the entities the
decision read and the Cedar request.

A scratch set is compiled from text in a private temporary directory that is removed at once;
it never touches the served set, the entity store or the decision log.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pdp.auth import authenticators, is_loopback
from pdp.authzen.evaluation import parse_evaluation
from pdp.engine import Engine, EngineOptions
from pdp.entities.model import StoredEntity
from pdp.entities.store import InMemoryEntityStore
from pdp.errors import ConfigurationError, PDPError, PolicyLoadError, RequestError
from pdp.policies.compiled import CompiledPolicySet, compile_directory
from pdp.policies.source import split_statements
from pdp.service.testing import discover
from pdp.settings import Settings

__all__ = ["Scratch", "SCRATCH_POLICY_FILE", "policy_set_view", "compile_scratch", "decide",
           "policy_texts", "scratch_engine", "diagnostics", "check_playground",
           "playground_is_open"]

SCRATCH_POLICY_FILE = "scratch.cedar"
_MAX_TEST_FILE_BYTES = 1_048_576
_MAX_EXAMPLES = 200


@dataclass(frozen=True, slots=True)
class Scratch:
    """A policy set pasted into the playground: policies, optional schema and entities."""

    policies: str
    schema: str = ""
    entities: str = ""

    @classmethod
    def from_json(cls, raw: Any) -> Scratch:
        if not isinstance(raw, dict):
            raise RequestError("`scratch` must be an object", field="scratch")
        values = {}
        for key in ("policies", "schema", "entities"):
            value = raw.get(key, "")
            if not isinstance(value, str):
                raise RequestError(f"`scratch.{key}` must be a string", field=f"scratch.{key}")
            values[key] = value
        return cls(**values)


def playground_is_open(settings: Settings) -> bool:
    """Open to anyone who reaches it only on loopback with no PEP credentials configured."""
    pep, _ = authenticators(settings)
    return is_loopback(settings.host) and not pep.enabled


def check_playground(settings: Settings) -> None:
    """Refuse (ConfigurationError) a playground that would be open where it must not be."""
    if not settings.playground or playground_is_open(settings):
        return
    _, admin = authenticators(settings)
    if not admin.enabled:
        raise ConfigurationError(
            f"the playground (PDP_PLAYGROUND) is served on {settings.host!r} with PEP "
            "credentials or on a non-loopback address only behind an admin credential: set "
            "PDP_ADMIN_API_KEYS (see `pdp keys new --admin`), or serve it on 127.0.0.1 "
            "without PEP credentials")


def _examples(directory: Path) -> list[dict[str, Any]]:
    """The requests of the set's own test files, named after their cases."""
    examples: list[dict[str, Any]] = []
    for path in discover(directory):
        try:
            if path.stat().st_size > _MAX_TEST_FILE_BYTES:
                continue
            text = path.read_text(encoding="utf-8")
            doc = json.loads(text) if path.name.endswith(".json") else yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
            continue  # `pdp test` reports broken test files; here they give no examples
        cases = doc.get("cases") if isinstance(doc, dict) else None
        for case in cases if isinstance(cases, list) else []:
            if isinstance(case, dict) and isinstance(case.get("request"), dict):
                examples.append({"file": path.name, "name": str(case.get("name", "")),
                                 "decision": str(case.get("decision", "")),
                                 "request": case["request"]})
            if len(examples) >= _MAX_EXAMPLES:
                return examples
    return examples


def policy_set_view(compiled: CompiledPolicySet) -> dict[str, Any]:
    """The served set as the playground shows it: its files' text and its tests' requests."""
    files = []
    for name in compiled.files:
        try:
            text = (compiled.directory / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        files.append({"name": name, "text": text})
    return {"directory": compiled.directory.name, "version": compiled.version,
            "files": files, "examples": _examples(compiled.directory)}


def compile_scratch(scratch: Scratch) -> CompiledPolicySet:
    """Compile pasted text; PolicyLoadError (with every diagnostic) when it is invalid."""
    with tempfile.TemporaryDirectory(prefix="pdp-playground-") as tmp:
        directory = Path(tmp)
        (directory / SCRATCH_POLICY_FILE).write_text(scratch.policies, encoding="utf-8")
        if scratch.schema.strip():
            (directory / "scratch.cedarschema").write_text(scratch.schema, encoding="utf-8")
        if scratch.entities.strip():
            (directory / "entities.json").write_text(scratch.entities, encoding="utf-8")
        return compile_directory(directory)


def _span(compiled: CompiledPolicySet, texts: dict[str, str], policy_id: str,
          ) -> dict[str, Any]:
    info = compiled.policy(policy_id)
    if info is None:
        return {"id": policy_id}
    end = info.line
    statements, _ = split_statements(info.file, texts.get(info.file, ""))
    for statement in statements:
        if statement.line <= info.line <= statement.line + statement.text.count("\n"):
            end = statement.line + statement.text.rstrip().count("\n")
            break
    return {"id": policy_id, "effect": info.effect, "file": info.file, "line": info.line,
            "end_line": end}


def policy_texts(compiled: CompiledPolicySet) -> dict[str, str]:
    """The text of each policy file of a set on disk, by file name."""
    texts: dict[str, str] = {}
    for info in compiled.policies:
        if info.file not in texts:
            try:
                texts[info.file] = (compiled.directory / info.file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                texts[info.file] = ""
    return texts


def decide(engine: Engine, compiled: CompiledPolicySet, texts: dict[str, str],
           body: Any) -> dict[str, Any]:
    """Decide one AuthZEN evaluation request and explain it (``texts``: the policy files'
    text, to find where each determining policy ends). RequestError when the request is not a
    valid AuthZEN request; evaluation problems are in the answer (a deny)."""
    request = parse_evaluation(body)
    decision = engine.decide([request])[0]
    answer: dict[str, Any] = {
        "decision": decision.allowed, "outcome": decision.outcome,
        "policies": [_span(compiled, texts, pid) for pid in decision.reasons],
        "errors": list(decision.errors),
        "error": decision.error,
        "response": decision.to_wire(False),
    }
    try:
        cedar = engine.cedar_input(request)
        answer["cedar_request"] = cedar.request
        answer["entities"] = [e for e in cedar.entities
                              if e.get("uid", {}).get("type", "").split("::")[-1] != "Action"]
    except PDPError as exc:  # translation failed: the decision above already says so
        answer["cedar_request"] = None
        answer["entities"] = []
        answer.setdefault("errors", []).append(exc.message)
    return answer


def scratch_engine(compiled: CompiledPolicySet, options: EngineOptions) -> Engine:
    """An engine over a scratch set, with its own ``entities.json`` in memory."""
    entities = [StoredEntity.from_cedar_json(doc) for doc in compiled.entities]
    return Engine(lambda: compiled, InMemoryEntityStore(entities),
                  options.model_copy(update={"decision_cache_bytes": 0}))


def diagnostics(exc: PolicyLoadError) -> list[dict[str, Any]]:
    return [d.to_dict() for d in exc.diagnostics]
