"""Row rules and record annotations declared in the policy, as registered kinds.

The publicity window, the review gate, the validity window (licences and honours are shown while
valid) and the objection flag are entries of the versioned policy document (`[[rows]]`,
`[[annotations]]`), parsed by the kinds registered in `policies.rules`; a document without these
sections (every version stored before) has the standard ones. Through a real hub: an expired
honour is hidden from the public and shown to a department, a new policy version changes the
publicity window the public gets, a new kind is one registered class, and a dry run names the
rules in force.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import tomllib
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Self

import httpx
import pytest
from sqlalchemy import update

from hub_fixture import RunningHub, running_hub, wait_until, with_policy_history
from xinlian.hub.admin.policy_text import policy_toml
from xinlian.hub.demo.generator import REFERENCE_DATE
from xinlian.hub.governance.policy_versions import VERSIONS, PolicyHistory, canonical_document_text
from xinlian.hub.guard import RateRules
from xinlian.hub.store import Store
from xinlian.policies import DisclosureClass, PolicyError, load_policy, rules
from xinlian.policies.annotations import ObjectionFlag
from xinlian.policies.changes import SetFieldClass, describe_diff
from xinlian.policies.loader import default_policy_path, parse_policy, parse_policy_text, policy_document
from xinlian.policies.review import PublicationReview
from xinlian.policies.rows import PublicityWindow, PublicityWindowRule, ReviewGate, ValidityWindow
from xinlian.policies.rules import (
    Parameters,
    RowRule,
    annotation_kinds,
    parse_annotations,
    parse_row_rules,
    register_row_rule,
    row_rule_kinds,
    standard_annotations,
    standard_row_rules,
)
from xinlian.schema.catalogue import FAMILIES, RecordFamily
from xinlian.schema.graphql import OBJECTION_FLAG

PUBLIC, AUTHORIZED, SHARED = DisclosureClass.PUBLIC, DisclosureClass.AUTHORIZED, DisclosureClass.SHARED
D = dt.date
TODAY = D(2026, 12, 2)
MINIMAL = '[scopes]\n"credit:public" = ["PUBLIC"]\n'


def rows_of(toml_rows: str) -> tuple[RowRule, ...]:
    return parse_policy(tomllib.loads(MINIMAL + toml_rows), "x").rows


def one(toml_rule: str) -> Any:
    (rule,) = rows_of("[[rows]]\n" + toml_rule)
    return rule


# ---- the registry ------------------------------------------------------------------------------


def test_the_shipped_kinds_are_registered_by_name() -> None:
    assert row_rule_kinds() == {
        "publicity-window": PublicityWindowRule, "review-gate": ReviewGate, "validity-window": ValidityWindow,
        "publication-review": PublicationReview,
    }
    assert annotation_kinds() == {"objection-flag": ObjectionFlag}


def test_a_kind_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_row_rule(type("Again", (ValidityWindow,), {"kind": "publicity-window"}))


@dataclass(frozen=True)
class DecidedSince(RowRule):
    """A kind made in a test: penalties decided before `since` are not shown."""

    kind = "decided-since"

    since: dt.date

    @classmethod
    def parse(cls, params: Parameters, families: tuple[str, ...], applies_to: frozenset[DisclosureClass]) -> Self:
        try:
            return cls(families, applies_to, D.fromisoformat(params.string("since")))
        except ValueError:
            raise params.error(f"since must be a date such as 2026-01-01, got {params.raw('since')!r}") from None

    def parameters(self) -> dict[str, Any]:
        return {"since": self.since.isoformat()}  # document values are JSON and TOML values

    def reads(self, family: RecordFamily) -> tuple[str, ...]:
        return ("decision_date",)

    def unfit(self, family: RecordFamily) -> str | None:
        return None if "decision_date" in family.field_names else "it has no decision_date"

    def keep(self, record: Mapping[str, Any], today: dt.date) -> bool:
        decided = record.get("decision_date")
        return isinstance(decided, dt.date) and decided >= self.since


@pytest.fixture
def decided_since(monkeypatch: pytest.MonkeyPatch) -> type[DecidedSince]:
    """The test kind, registered for this test only."""
    monkeypatch.setattr(rules, "_ROW_RULES", dict(rules._ROW_RULES))
    register_row_rule(DecidedSince)
    return DecidedSince


def test_a_new_kind_is_one_registered_class(decided_since: type[DecidedSince]) -> None:
    rule = one('rule = "decided-since"\nfamilies = ["penalties"]\nsince = "2026-01-01"\n')
    assert isinstance(rule, DecidedSince) and rule.applies_to == {PUBLIC, AUTHORIZED}
    assert rule.keep({"decision_date": D(2026, 3, 1)}, TODAY) and not rule.keep({"decision_date": D(2025, 3, 1)}, TODAY)
    assert parse_policy(policy_document(parse_policy(tomllib.loads(MINIMAL + "[[rows]]\n" + 'rule = "decided-since"\nfamilies = ["penalties"]\nsince = "2026-01-01"\n'), "x")), "x").rows == (rule,)
    with pytest.raises(PolicyError, match=r"rows\[0\] \(decided-since\): since must be a date"):
        one('rule = "decided-since"\nfamilies = ["penalties"]\nsince = "last year"\n')
    with pytest.raises(PolicyError, match="cannot apply to honors: it has no decision_date"):
        one('rule = "decided-since"\nfamilies = ["honors"]\nsince = "2026-01-01"\n')


# ---- the document: defaults, round trips, diffs -----------------------------------------------


def test_a_document_without_rows_or_annotations_has_the_standard_rules() -> None:
    policy = parse_policy(tomllib.loads(MINIMAL), "old")
    assert policy.rows == standard_row_rules() and policy.annotations == standard_annotations()
    assert [r.kind for r in policy.rows] == ["publicity-window", "review-gate", "publication-review", "validity-window"]
    assert [a.kind for a in policy.annotations] == ["objection-flag"]


def test_an_empty_array_means_no_rules_at_all() -> None:
    policy = parse_policy(tomllib.loads("rows = []\nannotations = []\n" + MINIMAL), "none")
    assert policy.rows == () and policy.annotations == ()
    assert policy.row_rules("penalties", PUBLIC) == () and policy.record_annotations("penalties", SHARED) == ()


def test_the_shipped_policy_spells_out_the_standard_rules() -> None:
    policy = load_policy()
    assert policy.rows == standard_row_rules() and policy.annotations == standard_annotations()
    written = tomllib.loads(default_policy_path().read_text(encoding="utf-8"))
    assert describe_diff(written, policy_document(policy)) == []


def test_the_standard_rules_apply_outside_government_and_the_flag_to_everyone() -> None:
    policy = load_policy()
    for audience in (PUBLIC, AUTHORIZED):
        reviewed = ["publication-review"] if audience is PUBLIC else []  # the review before publication: the public only
        assert [r.kind for r in policy.row_rules("penalties", audience)] == ["publicity-window", "review-gate", *reviewed]
        assert [r.kind for r in policy.row_rules("honors", audience)] == ["review-gate", "validity-window"]
        assert [r.kind for r in policy.row_rules("licenses", audience)] == ["review-gate", *reviewed, "validity-window"]
        assert policy.row_rules("tax_credit", audience) == ()
    assert all(policy.row_rules(f, SHARED) == () for f in FAMILIES)
    keyed = {name for name, f in FAMILIES.items() if f.record_key is not None}
    for audience in (PUBLIC, AUTHORIZED, SHARED):
        assert {f for f in FAMILIES if policy.record_annotations(f, audience)} == keyed


def test_rules_round_trip_through_the_stored_document_and_the_admin_toml() -> None:
    text = MINIMAL + """
