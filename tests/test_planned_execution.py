"""The planned executor answers exactly what graphql-core answers (hub/executor/planned.py).

Every example is executed twice through the real schema and executor of an in-process hub on the
demo district — once with the planned executor switched off (every field through Strawberry and
graphql-core, as before) and once with it on — and everything observable must be equal: the data,
the errors (formatted as the endpoint formats them, in order, with their locations and paths), the
FORBIDDEN denials and their order, the audit findings (subjects, released / denied / masked fields,
the row rules applied, the denials), the anti-harvesting alerts, and every department call (family,
keys, fields, in order).

The examples vary the query shape (one subject or a batch, aliases, repeated and merged fields,
fragments, inline fragments, @skip / @include with literals and variables, a second operation in
the document), the caller (client kind, scopes, purpose, allowed purposes, the public endpoint),
the policy (fields reclassified, masks added, row rules for every audience), the subjects (known,
unknown to the registry, without a registry, invalid, repeated, over the batch limit) and the
departments (down at once or after other departments answered, contracts broken, one key failed,
chunked batches, the PUBLIC cache).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xinlian.connectors.contract import UpstreamInvalid, UpstreamUnavailable
from xinlian.hub.auth.clients import CLIENT_KINDS
from xinlian.hub.cli.demo import ensure_demo_clients
from xinlian.hub.config import Settings
from xinlian.hub.demo.generator import build_demo_district
from xinlian.hub.demo.services import start_demo_services
from xinlian.hub.endpoints.graphql_http import format_error
from xinlian.hub.executor.planned import planner_of
from xinlian.hub.principal import Principal
from xinlian.hub.runtime import HubRuntime
from xinlian.policies.masking import parse_mask
from xinlian.policies.model import DisclosureClass, Policy
from xinlian.policies.rules import EVERYONE
from xinlian.schema.catalogue import FAMILIES, SubjectKind
from xinlian.schema.identifiers import USCC_ALPHABET, org_code_check_char, uscc_check_char

LEGAL_FAMILIES = [f for f in FAMILIES.values() if SubjectKind.LEGAL_PERSON in f.subjects]
SCOPES = ("credit:public", "credit:shared", "credit:authorized", "admin")
PURPOSES = (None, "loan-review", "credit-card-review", "unregistered")
FAULTS = (None, None, None, None, "down", "broken", "one-key")
DEPARTMENTS = ("market", "tax", "environment", "courts", "hr")
INVALID = "91110000600037341N"  # a check character that does not match


def rarely(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in `one_in` draws (the rare case last, so shrinking leaves it out)."""
    return draw(st.sampled_from([False] * (one_in - 1) + [True]))


def make_uscc(rng: random.Random, authority: str = "9") -> str:
    org8 = "MA" + "".join(rng.choice(USCC_ALPHABET) for _ in range(6))
    body = authority + "1" + "150102" + org8 + org_code_check_char(org8)
    return body + uscc_check_char(body)


@dataclasses.dataclass
class InProcessHub:
    loop: asyncio.AbstractEventLoop
    runtime: HubRuntime
    codes: dict[str, list[str]]  # kind of subject → codes
    disputed: str  # a legal person with an open objection against one of its penalties

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    data_dir: Path = tmp_path_factory.mktemp("planned-hub")
    district = build_demo_district(data_dir, legal_persons=60, natural_persons=20)
    hub_settings = Settings.from_env(data_dir, database_url=f"sqlite+aiosqlite:///{data_dir / 'hub.db'}")
    # the cap off: both executions must see the same admissions; a small batch limit to cross
    hub_settings = dataclasses.replace(hub_settings, authorized_subject_cap="off", batch_limit=12)
    asyncio.run(ensure_demo_clients(hub_settings, dict(district.samples)))
    with sqlite3.connect(data_dir / "departments" / "market.db") as db:
        registered = [row[0] for row in db.execute("SELECT tyshxydm FROM qy_jbxx LIMIT 12")]
    rng = random.Random(7)
    samples = [code for name, code in district.samples.items() if not name.startswith(("natural", "insured"))]
    codes = {
        "sample": samples,
        "registered": registered,
        "unknown": [make_uscc(rng) for _ in range(3)],  # the market registry does not know them
        "unregistered": [make_uscc(rng, authority="1") for _ in range(2)],  # no registry for authority 1
    }
    services = start_demo_services(data_dir)
    loop = asyncio.new_event_loop()
    try:
        runtime = loop.run_until_complete(HubRuntime.open(hub_settings))
        for department in runtime.federation.departments:
            if department.name == "tax":
                department.connector.batch_size = 3  # chunked batches
            if department.name == "environment":
                object.__setattr__(department, "cache_ttl", 60.0)  # the PUBLIC cache in play
        sample = district.samples["multi_department_penalties"]
        penalty = _first_record(loop, runtime, sample)
        assert penalty is not None
        # an open objection: underObjection true on one of its records
        loop.run_until_complete(runtime.objections.file(sample, "penalties", penalty, "disputed", "test"))
        try:
            yield InProcessHub(loop, runtime, codes, sample)
        finally:
            loop.run_until_complete(runtime.close())
    finally:
        loop.close()
        services.stop()


