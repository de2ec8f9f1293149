"""User metadata and filters on it: the typing rule, the checks, the messages (pure functions)."""

from __future__ import annotations

import pytest

from rag.errors import ConfigError, QueryError
from rag.metadata import check_metadata, check_types, check_where, coerce_where, key_types, matches, parse_pairs, parse_where


def test_values_are_typed_by_their_spelling():
    got = parse_pairs(["team=finance", "year=2025", "ratio=9.5", "big=1e3", "draft=TRUE", "title=Q3 report", "nan=nan", "neg=-3"])
    assert got == {"team": "finance", "year": 2025, "ratio": 9.5, "big": 1000.0, "draft": True, "title": "Q3 report",
                   "nan": "nan", "neg": -3}  # fmt: skip
    assert type(got["year"]) is int and type(got["draft"]) is bool


@pytest.mark.parametrize(
    ("items", "needle"),
    [(["team"], "KEY=VALUE"), (["a.b=1"], "letters, digits"), (["team=x", "team=y"], "given twice"), (["=x"], "not valid")],
)
def test_bad_meta_arguments_say_what_to_write(items, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_pairs(items)


def test_metadata_is_flat_and_finite():
    with pytest.raises(ConfigError, match="flat"):
        check_metadata({"tags": ["a", "b"]})
    with pytest.raises(ConfigError, match="finite"):
        check_metadata({"x": float("inf")})
    assert check_metadata(None) == {}


def test_where_repeats_are_anded_and_commas_are_any_of():
    assert parse_where(["team=finance,legal", "year=2025"]) == {"team": ["finance", "legal"], "year": 2025}
    with pytest.raises(QueryError, match="given twice"):
        parse_where(["team=a", "team=b"])
    with pytest.raises(QueryError, match="empty list"):
        check_where({"team": []})


def test_one_key_holds_one_type_in_a_knowledge_base():
    held = key_types([{"year": 2024, "team": "ops"}, {"ratio": 1, "team": "x"}, {"ratio": 0.5}])
    assert held == {"year": "integer", "team": "string", "ratio": "number"}
    with pytest.raises(ConfigError, match="holds integer values under 'year'"):
        check_types({"year": "last"}, held)
    # an integer is stored as a number where numbers are held, so one filter finds both
    assert check_types({"ratio": 2, "new": True}, held) == {"ratio": 2.0, "new": True}


def test_where_values_take_the_type_their_key_holds():
    held = {"year": "integer", "team": "string", "draft": "boolean", "ratio": "number"}
    typed = coerce_where({"year": "2025", "team": 7, "draft": "false", "ratio": [1, "0.5"]}, held)
    assert typed == {"year": 2025, "team": "7", "draft": False, "ratio": [1.0, 0.5]}
    with pytest.raises(QueryError, match="no document has the metadata key 'teem'; the keys in this knowledge base: "):
        coerce_where({"teem": "ops"}, held)
    with pytest.raises(QueryError, match="integer values under 'year'"):
        coerce_where({"year": "soon"}, held)


def test_matches_needs_every_key_and_one_of_its_values():
    doc = {"team": "ops", "year": 2025, "draft": True}
    assert matches(doc, {"team": ["ops", "legal"], "year": 2025})
    assert not matches(doc, {"team": "ops", "year": 2024})
    assert not matches(doc, {"owner": "me"})
    assert not matches({"year": 1}, {"year": True}), "True is not the integer 1"
