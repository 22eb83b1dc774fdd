"""Cedar's entity JSON in every form Cedar accepts: generated ``entities.json`` files (the
``__entity`` escape in ``uid``, ``parents`` and attributes, ``__extn`` values, implicit entity
and extension forms with a schema, entity tags, and damaged entities) load exactly when
cedarpy loads them, with the same attributes, parents and tags; a rejection keeps Cedar's
reason. The admin API's validator loads what Cedar loads the same way."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import cedarpy
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.entities.validate import EntityValidator
from pdp.errors import EntityError, PolicyLoadError
from pdp.policies.compiled import compile_directory
from pdp.policies.schema_types import SchemaTypes

SCHEMA = """\
entity Group;
entity User in [Group] {
  n?: Long, s?: String, ip?: ipaddr, d?: decimal, m?: User, friends?: Set<User>,
  r?: { a?: Long, who?: User },
} tags String;
action read appliesTo { principal: User, resource: User };
"""

IDS = st.sampled_from(["a", "b", "c", "d", "é \"q\""])
TYPES = st.sampled_from(["User", "User", "Group", "Nope"])


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any],
           ) -> st.SearchStrategy[Any]:
    """``good`` nine times in ten."""
    return st.integers(0, 9).flatmap(lambda k: bad if k == 5 else good)


def _ref(kind: str, etype: str, eid: str) -> Any:
    plain = {"type": etype, "id": eid}
    return {"plain": plain, "escaped": {"__entity": plain}, "string": f'{etype}::"{eid}"',
            "broken": {"type": etype}}[kind]


REF_KIND = mostly(st.sampled_from(["plain", "escaped"]), st.sampled_from(["string", "broken"]))
GOOD_REF = st.builds(_ref, st.sampled_from(["plain", "escaped"]), st.just("User"), IDS)
REF = st.builds(_ref, REF_KIND, TYPES, IDS)
EXTN = st.sampled_from([
    {"__extn": {"fn": "ip", "arg": "10.0.0.1"}}, {"__extn": {"fn": "decimal", "arg": "1.25"}},
    {"__extn": {"fn": "ip", "arg": "nope"}}, {"__extn": {"fn": "unknown", "arg": "1"}},
    {"fn": "ip", "arg": "10.0.0.1"}, "10.0.0.2", "1.5", "x",
])
ANY_VALUE = st.one_of(st.integers(-3, 3), st.text("ab", max_size=2), st.booleans(), REF, EXTN,
                      st.lists(REF, max_size=2))
# each attribute mostly of its declared type (in every form Cedar accepts), sometimes not
BY_NAME = {
    "n": st.integers(-3, 3), "s": st.text("ab\"", max_size=2),
    "ip": st.sampled_from([{"__extn": {"fn": "ip", "arg": "10.0.0.1"}}, "10.0.0.2",
                           {"fn": "ip", "arg": "::1"}]),
    "d": st.sampled_from([{"__extn": {"fn": "decimal", "arg": "1.25"}}, "2.5"]),
    "m": GOOD_REF, "friends": st.lists(GOOD_REF, max_size=2),
    "r": st.fixed_dictionaries({}, optional={"a": st.integers(0, 2), "who": GOOD_REF}),
}
ATTRS = st.lists(mostly(st.sampled_from(list(BY_NAME)), st.just("zz")), max_size=3,
                 unique=True).flatmap(lambda names: st.fixed_dictionaries({
                     n: mostly(BY_NAME.get(n, ANY_VALUE), ANY_VALUE) for n in names}))
PARENT = st.builds(_ref, REF_KIND, mostly(st.just("Group"), st.just("User")), IDS)
ENTITY = st.builds(
    lambda uid, attrs, parents, tags, drop: {
        k: v for k, v in (("uid", uid), ("attrs", attrs), ("parents", parents), ("tags", tags))
        if k != drop and not (k == "tags" and v is None)},
    mostly(st.builds(_ref, REF_KIND, st.just("User"), IDS), st.one_of(st.just("x"), REF)),
    ATTRS, st.lists(PARENT, max_size=2),
    st.one_of(st.none(), st.dictionaries(st.sampled_from(["t", "u"]), mostly(
        st.text("xy", max_size=2), REF), max_size=2)),
    mostly(st.none(), st.sampled_from(["attrs", "parents"])))
FILES = st.lists(ENTITY, max_size=3)


def _cedar(text: str, schema: Any) -> list[dict[str, Any]] | None:
    try:
        parsed = cedarpy.Entities.from_json_str(text, schema)
    except ValueError:
        return None
    return [e for e in json.loads(str(parsed)) if e["uid"]["type"] != "Action"]


def _key(entities: list[Any]) -> list[str]:
    """Comparable form: Cedar keeps parents as a set (its output order varies)."""
    return sorted(json.dumps(dict(e, parents=sorted(e["parents"], key=json.dumps)),
                             sort_keys=True) for e in entities)


def _ours(text: str, with_schema: bool) -> list[Any] | None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "a.cedar").write_text("permit(principal, action, resource);\n")
        if with_schema:
            (Path(tmp) / "s.cedarschema").write_text(SCHEMA)
        (Path(tmp) / "entities.json").write_text(text)
        try:
            return list(compile_directory(tmp).entities)
        except PolicyLoadError as exc:
            assert exc.diagnostics and all(d.file == "entities.json" for d in exc.diagnostics)
            return None


CASES = settings(max_examples=200, deadline=None, derandomize=True)


@CASES
@given(entities=FILES, with_schema=st.booleans())
def test_an_entities_file_loads_exactly_when_cedar_loads_it(
        entities: list[Any], with_schema: bool) -> None:
    text = json.dumps(entities, ensure_ascii=False, indent=1)
    schema = cedarpy.Schema.from_str(SCHEMA) if with_schema else None
    expected = _cedar(text, schema)
    ours = _ours(text, with_schema)
    assert (ours is None) == (expected is None), text
    if ours is not None and expected is not None:
        assert _key(ours) == _key(expected)


@CASES
@given(entities=FILES, with_schema=st.booleans())
def test_the_admin_validator_stores_what_cedar_loads(
        entities: list[Any], with_schema: bool) -> None:
    text = json.dumps(entities)
    schema = cedarpy.Schema.from_str(SCHEMA) if with_schema else None
    expected = _cedar(text, schema)
    if expected is None or len({json.dumps(e["uid"]) for e in expected}) != len(entities):
        return  # rejected, or identical duplicates (which one write refuses)
    validator = EntityValidator(schema, SchemaTypes.from_text(SCHEMA) if with_schema else None)
    try:
        stored = validator.validate(entities)
    except EntityError as exc:
        raise AssertionError(f"refused what Cedar loads: {exc.message}\n{text}") from None
    assert _key([e.to_cedar_json() for e in stored]) == _key(expected)


def test_cedars_documented_entity_form_loads(tmp_path: Path) -> None:
    (tmp_path / "a.cedar").write_text("permit(principal, action, resource);\n")
    (tmp_path / "entities.json").write_text(json.dumps([{
        "uid": {"__entity": {"type": "User", "id": "alice"}},
        "attrs": {"manager": {"__entity": {"type": "User", "id": "bob"}},
                  "ip": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}}},
        "parents": [{"__entity": {"type": "Group", "id": "staff"}}],
        "tags": {"level": "high"}}]))
    [alice] = compile_directory(tmp_path).entities
    assert alice["uid"] == {"type": "User", "id": "alice"}
    assert alice["parents"] == [{"type": "Group", "id": "staff"}]
    assert alice["tags"] == {"level": "high"}


def test_a_rejected_entity_keeps_cedars_reason_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "a.cedar").write_text("permit(principal, action, resource);\n")
    (tmp_path / "s.cedarschema").write_text(SCHEMA)
    (tmp_path / "entities.json").write_text(
        '[\n {"uid": {"type": "User", "id": "a"}, "attrs": {}, "parents": []},\n'
        ' {"uid": {"type": "User", "id": "b"}, "attrs": {"n": "x"}, "parents": []}\n]')
    try:
        compile_directory(tmp_path)
    except PolicyLoadError as exc:
        [d] = exc.diagnostics
    else:
        raise AssertionError("loaded")
    with_cedar = ""
    try:
        cedarpy.Entities.from_json_str(
            '[{"uid": {"type": "User", "id": "b"}, "attrs": {"n": "x"}, "parents": []}]',
            cedarpy.Schema.from_str(SCHEMA))
    except ValueError as cedar:
        with_cedar = str(cedar)
    # Cedar's reason is kept, after the attribute at fault and the type it should have
    assert d.line == 3 and d.message.startswith('entity User::"b": attribute `n`'), d.message
    assert d.message.endswith(f"(Cedar: {with_cedar})"), d.message
