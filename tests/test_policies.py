"""The disclosure policy: the shipped default, the TOML loader's errors, and `decide`.

`decide` must allow a field exactly when its class (after the caller kind's override) is one the
caller's scopes grant, and never when the class is CONFIDENTIAL.
"""

from __future__ import annotations

import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_oracle import expected_decision
from xinlian.policies import (
    DisclosureClass,
    Policy,
    PolicyError,
    decide,
    default_policy_path,
    load_policy,
)
from xinlian.policies.engine import Verdict, allowed_fields
from xinlian.policies.loader import parse_policy
from xinlian.policies.masking import parse_mask
from xinlian.schema.catalogue import FAMILIES

PUBLIC, SHARED, AUTHORIZED, CONFIDENTIAL = (
    DisclosureClass.PUBLIC,
    DisclosureClass.SHARED,
    DisclosureClass.AUTHORIZED,
    DisclosureClass.CONFIDENTIAL,
)
ALL_FIELDS = [(family.name, name) for family in FAMILIES.values() for name in family.field_names]
MINIMAL_SCOPES = '[scopes]\n"credit:public" = ["PUBLIC"]\n'


@dataclass(frozen=True)
class Caller:
    kind: str
    scopes: frozenset[str]
    purpose: str | None = "loan-review"  # a declared purpose the client is registered for
    allowed_purposes: frozenset[str] = frozenset({"loan-review"})


PUBLIC_CALLER = Caller("public", frozenset({"credit:public"}))
DEPARTMENT = Caller("department", frozenset({"credit:public", "credit:shared"}))
BANK = Caller("bank", frozenset({"credit:public", "credit:authorized"}))
ADMIN = Caller("admin", frozenset({"admin", "credit:public", "credit:shared"}))
CALLERS = {"public": PUBLIC_CALLER, "department": DEPARTMENT, "bank": BANK, "admin": ADMIN}

# What each caller may see under default.toml, written out by hand from the file.
GRANTED_BY_DEFAULT = {
    "public": {PUBLIC},
    "department": {PUBLIC, SHARED},
    "bank": {PUBLIC, AUTHORIZED},
    "admin": {PUBLIC, SHARED},
}


def class_in_default_file(kind: str, family: str, field: str) -> DisclosureClass:
    """Read default.toml directly (not through the loader): override, then field, then "*"."""
    document = tomllib.loads(default_policy_path().read_text(encoding="utf-8"))
    overrides = document.get("overrides", {}).get(kind, {}).get(family, {})
    override = overrides.get(field) or overrides.get("*")
    table = document["fields"].get(family, {})
    value = override or table.get(field) or table.get("*") or "CONFIDENTIAL"
    return DisclosureClass(value)


def write_policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy()


# --------------------------------------------------------------------------------------------
# The shipped default policy
# --------------------------------------------------------------------------------------------


def test_default_policy_file_is_shipped_next_to_the_loader() -> None:
    path = default_policy_path()
    assert path.name == "default.toml"
    assert path.is_file()


def test_default_policy_loads_with_its_declared_version(default: Policy) -> None:
    assert default.version == "default-1"
    assert default.public_scope == "credit:public"


def test_explicit_version_argument_wins_over_the_file(tmp_path: Path) -> None:
    assert load_policy(default_policy_path(), version="v42").version == "v42"


def test_version_defaults_to_the_file_stem_when_the_file_has_none(tmp_path: Path) -> None:
    path = tmp_path / "district-7.toml"
    path.write_text(MINIMAL_SCOPES, encoding="utf-8")
    assert load_policy(path).version == "district-7"


def test_default_policy_scopes_grant_the_documented_classes(default: Policy) -> None:
    assert dict(default.scopes) == {
        "credit:public": frozenset({PUBLIC}),
        "credit:shared": frozenset({PUBLIC, SHARED}),
        "credit:authorized": frozenset({PUBLIC, AUTHORIZED}),
        # operation scopes (credit checks, findings, ratings) grant no field
        "credit:check": frozenset(),
        "credit:findings": frozenset(),
        "credit:ratings": frozenset(),
    }


def test_no_default_scope_grants_confidential(default: Policy) -> None:
    assert all(CONFIDENTIAL not in granted for granted in default.scopes.values())


@pytest.mark.parametrize("family, field", ALL_FIELDS)
def test_every_catalogue_field_has_an_explicit_class_in_the_default_policy(
    default: Policy, family: str, field: str
) -> None:
    assert (family, field) in default.classes


