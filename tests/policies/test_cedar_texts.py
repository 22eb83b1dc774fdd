"""Every text Cedar parses loads, and only those: generated policy files (strings holding
newlines, quotes, semicolons, braces and escapes; comments; several policies on one line;
annotations; templates), some of them damaged, are loaded by
:func:`pdp.policies.compiled.compile_directory` and by cedarpy, which must agree. A loaded
set has one policy per Cedar policy, each with a unique id found where it was written, and
the same ids after a reload."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import cedarpy
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.errors import PolicyLoadError
from pdp.policies.compiled import compile_directory

PIECES = st.sampled_from([
    "a", " ", "\n", '\\"', ";", "{", "}", "(", ")", "\\\\", "\\n", "\\t", "\\0", "\\u{e9}",
    "//", "@", "permit (", "é", "'", "\\r",
])
STRING_BODY = st.lists(PIECES, max_size=6).map("".join)
LITERAL = STRING_BODY.map(lambda s: f'"{s}"')
ANNOTATION = st.one_of(
    st.builds(lambda name, value: f"@{name}({value})",
              st.sampled_from(["id", "doc", "advice"]), LITERAL),
    st.builds(lambda value: f'@id("{value}")', st.sampled_from(["p", "q", "a.cedar:1"])),
    st.just("@note"),
)
SCOPE = st.sampled_from([
    "(principal, action, resource)",
    '(principal == User::"x;y", action == Action::"read", resource)',
    "(principal == ?principal, action, resource in ?resource)",
    "(\n  principal,\n  action,\n  resource\n)",
])
CONDITION = st.one_of(
    st.just(""),
    LITERAL.map(lambda s: f" when {{ context.s == {s} }}"),
    LITERAL.map(lambda s: f"\nunless {{\n  context.s like {s} // x\n}}"),
    st.just(' when { principal.tags.contains("}") && [1, 2].contains(1) }'),
)
COMMENT = STRING_BODY.map(lambda s: "// " + s.replace("\n", " ").replace("\r", " ") + "\n")
SEPARATOR = st.one_of(st.sampled_from(["", " ", "\n", "\n\n", "\t"]), COMMENT)
POLICY = st.builds(lambda anns, sep, effect, scope, cond: "".join(a + sep for a in anns)
                   + effect + scope + cond + ";",
                   st.lists(ANNOTATION, max_size=3), st.sampled_from([" ", "\n"]),
                   st.sampled_from(["permit", "forbid"]), SCOPE, CONDITION)
DAMAGE = st.one_of(st.none(), st.tuples(st.integers(0, 10_000),
                                        st.sampled_from(["", '"', ";", "}", "/", "@", "\\"])))


def _cedar_count(text: str) -> int | None:
    """How many policies Cedar finds in ``text``; None if Cedar rejects it."""
    try:
        cedarpy.PolicySet.from_str(text)
        doc = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError:
        return None
    return len(doc["staticPolicies"]) + len(doc["templates"])


def _load(text: str) -> list[tuple[str, int, int]] | None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "a.cedar").write_text(text)
        try:
            first = compile_directory(tmp)
        except PolicyLoadError as exc:
            assert all(d.file == "a.cedar" and d.line is not None for d in exc.diagnostics)
            return None
        again = compile_directory(tmp)
    found = [(p.id, p.line, p.column) for p in first.policies]
    assert [(p.id, p.line, p.column) for p in again.policies] == found
    return found


@settings(max_examples=250, deadline=None, derandomize=True)
@given(policies=st.lists(st.tuples(SEPARATOR, POLICY), max_size=5), tail=SEPARATOR,
       damage=DAMAGE)
def test_a_generated_text_loads_exactly_when_cedar_parses_it(
        policies: list[tuple[str, str]], tail: str,
        damage: tuple[int, str] | None) -> None:
    text, starts = "", []
    for separator, policy in policies:
        text += separator
        starts.append((text.count("\n") + 1, len(text) - text.rfind("\n")))
        text += policy
    text += tail
    if damage is not None and text:
        at, insert = damage[0] % len(text), damage[1]
        text = text[:at] + insert + text[at + (0 if insert else 1):]
    expected = _cedar_count(text)
    loaded = _load(text)
    assert (loaded is None) == (expected is None), text
    if loaded is None:
        return
    assert len(loaded) == expected
    assert len({pid for pid, _, _ in loaded}) == len(loaded), loaded
    if damage is None:
        assert [(line, column) for _, line, column in loaded] == starts


def test_two_policies_without_id_on_one_line_get_two_ids(tmp_path: Path) -> None:
    (tmp_path / "a.cedar").write_text("permit(principal, action, resource); "
                                      "forbid(principal, action, resource) when { false };\n")
    compiled = compile_directory(tmp_path)
    assert [p.id for p in compiled.policies] == ["a.cedar:1:1", "a.cedar:1:38"]


def test_a_generated_id_never_takes_an_annotated_policys_id(tmp_path: Path) -> None:
    (tmp_path / "a.cedar").write_text('@id("a.cedar:3")\npermit(principal, action, resource);\n'
                                      "forbid(principal, action, resource);\n")
    compiled = compile_directory(tmp_path)
    assert [p.id for p in compiled.policies] == ["a.cedar:3", "a.cedar:3:1"]


def test_a_string_spanning_lines_in_an_annotation_and_a_condition_loads(tmp_path: Path) -> None:
    (tmp_path / "a.cedar").write_text('@doc("first line;\nsecond { line")\n@id("p")\n'
                                      'permit(principal, action, resource) when {\n'
                                      '  context.note == "a\nb"\n};\n')
    compiled = compile_directory(tmp_path)
    assert [(p.id, p.line) for p in compiled.policies] == [("p", 1)]