def _first_record(loop: asyncio.AbstractEventLoop, runtime: HubRuntime, uscc: str) -> str | None:
    principal = Principal("t", "department", frozenset({"credit:shared"}))
    ctx = runtime.request_context(principal, public_endpoint=False)
    query = "query($c: String!) { legalPerson(uscc: $c) { penalties { decisionNumber } } }"
    result = loop.run_until_complete(runtime.schema.execute(query, variable_values={"c": uscc}, context_value=ctx))
    penalties = ((result.data or {}).get("legalPerson") or {}).get("penalties") or []
    return penalties[0]["decisionNumber"] if penalties else None


# ---- examples ---------------------------------------------------------------------------------
@st.composite
def selections(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A subject selection and the fragments it uses."""
    fragments: list[str] = []
    parts: list[str] = []
    if draw(st.booleans()):
        parts.append("uscc")
    if rarely(draw, 4):
        parts.append("__typename")
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["name", "n: name", "name @include(if: $flag)"])))
    chosen = draw(st.lists(st.sampled_from(LEGAL_FAMILIES), min_size=0, max_size=4))
    for number, family in enumerate(chosen):
        names = [s.graphql_name for s in family.fields] + ["__typename"] * 1
        if family.record_key is not None:
            names.append("underObjection")
        leaves = draw(st.lists(st.sampled_from(names), min_size=1, max_size=6))
        rendered = []
        for leaf in leaves:
            alias = draw(st.sampled_from(["", "", "", f"{leaf}X: "]))
            condition = draw(st.sampled_from(["", "", "", "", " @skip(if: true)", " @include(if: $flag)", " @skip(if: $flag)"]))
            rendered.append(f"{alias}{leaf}{condition}")
        wrap = draw(st.sampled_from(["plain", "plain", "inline", "fragment"]))
        body = " ".join(rendered)
        if wrap == "inline":
            body = f"... on {family.type_name} {{ {body} }}"
        elif wrap == "fragment":
            fragments.append(f"fragment F{number} on {family.type_name} {{ {body} }}")
            body = f"...F{number}"
        alias = draw(st.sampled_from(["", "", f"f{number}: "]))
        parts.append(f"{alias}{family.graphql_field} {{ {body} }}")
    if not parts:
        parts.append("uscc")
    if rarely(draw, 5):  # part of the subject's selection in a fragment
        fragments.append(f"fragment S on LegalPerson {{ {parts.pop()} }}")
        parts.append("...S")
    return " ".join(parts), fragments


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    selection, fragments = draw(selections())
    many = draw(st.booleans())
    alias = draw(st.sampled_from(["", "", "r: "]))
    if many:
        root = f"{alias}legalPersons(usccs: $codes) {{ {selection} }}"
        declared = ["$codes: [String!]!"]
    else:
        root = f"{alias}legalPerson(uscc: $code) {{ {selection} }}"
        declared = ["$code: String!"]
    if "$flag" in selection or any("$flag" in f for f in fragments):
        declared.append("$flag: Boolean!")
    operation = f"query Q({', '.join(declared)}) {{ {root} }}"
    named = draw(st.booleans())
    extra = ["query Other { __typename }"] if named and draw(st.booleans()) else []
    text = " ".join([operation, *fragments, *extra])
    return {"query": text, "many": many, "operation": "Q" if named else None, "flag": draw(st.booleans())}


@st.composite
def subjects(draw: st.DrawFn, codes: dict[str, list[str]], many: bool) -> list[str]:
    kinds = ["sample", "sample", "sample", "registered", "unknown", "unregistered"]
    count = draw(st.integers(1, 6)) if many else 1
    out = [draw(st.sampled_from(codes[draw(st.sampled_from(kinds))])) for _ in range(count)]
    if many and rarely(draw, 6):
        out.append(out[0])  # repeated
    if rarely(draw, 16):
        out[-1] = INVALID
    if many and rarely(draw, 20):
        out = out * 3  # over the batch limit (12)
    return out


@st.composite
def principals(draw: st.DrawFn) -> tuple[Principal, bool]:
    """A caller, and whether it asks the public endpoint (public contract)."""
    kind = draw(st.sampled_from([*CLIENT_KINDS, "public"]))
    if kind == "public":
        return Principal.public("credit:public"), draw(st.booleans())
    return Principal(
        client_id=draw(st.sampled_from(["demo-bank", "demo-department", "another-client"])),
        kind=kind,
        scopes=frozenset(draw(st.sets(st.sampled_from(SCOPES), min_size=1, max_size=3))),
        purpose=draw(st.sampled_from(PURPOSES)),
        allowed_purposes=frozenset(draw(st.sets(st.sampled_from(PURPOSES[1:]), max_size=2))),
    ), False


@st.composite
def policies(draw: st.DrawFn, base: Policy) -> Policy:
    if draw(st.booleans()):
        return base
    classes = dict(base.classes)
    keys = [(f.name, s.name) for f in LEGAL_FAMILIES for s in f.fields]
    for key in draw(st.lists(st.sampled_from(keys), max_size=6)):
        classes[key] = draw(st.sampled_from(list(DisclosureClass)))
    masks = dict(base.masks)
    if draw(st.booleans()):
        masks[("registration", "name")] = {DisclosureClass.PUBLIC: parse_mask("name")}
    if draw(st.booleans()):
        masks[("penalties", "fine_amount")] = {DisclosureClass.SHARED: parse_mask("round:1"), DisclosureClass.PUBLIC: parse_mask("redact")}
    if draw(st.booleans()):
        masks[("registration", "legal_representative")] = {DisclosureClass.SHARED: parse_mask("name")}
    rows = base.rows
    if draw(st.booleans()):
        rows = tuple(dataclasses.replace(rule, applies_to=EVERYONE) for rule in base.rows)
    return dataclasses.replace(base, version=f"{base.version}-variant", classes=classes, masks=masks, rows=rows)


# ---- the two executions -----------------------------------------------------------------------
class Departments:
    """Every department's answers, recorded once per example and then replayed to both executions
    with a fixed number of event-loop turns per department (no I/O, no clock): graphql-core's own
    order of errors depends on which department answers first, so both executions must see the
    departments answer in the same order. Faults are applied on the way out; calls are logged."""

    def __init__(self, runtime: HubRuntime, faults: dict[str, str | None], turns: dict[str, int]) -> None:
        self.runtime = runtime
        self.faults = faults
        self.turns = turns
        self.answers: dict[tuple[Any, ...], Any] = {}
        self.recording = True
        self.calls: list[tuple[Any, ...]] = []

    def __enter__(self) -> "Departments":
        for department in self.runtime.federation.departments:
            link = department.link
            link.fetch = self._fetch(department.name, department.connector.department, link.fetch)  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: Any) -> None:
        for department in self.runtime.federation.departments:
            del department.link.fetch  # the class's method again

    def _fetch(self, name: str, department: str, original: Any) -> Any:
        async def fetch(family: str, keys: Any, fields: Any, *, deadline: float, retry: bool = True) -> Any:
            call = (name, family, tuple(keys), tuple(fields))
            self.calls.append(call)
            if self.recording or call not in self.answers:
                try:
                    self.answers[call] = await original(family, keys, fields, deadline=deadline, retry=retry)
                except Exception as exc:
                    self.answers[call] = exc
            else:
                for _ in range(self.turns.get(name, 0)):
                    await asyncio.sleep(0)
            mode = self.faults.get(name)
            if mode in ("down", "down-late"):
                raise UpstreamUnavailable(department, "injected", "unavailable")
            if mode == "broken":
                return ["not", "a", "dict"]
            answer = self.answers[call]
            if isinstance(answer, Exception):
                raise answer
            if mode == "one-key" and keys:
                answer = {**answer, keys[0]: UpstreamInvalid(department, "injected", "invalid_data")}
            return answer

        return fetch


def observe(hub: InProcessHub, planned: bool, example: dict[str, Any], departments: Departments) -> dict[str, Any]:
    runtime = hub.runtime
    schema = runtime.public_schema if example["public"] else runtime.schema
    planner = planner_of(schema)
    assert planner is not None
    planner.enable(schema, planned)
    runtime.cache.clear()
    departments.calls = []
    before = planner.planned
    try:
        ctx = runtime.request_context(example["principal"], public_endpoint=example["public"], policy=example["policy"])
        variables: dict[str, Any] = {"flag": example["flag"]} if "$flag" in example["query"] else {}
        variables["codes" if example["many"] else "code"] = example["codes"] if example["many"] else example["codes"][0]
        result = hub.run(schema.execute(example["query"], variable_values=variables, context_value=ctx,
                                        operation_name=example["operation"]))
    finally:
        planner.enable(schema, True)
    findings = ctx.findings
    return {
        "data": result.data,
        "errors": [format_error(e) for e in result.errors or []],
        "originals": [(type(e.original_error).__name__, str(e.original_error)) for e in result.errors or []],
        "denials": ctx.denial_errors(),
        "subjects": set(findings.subjects),
        "released": set(findings.released),
        "denied": set(findings.denied),
        "masked": set(findings.masked),
        "rules_applied": set(findings.rules_applied),
        "denial_order": list(findings.denials),
        "alerts": list(findings.alerts),
        "calls": list(departments.calls),
        "subjects_asked": ctx.caches.subjects_asked,
        "planned": planner.planned - before,
    }


def compare(hub: InProcessHub, example: dict[str, Any]) -> dict[str, Any]:
    """Record the departments' answers, then execute through graphql-core and planned; equal."""
    with Departments(hub.runtime, example["faults"], example["turns"]) as departments:
        observe(hub, False, example, departments)
        departments.recording = False
        reference = observe(hub, False, example, departments)
        planned = observe(hub, True, example, departments)
    assert reference.pop("planned") == 0
    taken = planned.pop("planned") == 1
    assert planned == reference, example
    planned["taken"] = taken
    return planned


TAKEN: list[bool] = []  # whether each property example took the planned path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_the_planned_executor_answers_what_graphql_core_answers(hub: InProcessHub, data: st.DataObject) -> None:
    document = data.draw(documents())
    principal, public = data.draw(principals())
    example = {
        **document,
        "principal": principal,
        "public": public,
        "policy": hub.runtime.policy if public else data.draw(policies(hub.runtime.policy)),
        "codes": data.draw(subjects(hub.codes, document["many"])),
        "faults": {name: data.draw(st.sampled_from(FAULTS)) for name in DEPARTMENTS},
        "turns": {name: data.draw(st.integers(0, 4)) for name in DEPARTMENTS},
    }
    TAKEN.append(compare(hub, example)["taken"])


def test_most_examples_took_the_planned_path() -> None:
    """The property above compared something: most of its documents were of a hot shape."""
    if not TAKEN:
        pytest.skip("the property test did not run")
    assert sum(TAKEN) >= len(TAKEN) / 2, (sum(TAKEN), len(TAKEN))


# ---- cases named one by one -------------------------------------------------------------------
def _example(hub: InProcessHub, query: str, codes: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "query": query, "many": "$codes" in query, "operation": None, "flag": True,
        "principal": Principal("demo-department", "department", frozenset({"credit:public", "credit:shared"})),
        "public": False, "policy": hub.runtime.policy, "codes": codes, "faults": {},
        "turns": {"market": 1, "environment": 2, "tax": 5, "courts": 0, "hr": 3}, **extra,
    }


def _both(hub: InProcessHub, example: dict[str, Any]) -> dict[str, Any]:
    seen = compare(hub, example)
    assert seen.pop("taken")
    return seen


BATCH = (
    "query($codes: [String!]!) { legalPersons(usccs: $codes) { uscc name registration { name status } "
    "penalties { decisionNumber fineAmount underObjection } taxCredit { level year } "
    "judgmentDebtorRecords { caseNumber court } } }"
)


def test_the_batch_and_its_errors_when_two_departments_fail_one_after_the_other(hub: InProcessHub) -> None:
    codes = hub.codes["sample"][:6]
    seen = _both(hub, _example(hub, BATCH, codes, faults={"courts": "down", "tax": "down"}))
    paths = [e["path"][-1] for e in seen["errors"]]
    # the courts answer first (every subject's judgment-debtor records fail), the tax bureau last:
    # then penalties (the tax bureau is the last of their three sources) and tax credits fail,
    # loader by loader in the order they were first asked: as graphql-core's tasks wake
    assert paths == ["judgmentDebtorRecords"] * 6 + ["penalties"] * 6 + ["taxCredit"] * 6, paths


def test_a_subject_without_a_registry_loads_its_name_and_registration_from_one_loader(hub: InProcessHub) -> None:
    query = "query($codes: [String!]!) { legalPersons(usccs: $codes) { name registration { name } } }"
    codes = hub.codes["unregistered"] + hub.codes["sample"][:1]
    _both(hub, _example(hub, query, codes, faults={"market": "down"}))


def test_refused_families_denied_fields_and_a_masked_name(hub: InProcessHub) -> None:
    public = Principal.public("credit:public")
    query = (
        "query($code: String!) { legalPerson(uscc: $code) { name taxCredit { level } "
        "registration { contactPhone status } penalties { caseHandler severity } } }"
    )
    seen = _both(hub, _example(hub, query, hub.codes["sample"][:1], principal=public))
    assert {e["extensions"]["code"] for e in seen["errors"] + seen["denials"]} == {"FORBIDDEN"}


def test_the_objection_flag_and_the_registry_down(hub: InProcessHub) -> None:
    query = (
        "query($code: String!) { legalPerson(uscc: $code) { uscc name registration { status } "
        "penalties { decisionNumber underObjection } } }"
    )
    disputed = next(code for code in hub.codes["sample"] if code == hub.disputed)
    seen = _both(hub, _example(hub, query, [disputed]))
    flags = [p["underObjection"] for p in seen["data"]["legalPerson"]["penalties"]]
    assert True in flags and False in flags
    seen = _both(hub, _example(hub, query, [disputed], faults={"market": "down"}))
    assert {e["path"][-1] for e in seen["errors"]} == {"name", "registration", "penalties"}


def test_invalid_codes_and_the_batch_limit_refuse_the_root_field(hub: InProcessHub) -> None:
    seen = _both(hub, _example(hub, BATCH, [hub.codes["sample"][0], INVALID]))
    assert seen["data"] == {"legalPersons": None}
    seen = _both(hub, _example(hub, BATCH, hub.codes["registered"] + hub.codes["sample"][:1]))
    assert seen["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_other_shapes_are_left_to_graphql_core(hub: InProcessHub) -> None:
    runtime = hub.runtime
    planner = planner_of(runtime.schema)
    assert planner is not None
    principal = Principal("demo-department", "department", frozenset({"credit:public", "credit:shared"}))
    code = hub.codes["sample"][0]
    for query in (
        "{ __schema { queryType { name } } }",
        "{ catalogue { family } }",
        f'{{ a: legalPerson(uscc: "{code}") {{ uscc }} b: legalPerson(uscc: "{code}") {{ uscc }} }}',
        f'{{ __typename legalPerson(uscc: "{code}") {{ uscc }} }}',
        '{ naturalPerson(idNumber: "110102199101010078") { penalties { severity } } }',
    ):
        before = planner.planned
        ctx = runtime.request_context(principal, public_endpoint=False)
        result = hub.run(runtime.schema.execute(query, context_value=ctx))
        assert planner.planned == before, query
        assert result.data is not None, (query, result.errors)
    # a bank asking for AUTHORIZED data: the anti-harvesting cap is asked per subject
    bank = Principal("demo-bank", "bank", frozenset({"credit:public", "credit:authorized"}), purpose="loan-review",
                     allowed_purposes=frozenset({"loan-review"}))
    before = planner.planned
    ctx = runtime.request_context(bank, public_endpoint=False)
    query = f'{{ legalPerson(uscc: "{code}") {{ taxCredit {{ level taxPaid }} }} }}'
    hub.run(runtime.schema.execute(query, context_value=ctx))
    assert planner.planned == before


def test_the_switch_sends_every_operation_to_graphql_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """XINLIAN_PLANNED_EXECUTION=off: the escape hatch; a bad value is refused with its name."""
    monkeypatch.setenv("XINLIAN_PLANNED_EXECUTION", "off")
    settings = Settings.from_env(tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    assert settings.planned_execution is False

    async def planner_state() -> tuple[bool, bool]:
        runtime = await HubRuntime.open(settings)
        try:
            planner = planner_of(runtime.schema)
            assert planner is not None
            return planner.active, planner.enabled(runtime.schema)
        finally:
            await runtime.close()

    assert asyncio.run(planner_state()) == (False, False)
    monkeypatch.setenv("XINLIAN_PLANNED_EXECUTION", "sometimes")
    with pytest.raises(ValueError, match="XINLIAN_PLANNED_EXECUTION"):
        Settings.from_env(tmp_path)