def test_default_policy_names_no_field_outside_the_catalogue(default: Policy) -> None:
    assert set(default.classes) == set(ALL_FIELDS)


@pytest.mark.parametrize(
    "family, field, expected",
    [
        ("registration", "name", PUBLIC),
        ("registration", "address", PUBLIC),
        ("registration", "contact_phone", SHARED),
        ("registration", "legal_representative_id", CONFIDENTIAL),
        ("licenses", "decision_number", PUBLIC),
        ("penalties", "fine_amount", PUBLIC),
        ("penalties", "severity", PUBLIC),
        ("penalties", "case_handler", SHARED),
        ("tax_credit", "level", SHARED),
        ("tax_credit", "tax_paid", AUTHORIZED),
        ("judgment_debtor_records", "debtor_name", PUBLIC),
        ("judgment_debtor_records", "debtor_id_number", PUBLIC),  # masked for the public
        ("honors", "honor_name", PUBLIC),
    ],
)
def test_default_policy_classes_match_the_file(default: Policy, family: str, field: str, expected: DisclosureClass) -> None:
    assert default.class_of((family, field)) is expected


@pytest.mark.parametrize("field", ["level", "year", "evaluation_date"])
def test_bank_override_makes_tax_credit_level_authorized_for_banks_only(default: Policy, field: str) -> None:
    key = ("tax_credit", field)
    assert default.class_of(key, "bank") is AUTHORIZED
    for kind in ("department", "agency", "platform", "admin", "public", None):
        assert default.class_of(key, kind) is SHARED


def test_bank_override_leaves_fields_it_does_not_name_alone(default: Policy) -> None:
    assert default.class_of(("tax_credit", "authority"), "bank") is SHARED
    assert default.class_of(("tax_credit", "tax_paid"), "bank") is AUTHORIZED
    assert default.class_of(("registration", "contact_phone"), "bank") is SHARED


def test_fields_the_policy_does_not_name_are_confidential(default: Policy) -> None:
    assert default.class_of(("registration", "shoe_size")) is CONFIDENTIAL
    assert default.class_of(("no_such_family", "name")) is CONFIDENTIAL
    assert default.class_of(("registration", "shoe_size"), "bank") is CONFIDENTIAL


def test_granted_is_the_union_of_the_scopes_and_ignores_unknown_ones(default: Policy) -> None:
    assert default.granted(frozenset()) == frozenset()
    assert default.granted(frozenset({"admin", "openid"})) == frozenset()
    assert default.granted(frozenset({"credit:shared", "credit:authorized"})) == {PUBLIC, SHARED, AUTHORIZED}


# --------------------------------------------------------------------------------------------
# The default policy, decided: client kind × field
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(CALLERS))
@pytest.mark.parametrize("family, field", ALL_FIELDS)
def test_default_policy_decision_matrix(default: Policy, kind: str, family: str, field: str) -> None:
    caller = CALLERS[kind]
    disclosure = class_in_default_file(kind, family, field)
    decision = decide(default, caller, family, field)
    expected = disclosure is not CONFIDENTIAL and disclosure in GRANTED_BY_DEFAULT[kind]
    assert decision.allowed is expected
    assert decision.verdict is (Verdict.ALLOW if expected else Verdict.DENY)
    assert decision.disclosure is disclosure


@pytest.mark.parametrize(
    "caller, family, field, allowed",
    [
        (PUBLIC_CALLER, "registration", "name", True),
        (PUBLIC_CALLER, "registration", "contact_phone", False),
        (PUBLIC_CALLER, "tax_credit", "level", False),
        (PUBLIC_CALLER, "penalties", "case_handler", False),
        (DEPARTMENT, "registration", "contact_phone", True),
        (DEPARTMENT, "tax_credit", "level", True),
        (DEPARTMENT, "tax_credit", "tax_paid", False),
        (DEPARTMENT, "judgment_debtor_records", "debtor_id_number", True),
        (BANK, "tax_credit", "level", True),  # 银税互动 override
        (BANK, "tax_credit", "authority", False),  # SHARED, not overridden
        (BANK, "tax_credit", "tax_paid", True),
        (BANK, "registration", "contact_phone", False),
        (ADMIN, "registration", "contact_phone", True),
        (ADMIN, "tax_credit", "tax_paid", False),
        (ADMIN, "registration", "legal_representative_id", False),
        (BANK, "registration", "legal_representative_id", False),
        (DEPARTMENT, "registration", "legal_representative_id", False),
    ],
)
def test_default_policy_decisions_worth_naming(
    default: Policy, caller: Caller, family: str, field: str, allowed: bool
) -> None:
    assert decide(default, caller, family, field).allowed is allowed


