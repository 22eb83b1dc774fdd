"""Splitting Cedar policy files into statements and locating errors in them
(:mod:`pdp.policies.source`)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.policies.source import Statement, locate_in_statement, split_statements
from tests.profiles import examples

TWO_POLICIES = """\
// Readers read.
@id("readers")
permit (principal, action == Action::"read", resource);

/* not a comment in Cedar, but a string "a;b" is fine */
"""


def test_statements_are_split_at_top_level_semicolons_with_their_start_positions() -> None:
    text = ('@id("a")\npermit(principal, action, resource);\n'
            '  forbid(principal, action, resource) when { true };\n'
            '\n// comment; with a semicolon\n'
            'permit(\n  principal,\n  action,\n  resource\n);')
    statements, errors = split_statements("p.cedar", text)
    assert errors == []
    assert [(s.index, s.line, s.column) for s in statements] == [(1, 1, 1), (2, 3, 3), (3, 6, 1)]
    assert statements[0].text == '@id("a")\npermit(principal, action, resource);'
    assert statements[1].text == "forbid(principal, action, resource) when { true };"
    assert statements[2].text.endswith("resource\n);")
    assert all(s.file == "p.cedar" for s in statements)


def test_semicolons_inside_strings_comments_and_brackets_do_not_split() -> None:
    text = ('permit(principal, action, resource) when {\n'
            '  principal.name == "a;b\\";c" // trailing; comment\n'
            '  && [1, 2].contains(1)\n'
            '};\n'
            '@note("x;y") forbid(principal, action, resource);\n')
    statements, errors = split_statements("p.cedar", text)
    assert errors == []
    assert len(statements) == 2
    assert statements[1].line == 5 and statements[1].column == 1
    assert statements[1].text.startswith('@note("x;y")')


def test_an_unterminated_string_is_reported_where_it_opens() -> None:
    text = 'permit(principal, action, resource);\npermit(principal, action, resource) ' \
           'when { principal.name == "abc };\n'
    statements, errors = split_statements("p.cedar", text)
    assert len(statements) == 1
    assert [(e.file, e.line, e.column) for e in errors] == [("p.cedar", 2, 62)]
    assert "unterminated string" in errors[0].message


def test_a_string_may_span_lines_as_in_cedar() -> None:
    statements, errors = split_statements("p.cedar", 'permit(principal, action, resource) when {\n'
                                                     '  principal.name == "abc\n;" };\n'
                                                     '@doc("two\nlines;")\nforbid(principal, '
                                                     'action, resource);')
    assert errors == []
    assert [(s.line, s.column) for s in statements] == [(1, 1), (4, 1)]
    assert statements[1].annotations == (("doc", "two\nlines;"),)
    assert statements[1].first_line == "forbid(principal, action, resource);"


def test_an_effect_keyword_inside_an_annotation_is_not_the_head_end() -> None:
    st_ = _one('@doc("permit (x)")\n@id("real")\nforbid(principal, action, resource);')
    assert st_.annotation_id == "real"
    assert st_.head == '@doc("permit (x)")\n@id("real")\n'


def test_a_comment_ends_at_a_carriage_return_or_line_feed() -> None:
    statements, errors = split_statements("p.cedar", '// a "quote; here\rpermit(principal, '
                                                     'action, resource);')
    assert errors == [] and len(statements) == 1


def test_a_statement_without_its_semicolon_is_reported_where_it_ends() -> None:
    statements, errors = split_statements("p.cedar", "permit(principal, action, resource);\n\n"
                                                     "  forbid(principal, action, resource)\n")
    assert len(statements) == 1
    assert [(e.line, e.column) for e in errors] == [(3, 38)]
    assert "`;`" in errors[0].message


def test_only_comments_and_blanks_make_no_statement() -> None:
    assert split_statements("p.cedar", "// nothing\n\n   \n// here\n") == ([], [])


def _one(text: str) -> Statement:
    statements, errors = split_statements("p.cedar", text)
    assert errors == [] and len(statements) == 1
    return statements[0]


def test_a_statement_knows_its_id_annotation_head_and_first_line() -> None:
    st_ = _one('@id("editors \\"write\\"")\n@advice("x")\npermit (\n  principal\n, action,'
               ' resource);')
    assert st_.annotation_id == 'editors \\"write\\"'
    assert st_.head == '@id("editors \\"write\\"")\n@advice("x")\n'
    assert st_.first_line == "permit ("
    assert st_.describe() == '@id("editors \\"write\\"")'


def test_a_statement_without_an_id_is_described_by_its_position_and_first_line() -> None:
    statements, _ = split_statements("p.cedar", 'permit(principal, action, resource);\n'
                                                '@note("x")\nforbid (principal, action, '
                                                'resource) when { principal.x };')
    assert statements[1].annotation_id is None
    assert statements[1].describe() == \
        "#2 `forbid (principal, action, resource) when { principal.x };`"


def test_an_id_inside_the_body_is_not_the_annotation() -> None:
    st_ = _one('permit(principal, action, resource) when { context.note == "@id(\\"x\\")" };')
    assert st_.annotation_id is None


def test_positions_inside_a_statement_map_to_file_lines_and_columns() -> None:
    statements, _ = split_statements("p.cedar", "\n\n   permit(principal,\n"
                                                "  action, resource);")
    st_ = statements[0]
    assert (st_.line, st_.column) == (3, 4)
    assert st_.position_of(0) == (3, 4)
    assert st_.position_of(7) == (3, 11)  # `principal`
    at = st_.text.index("action")
    assert st_.position_of(at) == (4, 3)


def test_an_error_is_located_at_the_backticked_token() -> None:
    st_ = _one('@id("p")\npermit(\n  principal,\n  action,\n  resource\n) when { 1 + };')
    assert locate_in_statement(st_, "unexpected token `}`") == (6, 14)


def test_a_token_is_found_as_a_whole_word_not_inside_a_longer_one() -> None:
    st_ = _one("permit(principal, action, resource)\nwhen { principal.x == 1 whe };")
    assert locate_in_statement(st_, "unexpected token `whe`") == (2, 25)


def test_an_error_ending_in_a_bare_token_is_located_there() -> None:
    st_ = _one("permit(principal, action, resource)\nwhen { principal.x && y };")
    assert locate_in_statement(st_, "invalid variable: y") == (2, 23)


def test_a_token_inside_the_annotations_is_not_taken() -> None:
    st_ = _one('@id("resource")\npermit(principal, action, resource);')
    assert locate_in_statement(st_, "unexpected token `resource`") == (2, 27)


def test_an_unknown_token_falls_back_to_the_statement_start() -> None:
    st_ = _one("\n  permit(principal, action, resource);")
    assert locate_in_statement(st_, "something went wrong") == (2, 3)
    assert locate_in_statement(st_, "unexpected token `zzz`") == (2, 3)


POLICY_BODIES = st.sampled_from([
    "permit(principal, action, resource);",
    'forbid(principal, action, resource) when { principal.name == "x;y" };',
    "permit(\n  principal,\n  action,\n  resource\n) unless { [1, 2].contains(3) };",
    '@id("p;1")\npermit(principal, action, resource);',
    'permit(principal, action, resource) when { context.s like "*// not a comment" };',
])
SEPARATORS = st.sampled_from(["\n", "\n\n", "  ", "\n// a comment; here\n", "\t\n  "])


@settings(max_examples=examples(100), deadline=None)
@given(parts=st.lists(st.tuples(SEPARATORS, POLICY_BODIES), min_size=1, max_size=6),
       tail=SEPARATORS)
def test_splitting_finds_every_statement_where_it_was_put(
        parts: list[tuple[str, str]], tail: str) -> None:
    text = ""
    expected: list[tuple[str, int, int]] = []
    for separator, body in parts:
        text += separator
        line = text.count("\n") + 1
        column = len(text) - (text.rfind("\n") + 1) + 1
        expected.append((body, line, column))
        text += body
    text += tail
    statements, errors = split_statements("gen.cedar", text)
    assert errors == []
    assert [(s.text, s.line, s.column) for s in statements] == expected
    assert [s.index for s in statements] == list(range(1, len(parts) + 1))


def test_the_module_docstring_example_file_splits_into_one_statement() -> None:
    statements, errors = split_statements("p.cedar", TWO_POLICIES.split("/*")[0])
    assert errors == []
    assert [s.annotation_id for s in statements] == ["readers"]


@pytest.mark.parametrize("text", ['permit(principal, action, resource) when { "\\', "\""])
def test_a_string_cut_by_the_end_of_the_file_is_reported_not_raised(text: str) -> None:
    statements, errors = split_statements("p.cedar", text)
    assert statements == []
    assert len(errors) == 1 and "unterminated" in errors[0].message


def test_an_unclosed_bracket_is_reported_where_it_opens_not_where_the_policy_starts() -> None:
    text = '@id("a")\npermit (principal, action, resource)\nwhen { principal.age > 3 ;\n'
    statements, [error] = split_statements("p.cedar", text)
    assert statements == []
    assert (error.line, error.column) == (3, 6)
    assert error.message == ("`{` is never closed (a `;` inside brackets does not end the "
                             "policy)")


def test_a_policy_without_its_semicolon_is_reported_where_the_semicolon_belongs() -> None:
    text = 'permit (principal, action, resource)\nwhen { true }\n\n'
    statements, [error] = split_statements("p.cedar", text)
    assert (error.line, error.column) == (2, 14)
    assert error.message == "expected `;` at the end of the policy"
