"""Property: over all fields × client kinds × purposes × consent states, what the executor returns
equals what the active policy allows, and nothing it denied was ever fetched from a department.

The hub runs in process on the demo district (real SQLite departments, the court's real REST
service, the HR file drop); each example builds a principal and a query, executes it through the
real schema and executor, and compares the answer, the request's audit record and the
departments' call logs with the disclosure rules stated independently of the engine
(tests/policy_oracle.py): class, scopes, purpose, consent and masks.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from policy_oracle import Expected, expected_decision
from xinlian.hub.auth.clients import CLIENT_KINDS, DEFAULT_SCOPES
from xinlian.hub.cli.demo import ensure_demo_clients
from xinlian.hub.config import Settings
from xinlian.hub.demo.generator import build_demo_district
from xinlian.hub.demo.services import start_demo_services
from xinlian.hub.principal import Principal
from xinlian.hub.runtime import HubRuntime
from xinlian.schema.catalogue import FAMILIES, RecordFamily, SubjectKind

LEGAL_SAMPLES = ("multi_department_penalties", "a_level_taxpayer", "social_insurance_arrears", "judgment_debtor", "honored")
NATURAL_SAMPLES = ("insured_person", "natural_debtor", "natural_penalty", "natural_clean")
PURPOSES = (None, "loan-review", "credit-card-review", "supply-chain-finance", "unregistered")
ALL_SCOPES = ("credit:public", "credit:shared", "credit:authorized", "admin")
CONSENTING = ("insured_person", "demo-bank", "loan-review")  # the demo's one consent on file


@dataclasses.dataclass
class InProcessHub:
    loop: asyncio.AbstractEventLoop
    runtime: HubRuntime
    samples: dict[str, str]

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    data_dir: Path = tmp_path_factory.mktemp("property-hub")
    district = build_demo_district(data_dir, legal_persons=60, natural_persons=20)
    hub_settings = Settings.from_env(data_dir, database_url=f"sqlite+aiosqlite:///{data_dir / 'hub.db'}")
    if hasattr(hub_settings, "authorized_subject_cap"):
        hub_settings = dataclasses.replace(hub_settings, authorized_subject_cap="off")
    asyncio.run(ensure_demo_clients(hub_settings, dict(district.samples)))
    services = start_demo_services(data_dir)
    loop = asyncio.new_event_loop()
    try:
        runtime = loop.run_until_complete(HubRuntime.open(hub_settings))
        try:
            yield InProcessHub(loop, runtime, dict(district.samples))
        finally:
            loop.run_until_complete(runtime.close())
    finally:
        loop.close()
        services.stop()


def families_of(kind: SubjectKind) -> list[RecordFamily]:
    return [f for f in FAMILIES.values() if kind in f.subjects]


@st.composite
def examples(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from([*CLIENT_KINDS, "public"]))
    if kind == "public":
        scopes = frozenset({"credit:public"})
    elif draw(st.booleans()):
        scopes = frozenset(DEFAULT_SCOPES[kind].split())
    else:
        scopes = frozenset(draw(st.sets(st.sampled_from(ALL_SCOPES), max_size=4)))
    allowed = frozenset(draw(st.sets(st.sampled_from(PURPOSES[1:4]), max_size=3)))
    natural = draw(st.booleans())
    subject = draw(st.sampled_from(NATURAL_SAMPLES if natural else LEGAL_SAMPLES))
    families = families_of(SubjectKind.NATURAL_PERSON if natural else SubjectKind.LEGAL_PERSON)
    chosen = draw(st.lists(st.sampled_from(families), min_size=1, max_size=len(families), unique_by=lambda f: f.name))
    selection = {f.name: draw(st.lists(st.sampled_from(f.field_names), min_size=1, unique=True)) for f in chosen}
    return {
        "kind": kind,
        "client_id": None if kind == "public" else draw(st.sampled_from(["demo-bank", "another-client"])),
        "scopes": scopes,
        "purpose": draw(st.sampled_from(PURPOSES)),
        "allowed_purposes": allowed,
        "natural": natural,
        "subject": subject,
        "selection": selection,
    }


def build_query(natural: bool, selection: dict[str, list[str]]) -> str:
    parts = []
    for name, fields in selection.items():
        family = FAMILIES[name]
        parts.append(f"{family.graphql_field} {{ {' '.join(family.field(f).graphql_name for f in fields)} }}")
    root = 'naturalPerson(idNumber: $s)' if natural else 'legalPerson(uscc: $s)'
    return f"query Q($s: String!) {{ {root} {{ {' '.join(parts)} }} }}"


def consent_case(client_id: str, subject: str) -> dict[str, Any]:
    """A bank with an allowed purpose asking for a natural person's AUTHORIZED contributions."""
    return {
        "kind": "bank", "client_id": client_id, "scopes": frozenset({"credit:public", "credit:authorized"}),
        "purpose": "loan-review", "allowed_purposes": frozenset({"loan-review"}), "natural": True,
        "subject": subject, "selection": {"social_insurance_contributions": ["employer_name", "monthly_base"]},
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(example=examples())
@example(example=consent_case("demo-bank", "insured_person"))  # consent on file: released
@example(example=consent_case("another-client", "insured_person"))  # another client: refused
@example(example=consent_case("demo-bank", "natural_debtor"))  # another person: refused
def test_what_comes_back_is_what_the_policy_allows_and_denied_fields_are_never_fetched(
    hub: InProcessHub, example: dict[str, Any]
) -> None:
    runtime = hub.runtime
    policy = runtime.policy
    subject = hub.samples[example["subject"]]
    if example["kind"] == "public":
        principal = Principal.public(policy.public_scope)
    else:
        principal = Principal(
            client_id=example["client_id"],
            kind=example["kind"],
            scopes=example["scopes"],
            purpose=example["purpose"],
            allowed_purposes=example["allowed_purposes"],
        )
    person, client, purpose = CONSENTING  # samples may coincide: compare the identifiers
    consented = (
        example["natural"]
        and (subject, principal.client_id, principal.purpose) == (hub.samples[person], client, purpose)
        and principal.purpose in principal.allowed_purposes
    )

    def decision(family: str, field: str) -> Expected:
        """The definition (tests/policy_oracle.py), not the engine: a mistake in `decide` shows here."""
        return expected_decision(
            policy, kind=principal.kind, scopes=principal.scopes, purpose=principal.purpose,
            allowed_purposes=principal.allowed_purposes, family=family, field=field,
            natural_person=example["natural"], consented=consented,
        )

    for connector in runtime.federation.connectors:
        connector.calls.clear()
    ctx = runtime.request_context(principal, public_endpoint=False)
    query = build_query(example["natural"], example["selection"])
    result = hub.run(runtime.schema.execute(query, variable_values={"s": subject}, context_value=ctx))
    errors = [e.formatted for e in result.errors or []] + ctx.denial_errors()
    forbidden_fields = {e["extensions"]["field"] for e in errors if e.get("extensions", {}).get("code") == "FORBIDDEN"}
    other = [e for e in errors if e.get("extensions", {}).get("code") != "FORBIDDEN"]
    assert not [e for e in other if e.get("extensions", {}).get("code") not in ("UPSTREAM_UNAVAILABLE", "UPSTREAM_INVALID")], other
    node = (result.data or {}).get("naturalPerson" if example["natural"] else "legalPerson")

    for name, fields in example["selection"].items():
        family = FAMILIES[name]
        allowed = [f for f in fields if decision(name, f).allowed]
        denied = [f for f in fields if f not in allowed]
        if not allowed:
            # the whole family is refused (not even whether records exist), or null for an unknown subject
            assert node is None or node.get(family.graphql_field) is None
            assert node is None or name in forbidden_fields, (name, fields)
            continue
        for f in denied:
            assert f"{name}.{f}" in forbidden_fields, (name, f)
        for f in allowed:
            assert f"{name}.{f}" not in forbidden_fields
        value = None if node is None else node.get(family.graphql_field)
        records = value if isinstance(value, list) else [value] if value else []
        for record in records:
            for f in denied:
                assert record[family.field(f).graphql_name] is None
        if records:
            assert {f"{name}.{f}" for f in allowed} <= ctx.findings.released
    # the audit record of the request names nothing the policy does not allow, and names as masked
    # exactly the released fields the policy masks for this caller
    for released in ctx.findings.released:
        family, field = released.split(".")
        assert decision(family, field).allowed, released
        assert (released in ctx.findings.masked) == (decision(family, field).mask is not None), released
    # no department was ever asked for a field the caller may not receive
    for connector in runtime.federation.connectors:
        for call in connector.calls:
            for field in call.fields:
                assert decision(call.family, field).allowed, (connector.name, call.family, field, example)
