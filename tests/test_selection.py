"""`subfields` and `generic_path` on a small Strawberry schema: fragments, aliases, @skip/@include."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLResolveInfo

from xinlian.hub.executor.selection import generic_path, subfields

seen: dict[str, Any] = {}


def _names(found: dict[str, list[Any]]) -> dict[str, int]:
    return {name: len(nodes) for name, nodes in found.items()}


@strawberry.type
class Registration:
    name: str = "n"
    status: str = "s"
    address: str = "a"


@strawberry.type
class Penalty:
    @strawberry.field
    def severity(self, info: strawberry.Info) -> str:
        seen.setdefault("paths", []).append(generic_path(info._raw_info))
        return "x"

    number: str = "1"


@strawberry.type
class Subject:
    uscc: str = "u"

    @strawberry.field
    def registration(self) -> Registration:
        return Registration()

    @strawberry.field
    def penalties(self, info: strawberry.Info) -> list[Penalty]:
        seen["penalties"] = _names(subfields(info._raw_info))
        return [Penalty(), Penalty()]


@strawberry.type
class Query:
    @strawberry.field
    def subjects(self, info: strawberry.Info) -> list[Subject]:
        raw: GraphQLResolveInfo = info._raw_info
        found = subfields(raw)
        seen["subjects"] = _names(found)
        if "registration" in found:
            seen["registration"] = _names(subfields(raw, found["registration"]))
        seen["subjects_path"] = generic_path(raw)
        return [Subject(), Subject()]


SCHEMA = strawberry.Schema(Query)


def run(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    seen.clear()
    result = SCHEMA.execute_sync(query, variable_values=variables)
    assert result.errors is None, result.errors
    return seen


def test_plain_selection_drops_introspection_names() -> None:
    found = run("{ subjects { __typename uscc penalties { number } } }")
    assert found["subjects"] == {"uscc": 1, "penalties": 1}
    assert "registration" not in found


def test_named_inline_and_nested_fragments_are_followed() -> None:
    found = run(
        """
        { subjects { ...S ... on Subject { registration { ...R } } } }
        fragment S on Subject { uscc registration { name } penalties { ...P } }
        fragment R on Registration { status ... { address } }
        fragment P on Penalty { severity }
        """
    )
    assert found["subjects"] == {"uscc": 1, "registration": 2, "penalties": 1}
    assert found["registration"] == {"name": 1, "status": 1, "address": 1}
    assert found["penalties"] == {"severity": 1}


def test_a_fragment_spread_twice_is_collected_once() -> None:
    found = run("{ subjects { ...S ...S } } fragment S on Subject { uscc }")
    assert found["subjects"] == {"uscc": 1}


def test_aliases_are_merged_under_the_field_name() -> None:
    found = run("{ subjects { a: registration { name } b: registration { status } id: uscc } }")
    assert found["subjects"] == {"registration": 2, "uscc": 1}
    assert found["registration"] == {"name": 1, "status": 1}


def test_skip_and_include_with_literals_and_variables() -> None:
    query = """
    query($yes: Boolean!, $no: Boolean!) {
      subjects {
        uscc @skip(if: $yes)
        registration @include(if: $yes) { name @include(if: $no) status @skip(if: $no) address @include(if: false) }
        penalties @include(if: $no) { number }
        ...S @skip(if: true)
        ... @include(if: $yes) { uscc }
      }
    }
    fragment S on Subject { penalties { number } }
    """
    found = run(query, {"yes": True, "no": False})
    assert found["subjects"] == {"registration": 1, "uscc": 1}  # uscc through the included inline fragment
    assert found["registration"] == {"status": 1}
    found = run(query, {"yes": False, "no": True})
    assert found["subjects"] == {"uscc": 1, "penalties": 1}


def test_skip_wins_over_include() -> None:
    found = run("{ subjects { uscc @skip(if: true) @include(if: true) penalties { number } } }")
    assert found["subjects"] == {"penalties": 1}


def test_generic_path_replaces_list_indices() -> None:
    found = run("{ subjects { penalties { severity } } }")
    assert found["subjects_path"] == ("subjects",)
    assert set(found["paths"]) == {("subjects", "@", "penalties", "@", "severity")}
    assert len(found["paths"]) == 4