[[rows]]
rule = "publicity-window"
families = ["penalties"]
applies_to = ["public"]
show_minor = true
max_months = { "轻微" = 1, "一般" = 6, "严重" = 24 }

[[rows]]
rule = "review-gate"
families = ["licenses"]
shown = ["已审核"]

[[annotations]]
rule = "objection-flag"
families = ["penalties"]
applies_to = ["SHARED"]
"""
    policy = parse_policy_text(text, "x")
    document = policy_document(policy)
    assert document["rows"] == [
        {"rule": "publicity-window", "families": ["penalties"], "applies_to": ["PUBLIC"],
         "show_minor": True, "max_months": {"轻微": 1, "一般": 6, "严重": 24},
         "min_months": {"轻微": 0, "一般": 3, "严重": 12}},
        {"rule": "review-gate", "families": ["licenses"], "applies_to": ["PUBLIC", "AUTHORIZED"],
         "field": "review_status", "shown": ["已审核"]},
    ]
    assert document["annotations"] == [{"rule": "objection-flag", "families": ["penalties"], "applies_to": ["SHARED"]}]
    assert parse_policy(document, "x") == policy
    assert parse_policy(json.loads(canonical_document_text(document)), "x") == policy
    assert parse_policy_text(policy_toml(document, "v2"), "x") == policy
    empty = policy_document(parse_policy(tomllib.loads("rows = []\n" + MINIMAL), "x"))
    assert parse_policy_text(policy_toml(empty, "v3"), "x").rows == ()


def test_a_change_of_rules_reads_as_diff_lines() -> None:
    before = policy_document(load_policy())
    after = json.loads(json.dumps(before))
    after["rows"][0]["max_months"]["一般"] = 6
    after["rows"][1]["shown"] = ["已审核"]
    after["rows"] = after["rows"][:2]
    after["annotations"][0]["applies_to"] = ["SHARED"]
    assert describe_diff(before, after) == [
        "rows.publication-review.applies_to: PUBLIC -> (none)",
        "rows.publication-review.families: licenses, penalties -> (none)",
        "rows.publicity-window.max_months.一般: 12 -> 6",
        "rows.review-gate.shown: approved, reviewed, 审核通过, 已审核, 通过 -> 已审核",
        "rows.validity-window.applies_to: PUBLIC, AUTHORIZED -> (none)",
        "rows.validity-window.families: honors, licenses -> (none)",
        "annotations.objection-flag.applies_to: PUBLIC, AUTHORIZED, SHARED -> SHARED",
    ]
    older = {k: v for k, v in before.items() if k not in ("rows", "annotations")}
    assert describe_diff(older, before) == []  # a document without the sections reads as the standard rules
    twice = json.loads(json.dumps(before))
    twice["rows"].append({"rule": "validity-window", "families": ["licenses"]})
    assert describe_diff(before, twice) == [
        "rows.validity-window#2.applies_to: (none) -> PUBLIC, AUTHORIZED",
        "rows.validity-window#2.families: (none) -> licenses",
    ]


@pytest.mark.parametrize(
    "toml_rows, message",
    [
        ('rows = "publicity-window"\n', r"rows: expected an array of tables"),
        ("[rows]\nrule = 'review-gate'\n", r"rows: expected an array of tables"),
        ('rows = ["review-gate"]\n', r"rows\[0\]: expected a table"),
        ('[[rows]]\nrule = "credit-repair"\nfamilies = ["penalties"]\n', r"rows\[0\]: unknown rule 'credit-repair' \(one of: publication-review, publicity-window, review-gate, validity-window\)"),
        ('[[rows]]\nfamilies = ["penalties"]\n', r"rows\[0\]: unknown rule None"),
        ('[[rows]]\nrule = "validity-window"\n', r"rows\[0\] \(validity-window\): families must be a non-empty array"),
        ('[[rows]]\nrule = "validity-window"\nfamilies = []\n', "families must be a non-empty array"),
        ('[[rows]]\nrule = "validity-window"\nfamilies = ["diplomas"]\n', "unknown record family 'diplomas'"),
        ('[[rows]]\nrule = "validity-window"\nfamilies = ["honors", "honors"]\n', "families names honors more than once"),
        ('[[rows]]\nrule = "validity-window"\nfamilies = ["penalties"]\n', "cannot apply to penalties: it has neither valid_from nor valid_to"),
        ('[[rows]]\nrule = "publicity-window"\nfamilies = ["honors"]\n', "cannot apply to honors: it has no field severity, decision_date, publicity_end_date"),
        ('[[rows]]\nrule = "review-gate"\nfamilies = ["tax_credit"]\n', "cannot apply to tax_credit: it has no field review_status"),
        ('[[rows]]\nrule = "review-gate"\nfamilies = ["licenses"]\nfield = "status"\n', "cannot apply to licenses: it has no field status"),
        ('[[rows]]\nrule = "review-gate"\nfamilies = ["licenses"]\nshown = []\n', "shown must be a non-empty array of strings"),
        ('[[rows]]\nrule = "review-gate"\nfamilies = ["licenses"]\nfield = ""\n', "field must be a non-empty string"),
        ('[[rows]]\nrule = "validity-window"\nfamilies = ["honors"]\napplies_to = ["CONFIDENTIAL"]\n', "'CONFIDENTIAL' is not an audience"),
        ('[[rows]]\nrule = "validity-window"\nfamilies = ["honors"]\napplies_to = ["everyone"]\n', "'everyone' is not an audience"),
        ('[[rows]]\nrule = "validity-window"\nfamilies = ["honors"]\napplies_to = []\n', "applies_to must be a non-empty array"),
        ('[[rows]]\nrule = "validity-window"\nfamilies = ["honors"]\ngrace_days = 30\n', "unknown parameter 'grace_days' for rule 'validity-window' \\(its parameters: none\\)"),
        ('[[rows]]\nrule = "publicity-window"\nfamilies = ["penalties"]\nshow_minor = "no"\n', "show_minor must be true or false"),
        ('[[rows]]\nrule = "publicity-window"\nfamilies = ["penalties"]\nmax_months = 12\n', "max_months must be a table of severity = months"),
        ('[[rows]]\nrule = "publicity-window"\nfamilies = ["penalties"]\nmax_months = { "轻微" = 3, "一般" = 24, "严重" = 36 }\n', "max_months.一般: 24 months is outside 3 to 12"),
        ('[[rows]]\nrule = "publicity-window"\nfamilies = ["penalties"]\nmax_months = { "轻微" = 3, "一般" = 12, "严重" = 6 }\n', "max_months.严重: 6 months is outside 12 to 36"),
        ('[[rows]]\nrule = "publicity-window"\nfamilies = ["penalties"]\nmax_months = { "轻微" = 3, "一般" = "12", "严重" = 36 }\n', "max_months.一般 must be a whole number"),
        ('[[rows]]\nrule = "publicity-window"\nfamilies = ["penalties"]\nmax_months = { "轻微" = true, "一般" = 12, "严重" = 36 }\n', "max_months.轻微 must be a whole number"),
        ('[[rows]]\nrule = "publicity-window"\nfamilies = ["penalties"]\nmax_months = { "轻微" = 3, "一般" = 12 }\n', "max_months: give the months for 严重"),
        ('[[rows]]\nrule = "publicity-window"\nfamilies = ["penalties"]\nmax_months = { "重大" = 3 }\n', "max_months: unknown severity '重大'"),
        ('[[rows]]\nrule = "publicity-window"\nfamilies = ["penalties"]\nmax_month = { "一般" = 3 }\n', "unknown parameter 'max_month' for rule 'publicity-window' \\(its parameters: max_months, min_months, show_minor\\)"),
        ('[[rows]]\nrule = "validity-window"\nfamilies = ["honors"]\n[[rows]]\nrule = "nope"\n', r"rows\[1\]: unknown rule 'nope'"),
        ('[[annotations]]\nrule = "objection-flag"\nfamilies = ["social_insurance_contributions"]\n', "annotations\\[0\\] \\(objection-flag\\): cannot apply to social_insurance_contributions: its records have no key"),
        ('[[annotations]]\nrule = "review-gate"\nfamilies = ["licenses"]\n', "annotations\\[0\\]: unknown rule 'review-gate' \\(one of: objection-flag\\)"),
    ],
)
def test_bad_rules_are_refused_with_the_place_of_fault(toml_rows: str, message: str) -> None:
    document = tomllib.loads(toml_rows + MINIMAL) if not toml_rows.startswith("[") else tomllib.loads(MINIMAL + toml_rows)
    with pytest.raises(PolicyError, match=message):
        parse_policy(document, "x")


def test_parsers_read_a_section_alone() -> None:
    assert parse_row_rules([]) == () and parse_annotations([]) == ()
    (gate,) = parse_row_rules([{"rule": "review-gate", "families": ["penalties"]}])
    assert gate == ReviewGate(("penalties",), frozenset({PUBLIC, AUTHORIZED}), "review_status",
                              frozenset({"approved", "reviewed", "已审核", "审核通过", "通过"}))


# ---- what each kind keeps ----------------------------------------------------------------------


def test_the_publicity_window_rule_is_the_window_of_the_measures() -> None:
    rule = one('rule = "publicity-window"\nfamilies = ["penalties"]\n')
    assert rule.window == PublicityWindow.standard()
    ordinary = {"severity": "一般", "decision_date": D(2026, 4, 15)}
    assert rule.keep(ordinary, D(2027, 4, 15)) and not rule.keep(ordinary, D(2027, 4, 16))
    assert not rule.keep({"severity": "轻微", "decision_date": D(2026, 4, 15)}, D(2026, 4, 15))
    shorter = one('rule = "publicity-window"\nfamilies = ["penalties"]\nshow_minor = true\nmax_months = { "轻微" = 1, "一般" = 3, "严重" = 12 }\n')
    assert shorter.keep(ordinary, D(2026, 7, 15)) and not shorter.keep(ordinary, D(2026, 7, 16))
    assert shorter.keep({"severity": "轻微", "decision_date": D(2026, 4, 15)}, D(2026, 5, 15))
    assert not rule.keep({"decision_date": D(2026, 4, 15)}, D(2026, 4, 16))  # no severity: fail closed
    assert rule.reads(FAMILIES["penalties"]) == ("severity", "decision_date", "publicity_end_date", "decision_number")


def test_the_review_gate_shows_reviewed_records_and_records_of_sources_without_the_field() -> None:
    gate = standard_row_rules()[1]
    assert isinstance(gate, ReviewGate)
    assert gate.keep({"decision_number": "x"}, TODAY)  # the source does not map review_status
    assert gate.keep({"review_status": "已审核"}, TODAY) and gate.keep({"review_status": "approved"}, TODAY)
    assert not gate.keep({"review_status": "待审核"}, TODAY)
    assert not gate.keep({"review_status": None}, TODAY)  # null: awaits review
    assert not gate.keep({"review_status": ["已审核"]}, TODAY)  # not a status at all: fail closed, no crash
    assert gate.reads(FAMILIES["licenses"]) == ("review_status",)


def test_the_validity_window_shows_records_from_valid_from_to_valid_to_inclusive() -> None:
    window = standard_row_rules()[3]
    assert isinstance(window, ValidityWindow)
    assert window.reads(FAMILIES["licenses"]) == ("valid_from", "valid_to")
    assert window.reads(FAMILIES["honors"]) == ("valid_to",)  # honours have no start of validity
    assert window.keep({"valid_to": TODAY}, TODAY)
    assert not window.keep({"valid_to": TODAY - dt.timedelta(days=1)}, TODAY)  # expired yesterday
    assert window.keep({"valid_from": TODAY, "valid_to": None}, TODAY)  # no end: valid until revoked
    assert not window.keep({"valid_from": TODAY + dt.timedelta(days=1)}, TODAY)  # not valid yet
    assert window.keep({}, TODAY)  # the source maps neither bound
    assert window.keep({"valid_to": dt.datetime(2026, 12, 2, 23, 59)}, TODAY)  # datetimes count by their date
    assert not window.keep({"valid_to": "长期"}, TODAY)  # a bound that is not a date: fail closed


class Facts:
    def __init__(self, disputed: dict[str, set[str]] | None) -> None:
        self.disputed = disputed

    def open_objections(self, family: str) -> set[str] | None:
        return None if self.disputed is None else self.disputed.get(family, set())


def test_the_objection_flag_is_true_false_or_unknown() -> None:
    flag = standard_annotations()[0]
    penalties = FAMILIES["penalties"]
    assert flag.output == OBJECTION_FLAG
    assert flag.reads(penalties) == ("decision_number",)
    facts = Facts({"penalties": {"新市监罚〔2026〕7号"}})
    assert flag.annotate(penalties, {"decision_number": "新市监罚〔2026〕7号"}, facts) is True
    assert flag.annotate(penalties, {"decision_number": "新市监罚〔2026〕8号"}, facts) is False
    assert flag.annotate(penalties, {}, facts) is None  # the key could not be read
    assert flag.annotate(penalties, {"decision_number": "x"}, Facts(None)) is None  # objections not known
    tax = FAMILIES["tax_credit"]
    assert flag.annotate(tax, {"year": 2025}, Facts({"tax_credit": {"2025"}})) is True


# ---- older versions in a hub store -------------------------------------------------------------


async def test_a_version_stored_before_rules_were_declared_loads_with_the_standard_rules(store_url: str) -> None:
    store = await Store.open(store_url)
    try:
        history = PolicyHistory(store)
        await history.seed(load_policy(), "system", "initial")
        old = {k: v for k, v in policy_document(load_policy()).items() if k not in ("rows", "annotations")}
        async with store.engine.begin() as conn:  # v1 as an older hub stored it
            await conn.execute(update(VERSIONS).where(VERSIONS.c.number == 1).values(document=canonical_document_text(old)))
        v1 = await history.active()
        assert "rows" not in v1.document
        assert v1.policy.rows == standard_row_rules() and v1.policy.annotations == standard_annotations()
        v2 = await history.change([SetFieldClass("penalties", "case_handler", PUBLIC)], "admin", "open data")
        assert v2.changes == ["fields.penalties.case_handler: SHARED -> PUBLIC"]  # the rules did not change
        assert v2.document["rows"] == policy_document(load_policy())["rows"]  # now spelled out
        assert await history.diff("v1", "v2") == ["fields.penalties.case_handler: SHARED -> PUBLIC"]
    finally:
        await store.close()


# ---- through a real hub ------------------------------------------------------------------------

EXPIRED, LAST_DAY, OPEN_ENDED = "测试荣誉-昨日到期", "测试荣誉-今日到期", "测试荣誉-长期有效"
NOT_YET, CURRENT = "测试许可-尚未生效", "测试许可-有效期内"
HONOURS = "query($u: String!) { legalPerson(uscc: $u) { honors { honorName validTo underObjection } licenses { licenseName validFrom } } }"
PENALTIES = "query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber severity decisionDate publicityEndDate } } }"
DRY_RUN = """
query($client: String!, $subject: String!, $version: String) {
  dryRun(clientId: $client, subject: $subject, policyVersion: $version) {
    policyVersion rulesApplied
    rowRules { rule section families appliesTo appliesToClient parameters }
    data
  }
}
"""


def _ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    rates = RateRules(public_ip="10000/minute")
    with running_hub(tmp_path_factory.mktemp("row-rules"), legal_persons=40, natural_persons=10, rate_limits=rates) as running:
        today = running.runtime.today()
        uscc = running.samples["clean"]
        market = "市场监督管理局"
        with sqlite3.connect(running.data_dir / "departments" / "market.db") as db:
            db.executemany(
                "INSERT INTO syxjl (tyshxydm, rymc, rdjg, rdrq, yxqzhi, sjdw) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (uscc, EXPIRED, market, _ymd(today - dt.timedelta(days=800)), _ymd(today - dt.timedelta(days=1)), market),
                    (uscc, LAST_DAY, market, _ymd(today - dt.timedelta(days=700)), _ymd(today), market),
                    (uscc, OPEN_ENDED, market, _ymd(today - dt.timedelta(days=600)), None, market),
                ],
            )
            db.executemany(
                "INSERT INTO xzxk (tyshxydm, xkjdswh, xkzsmc, xklb, xkjdrq, yxqz, yxqzhi, xkjg, sjdw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (uscc, "测试许〔2026〕1号", NOT_YET, "5", _ymd(today), _ymd(today + dt.timedelta(days=10)), _ymd(today + dt.timedelta(days=400)), market, market),
                    (uscc, "测试许〔2026〕2号", CURRENT, "5", _ymd(today), _ymd(today - dt.timedelta(days=1)), _ymd(today + dt.timedelta(days=1)), market, market),
                ],
            )
        yield running


def _person(hub: RunningHub, query: str, kind: str | None, uscc: str, purpose: str | None = None) -> dict[str, Any]:
    body = hub.query(query, kind, {"u": uscc}, purpose=purpose).json()
    assert "errors" not in body, body
    return body["data"]["legalPerson"]


def _names(person: dict[str, Any], family: str, name: str) -> set[str]:
    return {r[name] for r in person[family]}


def test_an_expired_honour_is_hidden_from_the_public_and_banks_but_shown_to_departments(hub: RunningHub) -> None:
    uscc = hub.samples["clean"]
    public = _person(hub, HONOURS, None, uscc)
    bank = _person(hub, HONOURS, "bank", uscc, purpose="loan-review")
    department = _person(hub, HONOURS, "department", uscc)
    for seen in (public, bank):
        assert {LAST_DAY, OPEN_ENDED} <= _names(seen, "honors", "honorName") and EXPIRED not in _names(seen, "honors", "honorName")
        assert CURRENT in _names(seen, "licenses", "licenseName") and NOT_YET not in _names(seen, "licenses", "licenseName")
    assert {EXPIRED, LAST_DAY, OPEN_ENDED} <= _names(department, "honors", "honorName")
    assert {NOT_YET, CURRENT} <= _names(department, "licenses", "licenseName")
    assert all(h["underObjection"] is False for h in public["honors"])  # the annotation still applies


def test_the_validity_window_fails_closed_when_the_caller_may_not_read_valid_to(hub: RunningHub) -> None:
    """A policy making honours' valid_to SHARED: the rule cannot be checked for the public, so no honour is shown."""
    url = hub.runtime.settings.database_url
    uscc = hub.samples["clean"]
    try:
        stored = _history(url, lambda h: h.change([SetFieldClass("honors", "valid_to", SHARED)], "admin", "test"))
        _wait_for_version(hub, stored.version)
        body = hub.query("query($u: String!) { legalPerson(uscc: $u) { honors { honorName } } }", None, {"u": uscc}).json()
        assert body["data"]["legalPerson"]["honors"] == []
        department = _person(hub, "query($u: String!) { legalPerson(uscc: $u) { honors { honorName } } }", "department", uscc)
        assert EXPIRED in _names(department, "honors", "honorName")
    finally:
        _back_to_v1(hub)


