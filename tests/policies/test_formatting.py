"""Formatting Cedar text (:func:`pdp.policies.formatting.format_cedar`)."""

from __future__ import annotations

import pytest

from pdp.errors import PolicyLoadError
from pdp.policies.formatting import comments, format_cedar

UNFORMATTED = """\
// who may read
@id("readers")
permit(principal,action==Action::"read",resource) // trailing
when { principal.level>3 };
"""


def test_formatting_keeps_comments_and_annotations_and_is_idempotent() -> None:
    formatted = format_cedar(UNFORMATTED, "a.cedar")
    assert formatted != UNFORMATTED
    assert comments(formatted) == ["who may read", "trailing"]
    assert '@id("readers")' in formatted
    assert 'action == Action::"read"' in formatted
    assert format_cedar(formatted, "a.cedar") == formatted


def test_an_unparseable_file_is_reported_at_its_line_and_column() -> None:
    text = '@id("ok")\npermit(principal, action, resource);\n\npermit(principal, action, ' \
           'resource) when { 1 + };\n'
    with pytest.raises(PolicyLoadError) as caught:
        format_cedar(text, "bad.cedar")
    (d,) = caught.value.diagnostics
    assert (d.file, d.line, d.column) == ("bad.cedar", 4, 48)
    assert str(d).startswith("bad.cedar:4:48: ")


def test_comments_inside_strings_are_not_comments() -> None:
    assert comments('permit(principal, action, resource) when { resource.url == "a//b" };'
                    " // real\n") == ["real"]


def test_a_text_without_policies_is_left_alone() -> None:
    assert format_cedar("\n", "empty.cedar") == "\n"


def test_a_formatter_that_would_drop_a_comment_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the safeguard against a future formatter losing comments: simulate one that does
    import cedarpy

    real = cedarpy.format_policies
    monkeypatch.setattr(cedarpy, "format_policies", lambda text, **kw: "\n".join(
        line.split("//")[0] for line in real(text, **kw).splitlines()) + "\n")
    with pytest.raises(PolicyLoadError) as caught:
        format_cedar(UNFORMATTED, "a.cedar")
    assert caught.value.diagnostics[0].message == (
        "not formatted: Cedar's formatter would change or drop comments")