def test_a_caller_holding_every_scope_still_never_gets_a_confidential_field(default: Policy) -> None:
    everything = Caller("department", frozenset(default.scopes) | {"admin"})
    decision = decide(default, everything, "registration", "legal_representative_id")
    assert decision.verdict is Verdict.DENY
    assert decision.disclosure is CONFIDENTIAL


def test_decide_denies_confidential_even_if_a_scope_was_tampered_with_after_validation() -> None:
    scopes = {"credit:public": frozenset({PUBLIC})}
    policy = Policy(version="x", classes={("registration", "name"): CONFIDENTIAL}, scopes=scopes)
    scopes["credit:public"] = frozenset({PUBLIC, CONFIDENTIAL})  # bypasses __post_init__
    assert not decide(policy, PUBLIC_CALLER, "registration", "name").allowed


def test_a_caller_without_scopes_gets_nothing(default: Policy) -> None:
    nobody = Caller("department", frozenset())
    assert not any(decide(default, nobody, f, n).allowed for f, n in ALL_FIELDS)


def test_unknown_field_is_denied_as_confidential(default: Policy) -> None:
    decision = decide(default, DEPARTMENT, "registration", "shoe_size")
    assert not decision.allowed
    assert decision.disclosure is CONFIDENTIAL


def test_allowed_fields_keeps_the_order_and_drops_denied_fields(default: Policy) -> None:
    asked = ("contact_phone", "name", "legal_representative_id", "address")
    assert allowed_fields(default, PUBLIC_CALLER, "registration", asked) == ("name", "address")
    assert allowed_fields(default, DEPARTMENT, "registration", asked) == ("contact_phone", "name", "address")


# --------------------------------------------------------------------------------------------
# The loader: "*", unnamed fields, overrides
# --------------------------------------------------------------------------------------------


def test_star_fills_every_field_of_a_family_and_named_fields_override_it(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            MINIMAL_SCOPES
            + """
            [fields.honors]
            "*" = "SHARED"
            honor_name = "PUBLIC"
            """,
        )
    )
    honors = FAMILIES["honors"].field_names
    assert {policy.class_of(("honors", f)) for f in honors if f != "honor_name"} == {SHARED}
    assert policy.class_of(("honors", "honor_name")) is PUBLIC


def test_without_star_only_named_fields_get_a_class(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(tmp_path, MINIMAL_SCOPES + '[fields.registration]\nname = "PUBLIC"\n')
    )
    assert policy.classes == {("registration", "name"): PUBLIC}
    assert policy.class_of(("registration", "address")) is CONFIDENTIAL


def test_a_family_the_policy_does_not_mention_is_wholly_confidential(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, MINIMAL_SCOPES + '[fields.honors]\n"*" = "PUBLIC"\n'))
    for name in FAMILIES["penalties"].field_names:
        assert policy.class_of(("penalties", name)) is CONFIDENTIAL
        assert not decide(policy, PUBLIC_CALLER, "penalties", name).allowed


def test_class_names_are_case_insensitive(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            '[scopes]\n"credit:public" = ["public"]\n[fields.honors]\n"*" = "Shared"\n',
        )
    )
    assert policy.scopes["credit:public"] == {PUBLIC}
    assert policy.class_of(("honors", "honor_name")) is SHARED