_history = with_policy_history


def _wait_for_version(hub: RunningHub, version: str, seconds: float = 3.0) -> None:
    wait_until(lambda: hub.http.get("/").json()["policy_version"] == version, seconds, f"the hub following {version}")


def _back_to_v1(hub: RunningHub) -> None:
    url = hub.runtime.settings.database_url
    if _history(url, lambda h: h.active_number()) != 1:
        _history(url, lambda h: h.activate("v1", "admin", "back to the default"))
    _wait_for_version(hub, "v1")


def _expected(window: PublicityWindow, records: list[dict[str, Any]], today: dt.date) -> set[str]:
    out = set()
    for r in records:
        record = {
            "severity": r["severity"],
            "decision_date": D.fromisoformat(r["decisionDate"]) if r["decisionDate"] else None,
            "publicity_end_date": D.fromisoformat(r["publicityEndDate"]) if r["publicityEndDate"] else None,
        }
        if window.shows(record, today):
            out.add(r["decisionNumber"])
    return out


def test_a_policy_version_with_other_months_changes_what_the_public_sees(hub: RunningHub) -> None:
    url = hub.runtime.settings.database_url
    uscc = hub.samples["multi_department_penalties"]
    today = hub.runtime.today()
    everything = _person(hub, PENALTIES, "department", uscc)["penalties"]
    before = _names(_person(hub, PENALTIES, None, uscc), "penalties", "decisionNumber")
    assert before == _expected(PublicityWindow.standard(), everything, today)
    text = default_policy_path().read_text(encoding="utf-8")
    shorter = text.replace('"一般" = 12', '"一般" = 3')
    assert shorter != text
    try:
        stored = _history(url, lambda h: h.import_text(shorter, "admin-li", "ordinary penalties: three months"))
        assert stored.changes == ["rows.publicity-window.max_months.一般: 12 -> 3"]
        _wait_for_version(hub, stored.version)
        after = _names(_person(hub, PENALTIES, None, uscc), "penalties", "decisionNumber")
        window = PublicityWindow({"轻微": 3, "一般": 3, "严重": 36})
        assert after == _expected(window, everything, today)
        assert after < before  # the sample's ordinary penalties are older than three months
        assert _names(_person(hub, PENALTIES, "department", uscc), "penalties", "decisionNumber") == {p["decisionNumber"] for p in everything}

        # a version without row rules at all: the public sees every record, expired honours too
        dry = _admin(hub, DRY_RUN, {"client": "demo-bank", "subject": uscc, "version": stored.version})["dryRun"]
        (rule,) = [r for r in dry["rowRules"] if r["rule"] == "publicity-window"]
        assert dry["policyVersion"] == stored.version and rule["parameters"]["max_months"]["一般"] == 3

        # a version without row rules at all: the public sees every record, expired honours too
        none = _history(url, lambda h: h.import_text(_without_rows(text), "admin-li", "no row rules"))
        assert none.changes[0].startswith("rows.") and none.document["rows"] == []
        _wait_for_version(hub, none.version)
        honours = _names(_person(hub, HONOURS, None, hub.samples["clean"]), "honors", "honorName")
        assert EXPIRED in honours
    finally:
        _back_to_v1(hub)


def _without_rows(text: str) -> str:
    """The shipped policy file with `rows = []` instead of its row rules (annotations kept)."""
    document = tomllib.loads(text)
    document["rows"] = []
    return policy_toml(policy_document(parse_policy(document, "x")))


def _admin(hub: RunningHub, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response: httpx.Response = hub.http.post(
        "/admin/graphql", json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {hub.token('admin')}"},
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


def test_a_dry_run_names_the_rules_in_force_and_those_applied(hub: RunningHub) -> None:
    uscc = hub.samples["clean"]
    bank = _admin(hub, DRY_RUN, {"client": "demo-bank", "subject": uscc})["dryRun"]
    by_rule = {r["rule"]: r for r in bank["rowRules"]}
    assert set(by_rule) == {"publicity-window", "review-gate", "publication-review", "validity-window", "objection-flag"}
    assert not by_rule["publication-review"]["appliesToClient"]  # the review concerns the public only
    window = by_rule["publicity-window"]
    assert window == {
        "rule": "publicity-window", "section": "rows", "families": ["major_tax_violations", "penalties"],
        "appliesTo": ["PUBLIC", "AUTHORIZED"],
        "appliesToClient": True, "parameters": {"show_minor": False, "max_months": {"轻微": 3, "一般": 12, "严重": 36},
                                            "min_months": {"轻微": 0, "一般": 3, "严重": 12}},
    }
    assert by_rule["objection-flag"]["section"] == "annotations" and by_rule["objection-flag"]["appliesToClient"]
    assert {"honors:validity-window", "licenses:validity-window", "licenses:review-gate", "penalties:publicity-window"} <= set(bank["rulesApplied"])
    honours = {h["honorName"] for h in bank["data"]["legalPerson"]["honors"]}
    assert EXPIRED not in honours and LAST_DAY in honours

    department = _admin(hub, DRY_RUN, {"client": hub.clients["department"]["client_id"], "subject": uscc})["dryRun"]
    assert {r["rule"]: r["appliesToClient"] for r in department["rowRules"]} == {
        "publicity-window": False, "review-gate": False, "publication-review": False, "validity-window": False,
        "objection-flag": True,
    }
    assert department["rulesApplied"] and all(r.endswith(":objection-flag") for r in department["rulesApplied"])
    assert EXPIRED in {h["honorName"] for h in department["data"]["legalPerson"]["honors"]}


def test_a_new_kind_applies_in_a_running_hub_without_touching_the_executor(
    hub: RunningHub, decided_since: type[DecidedSince]
) -> None:
    url = hub.runtime.settings.database_url
    uscc = hub.samples["multi_department_penalties"]
    everything = _person(hub, PENALTIES, "department", uscc)["penalties"]
    before = _names(_person(hub, PENALTIES, None, uscc), "penalties", "decisionNumber")
    since = REFERENCE_DATE - dt.timedelta(days=150)
    text = default_policy_path().read_text(encoding="utf-8")
    text += f'\n[[rows]]\nrule = "decided-since"\nfamilies = ["penalties"]\nsince = "{since.isoformat()}"\n'
    try:
        stored = _history(url, lambda h: h.import_text(text, "admin", "only recent decisions"))
        assert stored.changes == [
            "rows.decided-since.applies_to: (none) -> PUBLIC, AUTHORIZED",
            "rows.decided-since.families: (none) -> penalties",
            f"rows.decided-since.since: (none) -> {since.isoformat()}",
        ]
        _wait_for_version(hub, stored.version)
        after = _names(_person(hub, PENALTIES, None, uscc), "penalties", "decisionNumber")
        recent = {p["decisionNumber"] for p in everything if D.fromisoformat(p["decisionDate"]) >= since}
        assert after == before & recent and after < before
        dry = _admin(hub, DRY_RUN, {"client": "demo-bank", "subject": uscc})["dryRun"]
        assert "penalties:decided-since" in dry["rulesApplied"]
    finally:
        _back_to_v1(hub)