def test_kind_override_applies_only_to_that_kind(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            [scopes]
            "credit:public" = ["PUBLIC"]
            "credit:shared" = ["PUBLIC", "SHARED"]

            [fields.registration]
            "*" = "PUBLIC"

            [overrides.department.registration]
            address = "SHARED"
            """,
        )
    )
    assert policy.class_of(("registration", "address"), "department") is SHARED
    assert policy.class_of(("registration", "address"), "bank") is PUBLIC
    assert policy.class_of(("registration", "address")) is PUBLIC
    assert policy.class_of(("registration", "name"), "department") is PUBLIC


def test_kind_override_can_withdraw_a_field_from_that_kind(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            MINIMAL_SCOPES
            + """
            [fields.registration]
            "*" = "PUBLIC"

            [overrides.subject.registration]
            "*" = "CONFIDENTIAL"
            """,
        )
    )
    subject = Caller("subject", frozenset({"credit:public"}))
    other = Caller("department", frozenset({"credit:public"}))
    assert not decide(policy, subject, "registration", "name").allowed
    assert decide(policy, other, "registration", "name").allowed


def test_kind_override_can_release_a_field_that_is_otherwise_confidential(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(
            tmp_path,
            """
            [scopes]
            "credit:public" = ["PUBLIC"]
            "credit:authorized" = ["AUTHORIZED"]

            [overrides.bank.registration]
            contact_phone = "AUTHORIZED"
            """,
        )
    )
    bank = Caller("bank", frozenset({"credit:authorized"}))
    agency = Caller("agency", frozenset({"credit:authorized"}))
    assert decide(policy, bank, "registration", "contact_phone").allowed
    assert not decide(policy, agency, "registration", "contact_phone").allowed


# --------------------------------------------------------------------------------------------
# The loader: documents it must refuse, each with a PolicyError naming the problem
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, message",
    [
        ('[fields.parking_tickets]\n"*" = "PUBLIC"\n', r"fields: unknown record family 'parking_tickets'"),
        ('[fields.registration]\nshoe_size = "PUBLIC"\n', r"fields\.registration: unknown field 'shoe_size'"),
        ('[fields.registration]\nname = "SECRET"\n', r"fields\.registration\.name: 'SECRET' is not a disclosure class"),
        ('[fields.registration]\n"*" = "TOP"\n', r"fields\.registration\.\w+: 'TOP' is not a disclosure class"),
        ('[fields]\nregistration = "PUBLIC"\n', r"fields\.registration: expected a table"),
        ('[overrides.bank.parking_tickets]\nx = "PUBLIC"\n', r"overrides\.bank: unknown record family 'parking_tickets'"),
        ('[overrides.bank.tax_credit]\nshoe_size = "PUBLIC"\n', r"overrides\.bank\.tax_credit: unknown field 'shoe_size'"),
        ('[overrides.bank.tax_credit]\nlevel = "VIP"\n', r"overrides\.bank\.tax_credit\.level: 'VIP' is not a disclosure class"),
    ],
)
def test_loader_rejects_bad_field_tables_naming_the_problem(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy(write_policy(tmp_path, MINIMAL_SCOPES + body))


def test_loader_rejects_an_unknown_class_in_a_scope(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"scopes\.credit:public: 'EVERYTHING' is not a disclosure class"):
        load_policy(write_policy(tmp_path, '[scopes]\n"credit:public" = ["EVERYTHING"]\n'))


def test_loader_rejects_a_scope_granting_confidential(tmp_path: Path) -> None:
    text = '[scopes]\n"credit:public" = ["PUBLIC"]\n"credit:all" = ["PUBLIC", "CONFIDENTIAL"]\n'
    with pytest.raises(PolicyError, match=r"'credit:all' grants CONFIDENTIAL"):
        load_policy(write_policy(tmp_path, text))


def test_loader_rejects_a_policy_without_scopes(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"no \[scopes\] table"):
        load_policy(write_policy(tmp_path, '[fields.honors]\n"*" = "PUBLIC"\n'))


def test_loader_rejects_an_empty_scopes_table(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"no \[scopes\] table"):
        load_policy(write_policy(tmp_path, "[scopes]\n"))


def test_loader_rejects_scopes_that_are_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"no \[scopes\] table"):
        load_policy(write_policy(tmp_path, 'scopes = ["credit:public"]\n'))


def test_loader_rejects_a_public_scope_the_policy_does_not_define(tmp_path: Path) -> None:
    text = 'public_scope = "credit:open"\n' + MINIMAL_SCOPES
    with pytest.raises(PolicyError, match=r"public scope 'credit:open' is not defined"):
        load_policy(write_policy(tmp_path, text))


@pytest.mark.parametrize(
    "text",
    [
        "[scopes\n",  # unclosed table header
        '[scopes]\n"credit:public" = ["PUBLIC"\n',  # unclosed array
        '[scopes]\n"credit:public" = ["PUBLIC"]\n"credit:public" = ["SHARED"]\n',  # duplicate key
        "version = \n",
    ],
)
def test_loader_turns_invalid_toml_into_a_policy_error_naming_the_file(tmp_path: Path, text: str) -> None:
    path = write_policy(tmp_path, text)
    with pytest.raises(PolicyError, match=str(path).replace("\\", "\\\\")):
        load_policy(path)


def test_policy_object_refuses_a_scope_granting_confidential() -> None:
    with pytest.raises(PolicyError, match="CONFIDENTIAL"):
        Policy(
            version="x",
            classes={},
            scopes={"credit:public": frozenset({PUBLIC}), "root": frozenset({CONFIDENTIAL})},
        )


def test_policy_object_refuses_a_missing_public_scope() -> None:
    with pytest.raises(PolicyError, match="credit:public"):
        Policy(version="x", classes={}, scopes={"credit:shared": frozenset({SHARED})})


def test_policy_error_is_a_value_error() -> None:
    assert issubclass(PolicyError, ValueError)


# --------------------------------------------------------------------------------------------
# decide over arbitrary policies (hypothesis)
# --------------------------------------------------------------------------------------------

KINDS = ("public", "department", "bank", "agency", "platform", "admin", "subject")
SCOPE_NAMES = ("credit:public", "credit:shared", "credit:authorized", "credit:extra")
RELEASABLE = (PUBLIC, SHARED, AUTHORIZED)

field_keys = st.sampled_from(ALL_FIELDS)
any_class = st.sampled_from(list(DisclosureClass))
# A field may be left out of the policy altogether (None): it is then CONFIDENTIAL.
class_assignments = st.fixed_dictionaries({key: st.none() | any_class for key in ALL_FIELDS}).map(
    lambda d: {k: v for k, v in d.items() if v is not None}
)
scope_grants = st.fixed_dictionaries(
    {"credit:public": st.frozensets(st.sampled_from(RELEASABLE))},
    optional={s: st.frozensets(st.sampled_from(RELEASABLE)) for s in SCOPE_NAMES[1:]},
)
overrides = st.dictionaries(st.sampled_from(KINDS), st.dictionaries(field_keys, any_class, max_size=8), max_size=3)
callers = st.builds(
    Caller,
    kind=st.sampled_from(KINDS),
    scopes=st.frozensets(st.sampled_from((*SCOPE_NAMES, "admin", "openid"))),
)


def expected_allowed(
    classes: dict, scopes: dict, kind_overrides: dict, caller: Caller, key: tuple[str, str]
) -> tuple[bool, DisclosureClass]:
    """The definition, stated independently of the engine."""
    disclosure = kind_overrides.get(caller.kind, {}).get(key, classes.get(key, CONFIDENTIAL))
    granted = set().union(*(scopes.get(s, set()) for s in caller.scopes))
    return disclosure is not CONFIDENTIAL and disclosure in granted, disclosure


@settings(max_examples=300)
@given(classes=class_assignments, scopes=scope_grants, kind_overrides=overrides, caller=callers, key=field_keys)
def test_decide_allows_exactly_the_granted_non_confidential_classes(
    classes: dict, scopes: dict, kind_overrides: dict, caller: Caller, key: tuple[str, str]
) -> None:
    policy = Policy(version="h", classes=classes, scopes=scopes, kind_overrides=kind_overrides)
    allowed, disclosure = expected_allowed(classes, scopes, kind_overrides, caller, key)
    decision = decide(policy, caller, *key)
    assert decision.allowed is allowed
    assert decision.disclosure is disclosure


MASK_SPECS = ("resident_id", "uscc", "name", "phone", "redact", "clear", "round:100")
purposes = st.sampled_from((None, "", "loan-review", "credit-card-review", "unregistered"))
full_callers = st.builds(
    Caller,
    kind=st.sampled_from(KINDS),
    scopes=st.frozensets(st.sampled_from((*SCOPE_NAMES, "admin", "openid"))),
    purpose=purposes,
    allowed_purposes=st.frozensets(st.sampled_from(("loan-review", "credit-card-review"))),
)
mask_tables = st.dictionaries(
    field_keys,
    st.dictionaries(st.sampled_from(RELEASABLE), st.sampled_from(MASK_SPECS), min_size=1),
    max_size=12,
)


@settings(max_examples=1500)
@given(
    classes=class_assignments, scopes=scope_grants, kind_overrides=overrides, masks=mask_tables,
    caller=full_callers, key=field_keys, natural=st.booleans(), consented=st.booleans(),
)
def test_decide_follows_all_five_rules_of_the_definition(
    classes: dict, scopes: dict, kind_overrides: dict, masks: dict, caller: Caller, key: tuple[str, str],
    natural: bool, consented: bool,
) -> None:
    """Class (with kind overrides), scopes, purpose, consent and mask, against an oracle that
    states them without the engine (tests/policy_oracle.py)."""
    policy = Policy(
        version="h", classes=classes, scopes=scopes, kind_overrides=kind_overrides,
        masks={k: {c: parse_mask(spec) for c, spec in by.items()} for k, by in masks.items()},
    )
    expected = expected_decision(
        policy, kind=caller.kind, scopes=caller.scopes, purpose=caller.purpose,
        allowed_purposes=caller.allowed_purposes, family=key[0], field=key[1],
        natural_person=natural, consented=consented, subject_names=False,
    )
    decision = decide(policy, caller, *key, natural_person=natural, consented=consented)
    assert (decision.allowed, decision.disclosure, decision.reason.value) == (
        expected.allowed, expected.disclosure, expected.reason
    )
    assert (decision.mask.spec if decision.mask is not None else None) == expected.mask


@st.composite
def policy_documents(draw: st.DrawFn) -> tuple[dict, dict, dict]:
    """A TOML-shaped document plus the classes it should produce, computed by hand."""
    fields_table: dict[str, dict[str, str]] = {}
    expected: dict[tuple[str, str], DisclosureClass] = {}
    for family in draw(st.frozensets(st.sampled_from(sorted(FAMILIES)))):
        names = FAMILIES[family].field_names
        star = draw(st.none() | any_class)
        named = draw(st.dictionaries(st.sampled_from(names), any_class))
        table = {name: cls.value for name, cls in named.items()}
        if star is not None:
            table["*"] = star.value
        fields_table[family] = table
        for name in names:
            cls = named.get(name, star)
            if cls is not None:
                expected[(family, name)] = cls
    scopes = draw(scope_grants)
    document = {
        "scopes": {s: [c.value for c in sorted(g, key=lambda c: c.value)] for s, g in scopes.items()},
        "fields": fields_table,
    }
    return document, expected, scopes


@settings(max_examples=200)
@given(doc=policy_documents(), caller=callers, key=field_keys)
def test_parsed_documents_decide_by_the_definition(doc: tuple[dict, dict, dict], caller: Caller, key: tuple[str, str]) -> None:
    document, expected_classes, scopes = doc
    policy = parse_policy(document, "h")
    assert dict(policy.classes) == expected_classes
    allowed, disclosure = expected_allowed(expected_classes, scopes, {}, caller, key)
    decision = decide(policy, caller, *key)
    assert decision.allowed is allowed
    assert decision.disclosure is disclosure


@given(
    scopes=st.dictionaries(
        st.sampled_from(SCOPE_NAMES), st.frozensets(any_class), min_size=1
    ).filter(lambda s: any(CONFIDENTIAL in g for g in s.values()))
)
def test_no_policy_can_be_built_with_a_scope_granting_confidential(scopes: dict) -> None:
    scopes = {"credit:public": frozenset({PUBLIC}), **scopes}
    with pytest.raises(PolicyError, match="CONFIDENTIAL"):
        Policy(version="h", classes={}, scopes=scopes)


# --------------------------------------------------------------------------------------------
# Regressions: bugs found by review, fixed
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ['fields = "PUBLIC"\n', 'overrides = "none"\n', '[overrides]\nbank = "AUTHORIZED"\n'],
)
def test_loader_rejects_non_table_fields_or_overrides_with_policy_error(tmp_path: Path, body: str) -> None:
    with pytest.raises(PolicyError):
        load_policy(write_policy(tmp_path, body + MINIMAL_SCOPES))


def test_loader_rejects_a_scope_that_is_a_number_with_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"credit:public"):
        load_policy(write_policy(tmp_path, '[scopes]\n"credit:public" = 3\n'))


def test_loader_names_a_scope_given_as_a_string_instead_of_an_array(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"credit:public") as caught:
        load_policy(write_policy(tmp_path, '[scopes]\n"credit:public" = "PUBLIC"\n'))
    assert "'P'" not in str(caught.value)


# --------------------------------------------------------------------------------------------
# Purpose binding and consent (AUTHORIZED fields only)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "purpose, allowed, reason",
    [
        (None, frozenset({"loan-review"}), "NO_PURPOSE"),
        ("marketing", frozenset({"loan-review"}), "PURPOSE_NOT_ALLOWED"),
        ("loan-review", frozenset(), "PURPOSE_NOT_ALLOWED"),
        ("loan-review", frozenset({"loan-review"}), "GRANTED"),
    ],
)
def test_authorized_fields_need_a_declared_purpose_the_client_is_registered_for(
    default: Policy, purpose: str | None, allowed: frozenset[str], reason: str
) -> None:
    bank = Caller("bank", BANK.scopes, purpose, allowed)
    decision = decide(default, bank, "tax_credit", "tax_paid")
    assert decision.reason.name == reason
    assert decision.allowed is (reason == "GRANTED")
    # PUBLIC fields do not depend on the purpose
    assert decide(default, bank, "registration", "name").allowed


def test_natural_persons_authorized_data_also_needs_consent(default: Policy) -> None:
    field = ("social_insurance_contributions", "monthly_base")
    without = decide(default, BANK, *field, natural_person=True, consented=False)
    assert not without.allowed and without.reason.name == "NO_CONSENT"
    with_consent = decide(default, BANK, *field, natural_person=True, consented=True)
    assert with_consent.allowed
    # a legal person's AUTHORIZED data needs no consent; a natural person's PUBLIC data neither
    assert decide(default, BANK, "tax_credit", "tax_paid", natural_person=False).allowed
    assert decide(default, PUBLIC_CALLER, "penalties", "decision_number", natural_person=True).allowed


def test_consent_never_opens_a_field_the_scopes_do_not_grant(default: Policy) -> None:
    decision = decide(default, DEPARTMENT, "social_insurance_contributions", "monthly_base", natural_person=True, consented=True)
    assert not decision.allowed and decision.reason.name == "NOT_GRANTED"


# --------------------------------------------------------------------------------------------
# Masks per field per audience
# --------------------------------------------------------------------------------------------


def test_masks_follow_the_callers_audience(default: Policy) -> None:
    public = decide(default, PUBLIC_CALLER, "judgment_debtor_records", "debtor_id_number")
    assert public.allowed and public.mask is not None and public.mask("150102199003071234") == "1501**********1234"
    department = decide(default, DEPARTMENT, "judgment_debtor_records", "debtor_id_number")
    assert department.allowed and department.mask is None  # government sees it in clear
    bank = decide(default, BANK, "tax_credit", "tax_paid")
    assert bank.mask is not None and bank.mask.spec == "round:10"


@pytest.mark.parametrize(
    "table, message",
    [
        ('[masks.penalties]\nfacts = { PUBLIC = "sparkle" }', "unknown mask"),
        ('[masks.penalties]\nfacts = { PUBLIC = "round:0" }', "positive step"),
        ('[masks.penalties]\nfacts = { CONFIDENTIAL = "redact" }', "never an audience"),
        ('[masks.penalties]\nshoe_size = { PUBLIC = "redact" }', "unknown field"),
        ('[masks.nowhere]\nfacts = { PUBLIC = "redact" }', "unknown record family"),
        ('[masks.penalties]\nfacts = "redact"', "mask per audience"),
    ],
)
def test_bad_masks_are_refused_with_the_place_of_fault(table: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(tomllib.loads(MINIMAL_SCOPES + table), "x")


def test_policy_document_round_trips(default: Policy) -> None:
    from xinlian.policies.loader import policy_document

    assert parse_policy(policy_document(default), default.version) == default


def test_an_authorized_audience_without_its_own_mask_gets_the_public_one(default: Policy) -> None:
    bank = decide(default, BANK, "judgment_debtor_records", "debtor_id_number")
    assert bank.mask is not None and bank.mask.spec == "resident_id"
    clear = parse_policy(
        tomllib.loads(MINIMAL_SCOPES + '"credit:authorized" = ["AUTHORIZED", "PUBLIC"]\n[fields.judgment_debtor_records]\n"*" = "PUBLIC"\n'
                      '[masks.judgment_debtor_records]\ndebtor_id_number = { PUBLIC = "resident_id", AUTHORIZED = "clear" }'),
        "x",
    )
    assert decide(clear, BANK, "judgment_debtor_records", "debtor_id_number").mask is None
    assert decide(clear, PUBLIC_CALLER, "judgment_debtor_records", "debtor_id_number").mask is not None
