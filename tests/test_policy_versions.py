"""Policy versions in the hub store: changes, who/when/why, activation, and hubs that follow it.

Issue 4: every change records who, when, what changed and why; any earlier version can be shown
and re-activated; the audit entry of every request records the version it was decided under;
the public contract follows the active version without restart, in every hub process.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text as sql_text

from hub_fixture import RunningHub, running_hub, wait_until, with_policy_history
from xinlian.hub.active_policy import ActivePolicy
from xinlian.hub.admin.operations import AdminInputError
from xinlian.hub.admin.policy_admin import PolicyOperations
from xinlian.hub.audit.trail import AuditTrail
from xinlian.hub.cli import main as cli_main
from xinlian.hub.cluster.changes import ChangeFeed
from xinlian.hub.config import Settings
from xinlian.hub.executor import HubResolvers
from xinlian.hub.governance.policy_versions import POLICY_LOCK, PolicyHistory, PolicyHistoryEmpty
from xinlian.hub.guard import RateRules
from xinlian.hub.principal import Principal
from xinlian.hub.runtime import HubRuntime, public_contract
from xinlian.hub.store import Store
from xinlian.policies import DisclosureClass, PolicyError, load_policy
from xinlian.policies.changes import (
    ClearOverride,
    PolicyChangeError,
    SetFieldClass,
    SetMask,
    SetScope,
    apply_changes,
    describe_diff,
)
from xinlian.policies.loader import default_policy_path, parse_policy, parse_policy_text, policy_document
from xinlian.schema.catalogue import FAMILIES

PUBLIC, SHARED, AUTHORIZED, CONFIDENTIAL = (
    DisclosureClass.PUBLIC,
    DisclosureClass.SHARED,
    DisclosureClass.AUTHORIZED,
    DisclosureClass.CONFIDENTIAL,
)
CASE_HANDLER = ("penalties", "case_handler")
MAKE_CASE_HANDLER_PUBLIC = SetFieldClass("penalties", "case_handler", PUBLIC)


@pytest.fixture
def default_document() -> dict[str, Any]:
    return policy_document(load_policy())


# --- changes to a document (pure) ---------------------------------------------------------------


def test_setting_a_field_class_changes_that_field_only_and_leaves_the_input_alone(default_document: dict) -> None:
    before = copy.deepcopy(default_document)
    after = apply_changes(default_document, [MAKE_CASE_HANDLER_PUBLIC])
    assert default_document == before
    assert parse_policy(after, "v2").class_of(CASE_HANDLER) is PUBLIC
    assert describe_diff(before, after) == ["fields.penalties.case_handler: SHARED -> PUBLIC"]


def test_the_diff_lines_say_what_changed_in_every_part_of_a_policy(default_document: dict) -> None:
    after = apply_changes(
        default_document,
        [
            MAKE_CASE_HANDLER_PUBLIC,
            SetFieldClass("tax_credit", "level", AUTHORIZED, kind="agency"),
            SetMask("tax_credit", "tax_paid", AUTHORIZED, "round:1000"),
            SetMask("registration", "contact_phone", SHARED, "phone"),
            SetScope("credit:x", frozenset({SHARED, PUBLIC})),
        ],
    )
    assert describe_diff(default_document, after) == [
        "scopes.credit:x: (none) -> PUBLIC, SHARED",
        "fields.penalties.case_handler: SHARED -> PUBLIC",
        "overrides.agency.tax_credit.level: (none) -> AUTHORIZED",
        "masks.registration.contact_phone.SHARED: (none) -> phone",
        "masks.tax_credit.tax_paid.AUTHORIZED: round:10 -> round:1000",
    ]
    assert describe_diff(after, default_document)[0] == "scopes.credit:x: PUBLIC, SHARED -> (none)"


def test_the_diff_reads_files_with_a_star_as_the_fields_they_stand_for() -> None:
    import tomllib

    written = tomllib.loads(default_policy_path().read_text(encoding="utf-8"))
    assert describe_diff(written, policy_document(load_policy())) == []


def test_a_star_sets_every_field_of_a_family(default_document: dict) -> None:
    after = apply_changes(default_document, [SetFieldClass("tax_credit", "*", SHARED)])
    policy = parse_policy(after, "v2")
    assert {policy.class_of(("tax_credit", f)) for f in FAMILIES["tax_credit"].field_names} == {SHARED}
    assert describe_diff(default_document, after) == ["fields.tax_credit.tax_paid: AUTHORIZED -> SHARED"]


def test_overrides_are_per_client_kind_and_clearing_one_leaves_no_trace(default_document: dict) -> None:
    added = apply_changes(default_document, [SetFieldClass("penalties", "case_handler", AUTHORIZED, kind="bank")])
    policy = parse_policy(added, "v2")
    assert policy.class_of(CASE_HANDLER, "bank") is AUTHORIZED and policy.class_of(CASE_HANDLER) is SHARED
    cleared = apply_changes(added, [ClearOverride("penalties", "case_handler", "bank")])
    assert cleared == default_document
    everything = apply_changes(default_document, [ClearOverride("tax_credit", "*", "bank")])
    assert "tax_credit" not in everything["overrides"]["bank"]
    with pytest.raises(PolicyChangeError, match="no such override"):
        apply_changes(default_document, [ClearOverride("penalties", "case_handler", "bank")])


def test_masks_are_set_replaced_and_removed(default_document: dict) -> None:
    removed = apply_changes(default_document, [SetMask("tax_credit", "tax_paid", AUTHORIZED, None)])
    assert "tax_credit" not in removed["masks"]
    assert parse_policy(removed, "v2").mask_for(("tax_credit", "tax_paid"), AUTHORIZED) is None
    with pytest.raises(PolicyChangeError, match="no mask to remove"):
        apply_changes(removed, [SetMask("tax_credit", "tax_paid", AUTHORIZED, None)])
    with pytest.raises(PolicyChangeError, match="unknown mask"):
        apply_changes(default_document, [SetMask("tax_credit", "tax_paid", AUTHORIZED, "blur")])
    with pytest.raises(PolicyChangeError, match="never an audience"):
        apply_changes(default_document, [SetMask("tax_credit", "tax_paid", CONFIDENTIAL, "redact")])


def test_scopes_are_set_and_removed_but_never_grant_confidential_nor_lose_the_public_scope(default_document: dict) -> None:
    narrowed = apply_changes(default_document, [SetScope("credit:authorized", frozenset({AUTHORIZED}))])
    assert parse_policy(narrowed, "v2").scopes["credit:authorized"] == frozenset({AUTHORIZED})
    gone = apply_changes(default_document, [SetScope("credit:authorized", None)])
    assert "credit:authorized" not in gone["scopes"]
    with pytest.raises(PolicyChangeError, match="CONFIDENTIAL"):
        apply_changes(default_document, [SetScope("credit:shared", frozenset({SHARED, CONFIDENTIAL}))])
    with pytest.raises(PolicyChangeError, match="public scope cannot be removed"):
        apply_changes(default_document, [SetScope("credit:public", None)])


@pytest.mark.parametrize(
    "change, message",
    [
        (SetFieldClass("fines", "amount", PUBLIC), "unknown record family 'fines'"),
        (SetFieldClass("penalties", "secret", PUBLIC), "unknown field 'secret'"),
        (SetFieldClass("penalties", "case_handler", "EVERYONE"), "not a disclosure class"),  # type: ignore[arg-type]
        (SetFieldClass("penalties", "case_handler", SHARED), "already SHARED"),
        (SetFieldClass("penalties", "case_handler", PUBLIC, kind="Bank!"), "client kind"),
        (SetMask("tax_credit", "tax_paid", AUTHORIZED, "round:10"), "already round:10"),
        (SetScope("credit:shared", frozenset({SHARED, PUBLIC})), "already grants"),
        (SetScope("credit:nope", None), "no such scope"),
        (SetScope("credit:x", frozenset()), "at least one class"),
    ],
)
def test_malformed_or_idle_changes_are_refused(default_document: dict, change: Any, message: str) -> None:
    with pytest.raises(PolicyChangeError, match=message):
        apply_changes(default_document, [change])
    assert issubclass(PolicyChangeError, PolicyError) and issubclass(PolicyChangeError, ValueError)


FIELD_KEYS = [(family.name, name) for family in FAMILIES.values() for name in family.field_names]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FIELD_KEYS), st.sampled_from(list(DisclosureClass))), min_size=1, max_size=8))
def test_the_last_class_set_for_a_field_is_the_class_it_has(assignments: list) -> None:
    document = policy_document(load_policy())
    for (family, name), disclosure in assignments:
        try:
            document = apply_changes(document, [SetFieldClass(family, name, disclosure)])
        except PolicyChangeError:
            assert parse_policy(document, "x").class_of((family, name)) is disclosure  # already so
    policy = parse_policy(document, "v9")
    last = dict(((f, n), c) for (f, n), c in assignments)
    assert all(policy.class_of(key) is disclosure for key, disclosure in last.items())
    changed = describe_diff(policy_document(load_policy()), policy_document(policy))
    assert all(line.startswith("fields.") for line in changed)


# --- the history in the store (SQLite and PostgreSQL) ---------------------------------------------


@pytest.fixture
async def history(store_url: str):
    store = await Store.open(store_url)
    try:
        yield PolicyHistory(store)
    finally:
        await store.close()


async def test_an_empty_store_is_seeded_once_with_v1_active(history: PolicyHistory) -> None:
    with pytest.raises(PolicyHistoryEmpty):
        await history.active()
    first = await history.seed(load_policy(), "system", "initial policy from default.toml")
    assert (first.number, first.version, first.policy.version, first.active) == (1, "v1", "v1", True)
    assert first.created_by == "system" and first.reason == "initial policy from default.toml"
    assert first.parent is None and first.changes == []
    assert first.document == policy_document(load_policy())
    another_file = parse_policy(apply_changes(first.document, [MAKE_CASE_HANDLER_PUBLIC]), "elsewhere")
    again = await history.seed(another_file, "system", "another file")
    assert again.version == "v1" and again.document == first.document  # the store wins
    assert [v.version for v in await history.versions()] == ["v1"]
    assert len(await history.activations()) == 1


async def test_hubs_starting_together_on_an_empty_store_seed_one_version(store_url: str) -> None:
    stores = [await Store.open(store_url) for _ in range(4)]
    try:
        seeded = await asyncio.gather(
            *(PolicyHistory(s).seed(load_policy(), "system", f"hub {i}") for i, s in enumerate(stores))
        )
        assert {s.version for s in seeded} == {"v1"}
        assert [v.version for v in await PolicyHistory(stores[0]).versions()] == ["v1"]
        assert len(await PolicyHistory(stores[0]).activations()) == 1
    finally:
        for store in stores:
            await store.close()


async def test_a_change_is_a_new_version_saying_who_when_what_and_why(history: PolicyHistory) -> None:
    await history.seed(load_policy(), "system", "initial")
    started = time.time()
    v2 = await history.change([MAKE_CASE_HANDLER_PUBLIC], "admin-wang", "open data catalogue 2026")
    assert (v2.version, v2.parent, v2.active, v2.policy.version) == ("v2", 1, True, "v2")
    assert v2.created_by == "admin-wang" and v2.reason == "open data catalogue 2026"
    assert v2.changes == ["fields.penalties.case_handler: SHARED -> PUBLIC"]
    assert abs(v2.created_at.timestamp() - started) < 60
    assert v2.policy.class_of(CASE_HANDLER) is PUBLIC
    assert (await history.active()).version == "v2"
    v1 = await history.get("v1")
    assert v1 is not None and v1.policy.class_of(CASE_HANDLER) is SHARED and not v1.active
    assert (await history.get("2")).version == "v2" and await history.get("v3") is None
    assert await history.get("banana") is None
    assert await history.diff("v1", "v2") == v2.changes
    assert await history.diff("2", "1") == ["fields.penalties.case_handler: PUBLIC -> SHARED"]


async def test_a_version_can_be_stored_without_activation_and_from_an_older_base(history: PolicyHistory) -> None:
    await history.seed(load_policy(), "system", "initial")
    await history.change([MAKE_CASE_HANDLER_PUBLIC], "admin", "open data")
    v3 = await history.change(
        [SetMask("tax_credit", "tax_paid", AUTHORIZED, None)], "admin", "try without the mask", activate=False, base="v1"
    )
    assert v3.parent == 1 and not v3.active
    assert v3.policy.class_of(CASE_HANDLER) is SHARED  # built on v1, not on the active v2
    assert (await history.active()).version == "v2"
    listed = await history.versions()
    assert [(v.version, v.active) for v in listed] == [("v3", False), ("v2", True), ("v1", False)]


async def test_bad_changes_store_nothing(history: PolicyHistory) -> None:
    await history.seed(load_policy(), "system", "initial")
    bad_calls: list[Callable[[], Any]] = [
        lambda: history.change([MAKE_CASE_HANDLER_PUBLIC], "admin", "   "),
        lambda: history.change([MAKE_CASE_HANDLER_PUBLIC], "", "why"),
        lambda: history.change([], "admin", "why"),
        lambda: history.change([SetFieldClass("penalties", "case_handler", SHARED)], "admin", "no-op"),
        lambda: history.change([SetFieldClass("nope", "x", PUBLIC)], "admin", "unknown family"),
        lambda: history.change([SetScope("credit:shared", frozenset({CONFIDENTIAL}))], "admin", "unsafe"),
        lambda: history.change([MAKE_CASE_HANDLER_PUBLIC, SetFieldClass("penalties", "case_handler", SHARED)], "a", "undo"),
        lambda: history.change([MAKE_CASE_HANDLER_PUBLIC], "admin", "why", base="v9"),
        lambda: history.import_text("not = [toml", "admin", "broken"),
        lambda: history.import_text('[scopes]\n"credit:public" = ["PUBLIC"]\n[feilds.penalties]\n"*" = "PUBLIC"\n', "a", "typo"),
        lambda: history.import_text('public_scope = "credit:none"\n[scopes]\n"credit:public" = ["PUBLIC"]\n', "a", "x"),
        lambda: history.activate("v1", "admin", "already"),
        lambda: history.activate("v7", "admin", "missing"),
        lambda: history.activate("latest", "admin", "malformed"),
    ]
    for call in bad_calls:
        with pytest.raises(PolicyError):
            await call()
    assert [v.version for v in await history.versions()] == ["v1"]
    assert len(await history.activations()) == 1


async def test_an_earlier_version_is_reactivated_with_a_new_activation_row(history: PolicyHistory) -> None:
    await history.seed(load_policy(), "system", "initial")
    await history.change([MAKE_CASE_HANDLER_PUBLIC], "admin-wang", "open data")
    back = await history.activate("v1", "admin-li", "complaint from the court: case handlers are personal data")
    assert back.version == "v1" and back.active and back.changes == []
    assert (await history.active()).policy.class_of(CASE_HANDLER) is SHARED
    activations = await history.activations()
    assert [(a.version, a.activated_by) for a in activations] == [
        ("v1", "admin-li"),
        ("v2", "admin-wang"),
        ("v1", "system"),
    ]
    assert activations[0].reason.startswith("complaint from the court")
    assert [v.version for v in await history.versions()] == ["v2", "v1"]  # nothing edited, nothing deleted
    assert (await history.get("v2")).policy.class_of(CASE_HANDLER) is PUBLIC


async def test_a_whole_document_is_imported_with_its_diff_against_the_active_version(history: PolicyHistory) -> None:
    await history.seed(load_policy(), "system", "initial")
    text = default_policy_path().read_text(encoding="utf-8").replace('case_handler = "SHARED"', 'case_handler = "PUBLIC"')
    v2 = await history.import_text(text, "admin", "new district policy")
    assert v2.version == "v2" and v2.policy.version == "v2" and v2.parent == 1
    assert v2.changes == ["fields.penalties.case_handler: SHARED -> PUBLIC"]
    with pytest.raises(PolicyChangeError, match="nothing changes"):
        await history.import_text(text, "admin", "same again")


async def test_concurrent_writers_number_versions_without_gaps_or_clashes(store_url: str) -> None:
    stores = [await Store.open(store_url) for _ in range(2)]
    try:
        await PolicyHistory(stores[0]).seed(load_policy(), "system", "initial")
        fields = list(FAMILIES["licenses"].field_names)[:6]
        await asyncio.gather(
            *(
                PolicyHistory(stores[i % 2]).change([SetFieldClass("licenses", name, SHARED)], f"admin-{i}", "narrow")
                for i, name in enumerate(fields)
            )
        )
        versions = await PolicyHistory(stores[1]).versions()
        assert [v.number for v in versions] == list(range(len(fields) + 1, 0, -1))
        final = (await PolicyHistory(stores[0]).active()).policy
        assert all(final.class_of(("licenses", name)) is SHARED for name in fields)
    finally:
        for store in stores:
            await store.close()


# --- processes follow the active version ----------------------------------------------------------


def _public_fields(schema: Any, type_name: str = "AdministrativePenalty") -> set[str]:
    result = schema.execute_sync(f'{{ __type(name: "{type_name}") {{ fields {{ name }} }} }}')
    assert not result.errors, result.errors
    return {f["name"] for f in result.data["__type"]["fields"]}


async def _eventually(check: Callable[[], Any], seconds: float = 2.5) -> float:
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, "not within the time allowed"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_another_process_follows_an_activation_within_a_second(store_url: str) -> None:
    admin_store, hub_store = await Store.open(store_url), await Store.open(store_url)
    resolvers = HubResolvers()
    active = await ActivePolicy.open(
        PolicyHistory(hub_store), lambda p: public_contract(p, resolvers), seed=load_policy(), seed_reason="initial"
    )
    try:
        assert active.version == "v1" and "caseHandler" not in _public_fields(active.public_schema)
        schema_v1 = active.public_schema
        assert not await active.refresh() and active.public_schema is schema_v1  # rebuilt only on a change
        seen: list[str] = []
        active.subscribe(lambda state: seen.append(state.version))
        feed = ChangeFeed(hub_store)
        active.follow(feed)
        await feed.start()
        admin = PolicyHistory(admin_store)
        await admin.change([MAKE_CASE_HANDLER_PUBLIC], "admin", "open data")

        async def on_v2() -> bool:
            return active.version == "v2"

        await _eventually(on_v2)
        assert "caseHandler" in _public_fields(active.public_schema)
        await admin.activate("v1", "admin", "back")

        async def on_v1() -> bool:
            return active.version == "v1"

        await _eventually(on_v1)
        assert "caseHandler" not in _public_fields(active.public_schema)
        assert seen == ["v2", "v1"]
    finally:
        await feed.stop()
        await admin_store.close()
        await hub_store.close()


async def test_two_hub_runtimes_on_one_store_follow_the_same_activation(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    first = await HubRuntime.open(settings)
    second = await HubRuntime.open(settings)
    try:
        assert first.policy.version == second.policy.version == "v1"
        assert (await first.policy_history.active()).reason == "initial policy from default.toml"
        await first.policy_history.change([MAKE_CASE_HANDLER_PUBLIC], "admin", "open data")
        assert await first.apply_activation() == "v2"  # at once, in the process that activated
        assert first.policy.version == "v2" and "caseHandler" in _public_fields(first.public_schema)
        public = Principal.public(first.policy.public_scope)
        assert first.request_context(public, public_endpoint=True).policy.version == "v2"

        async def second_follows() -> bool:
            return second.policy.version == "v2"

        await _eventually(second_follows)
        assert "caseHandler" in _public_fields(second.public_schema)
    finally:
        await first.close()
        await second.close()
    third = await HubRuntime.open(settings)  # a restart keeps the store's version, not the file's
    try:
        assert third.policy.version == "v2" and third.policy.class_of(CASE_HANDLER) is PUBLIC
    finally:
        await third.close()


# --- the CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("XINLIAN_DATABASE_URL", "XINLIAN_POLICY", "XINLIAN_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "data"

    async def create() -> None:  # the store a started hub leaves (the CLI never creates one)
        await (await Store.open(f"sqlite+aiosqlite:///{directory / 'hub.db'}")).close()

    asyncio.run(create())
    return directory


def _policy(data_dir: Path, *args: str) -> int:
    return cli_main(["policy", *args, "--data-dir", str(data_dir)])


def _audit_tail(data_dir: Path, n: int = 50) -> list[Any]:
    async def tail() -> list[Any]:
        store = Store(f"sqlite+aiosqlite:///{data_dir / 'hub.db'}")
        try:
            return [stored.entry for stored in await AuditTrail(store).tail(n)]
        finally:
            await store.close()

    return asyncio.run(tail())


def test_cli_changes_classes_and_audits_each_change(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _policy(data_dir, "set-class", "penalties", "case_handler", "public", "--reason", "open data", "--by", "admin-wang",
                   "--confirm-widening") == 0  # SHARED -> PUBLIC widens: confirmed (issue 9)
    out = capsys.readouterr().out
    assert "v2 stored and active" in out and "fields.penalties.case_handler: SHARED -> PUBLIC" in out

    assert _policy(data_dir, "list", "--json") == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(v["version"], v["active"], v["created_by"]) for v in listed] == [
        ("v2", True, "admin-wang"),
        ("v1", False, "system"),
    ]
    assert listed[1]["reason"] == "initial policy from default.toml"

    (entry,) = _audit_tail(data_dir)
    assert (entry.endpoint, entry.client_id, entry.client_kind, entry.outcome) == ("cli", "admin-wang", "admin", "ok")
    assert entry.policy_version == "v2"
    assert entry.detail == {
        "action": "policy.set-class",
        "version": "v2",
        "activated": True,
        "changes": ["fields.penalties.case_handler: SHARED -> PUBLIC"],
        "reason": "open data",
        "warning": "widens disclosure: penalties.case_handler: SHARED -> PUBLIC",
    }


def test_cli_overrides_masks_scopes_activation_and_diff(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _policy(data_dir, "set-class", "tax_credit", "tax_paid", "AUTHORIZED", "--kind", "agency", "--reason", "r") == 0
    assert _policy(data_dir, "clear-override", "tax_credit", "tax_paid", "--kind", "agency", "--reason", "r") == 0
    assert _policy(data_dir, "set-mask", "tax_credit", "tax_paid", "AUTHORIZED", "none", "--reason", "r", "--no-activate") == 0
    out = capsys.readouterr().out
    assert "v4 stored, not active (v3 stays in force)" in out
    assert _policy(data_dir, "set-scope", "credit:x", "PUBLIC,SHARED", "--reason", "a new scope", "--confirm-widening") == 0
    assert _policy(data_dir, "diff", "v1", "v5") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "scopes.credit:x: (none) -> PUBLIC, SHARED"
    assert _policy(data_dir, "activate", "v4", "--reason", "masks off after review", "--by", "admin-li") == 0
    capsys.readouterr()
    assert _policy(data_dir, "show", "--format", "json") == 0  # the active version
    v4 = json.loads(capsys.readouterr().out)
    assert v4["version"] == "v4" and v4["active"] and v4["parent"] == "v3"
    assert v4["changes"] == ["masks.tax_credit.tax_paid.AUTHORIZED: round:10 -> (none)"]
    assert "tax_credit" not in v4["document"]["masks"]
    assert _policy(data_dir, "activations", "--json") == 0
    activations = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [a["version"] for a in activations] == ["v4", "v5", "v3", "v2", "v1"]
    actions = [(e.detail["action"], e.policy_version) for e in _audit_tail(data_dir)]
    assert actions == [
        ("policy.set-class", "v2"),
        ("policy.clear-override", "v3"),
        ("policy.set-mask", "v3"),
        ("policy.set-scope", "v5"),
        ("policy.activate", "v4"),
    ]


def test_cli_show_prints_an_importable_policy_file(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _policy(data_dir, "show") == 2  # reading seeds nothing: the store is still empty
    assert "no policy version yet" in capsys.readouterr().err
    assert _policy(data_dir, "set-class", "honors", "valid_to", "SHARED", "--reason", "r") == 0
    capsys.readouterr()
    assert _policy(data_dir, "show", "v2") == 0
    text = capsys.readouterr().out
    assert text.startswith("# Xinlian disclosure policy v2 (active)")
    assert 'version = "v2"' in text and "honors.valid_to: PUBLIC -> SHARED" in text
    assert _policy(data_dir, "show", "v2", "--format", "json") == 0
    assert policy_document(parse_policy_text(text, "v2")) == json.loads(capsys.readouterr().out)["document"]
    edited = tmp_path / "edited.toml"
    edited.write_text(text.replace('valid_to = "SHARED"', 'valid_to = "PUBLIC"'), encoding="utf-8")
    assert _policy(data_dir, "import", str(edited), "--reason", "back to public", "--by", "admin-zhao",
                   "--confirm-widening") == 0  # SHARED -> PUBLIC widens
    out = capsys.readouterr().out
    assert "v3 stored and active (from v2)" in out and "fields.honors.valid_to: SHARED -> PUBLIC" in out
    assert _audit_tail(data_dir)[-1].detail["action"] == "policy.import"


@pytest.mark.parametrize(
    "args, message",
    [
        (["set-class", "penalties", "case_handler", "SHARED", "--reason", "no-op"], "already SHARED"),
        (["set-class", "penalties", "nope", "PUBLIC", "--reason", "r"], "unknown field 'nope'"),
        (["set-class", "penalties", "case_handler", "PUBLIC", "--reason", " "], "needs a reason"),
        (["set-mask", "tax_credit", "tax_paid", "AUTHORIZED", "blur", "--reason", "r"], "unknown mask"),
        (["set-scope", "credit:public", "none", "--reason", "r"], "public scope cannot be removed"),
        (["set-scope", "credit:x", "CONFIDENTIAL", "--reason", "r"], "CONFIDENTIAL"),
        (["activate", "v1", "--reason", "r"], "already active"),
        (["activate", "v9", "--reason", "r"], "no policy version v9"),
        (["show", "v9"], "no policy version 'v9'"),
        (["diff", "v1", "v9"], "no policy version 'v9'"),
        (["import", "/nonexistent/policy.toml", "--reason", "r"], "cannot read"),
    ],
)
def test_cli_refusals_exit_2_with_a_message_and_change_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert _policy(data_dir, "set-class", "honors", "valid_to", "SHARED", "--reason", "set up") == 0
    capsys.readouterr()
    assert _policy(data_dir, "activate", "v1", "--reason", "set up", "--confirm-widening") == 0  # SHARED -> PUBLIC
    capsys.readouterr()
    audited = len(_audit_tail(data_dir))
    assert _policy(data_dir, *args) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.startswith("xinlian policy: ")
    assert _policy(data_dir, "list", "--json") == 0
    assert [json.loads(line)["version"] for line in capsys.readouterr().out.splitlines()] == ["v2", "v1"]
    assert len(_audit_tail(data_dir)) == audited


def test_cli_usage_errors_name_the_classes(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _policy(data_dir, "set-class", "penalties", "case_handler", "EVERYONE", "--reason", "r")
    assert exited.value.code == 2
    assert "PUBLIC" in capsys.readouterr().err


# --- end to end: a running hub follows the store --------------------------------------------------


def _introspected(hub: RunningHub) -> set[str]:
    body = hub.http.post(
        "/public/graphql", json={"query": '{ __type(name: "AdministrativePenalty") { fields { name } } }'}
    ).json()
    return {f["name"] for f in body["data"]["__type"]["fields"]}


def _wait_for(condition: Callable[[], bool], seconds: float = 2.5) -> float:
    return wait_until(condition, seconds, "the running hub following the store")


_history_call = with_policy_history


def test_a_running_hub_follows_the_active_version_without_restart(tmp_path: Path) -> None:
    rates = RateRules(public_ip="10000/minute")
    with running_hub(tmp_path, legal_persons=30, natural_persons=10, rate_limits=rates) as hub:
        url = hub.runtime.settings.database_url
        assert hub.http.get("/").json()["policy_version"] == "v1"
        assert "caseHandler" not in _introspected(hub)

        _history_call(url, lambda h: h.change([MAKE_CASE_HANDLER_PUBLIC], "admin-wang", "open data"))
        _wait_for(lambda: "caseHandler" in _introspected(hub))
        assert hub.http.get("/").json()["policy_version"] == "v2"

        uscc = hub.samples["multi_department_penalties"]
        body = hub.query('query($u: String!) { legalPerson(uscc: $u) { penalties { caseHandler } } }', None, {"u": uscc}).json()
        assert "errors" not in body or all(e["extensions"]["code"] != "GRAPHQL_VALIDATION_FAILED" for e in body["errors"])
        last = _history_call(url, lambda h: AuditTrail(h.store).tail(1))[0].entry
        assert last.endpoint == "/public/graphql" and last.policy_version == "v2"
        assert "penalties.case_handler" not in last.denied

        _history_call(url, lambda h: h.activate("v1", "admin-li", "case handlers are personal data"))
        _wait_for(lambda: "caseHandler" not in _introspected(hub))
        refused = hub.query('query($u: String!) { legalPerson(uscc: $u) { penalties { caseHandler } } }', None, {"u": uscc})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        last = _history_call(url, lambda h: AuditTrail(h.store).tail(1))[0].entry
        assert last.policy_version == "v1"


async def test_the_widening_check_compares_with_the_version_in_force_at_the_write(history: PolicyHistory) -> None:
    """Admin A re-imports v1's document while admin B puts a narrower v2 in force: A's write
    waits for the policy lock, and its widening check must see v2 (issue 9), not the v1 it
    would have read before the lock."""
    store = history.store
    v1 = await history.seed(load_policy(), "system", "initial")
    narrower = SetFieldClass("honors", "valid_to", DisclosureClass.SHARED, None)
    v2 = await history.change([narrower], "admin-b", "valid_to is not for the public", activate=False)
    admin_a = PolicyOperations(store, "admin-a")
    v1_text = tomli_w.dumps(v1.document)
    async with store.exclusive(POLICY_LOCK) as conn:  # admin B holds the lock, activating v2
        importing = asyncio.create_task(admin_a.import_policy(v1_text, "re-apply the file"))
        if store.dialect == "postgresql":  # A's write is queued behind the lock: a condition to wait on
            async with store.engine.connect() as probe:
                for _ in range(200):
                    waiting = (await probe.execute(sql_text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))).scalar()
                    await probe.rollback()
                    if waiting:
                        break
                    await asyncio.sleep(0.02)
                assert waiting, "admin A's write never queued behind the policy lock"
        else:
            await asyncio.sleep(0.3)  # SQLite shows no waiter; the outcome below does not depend on it
        await PolicyHistory._insert_activation(conn, v2.number, "admin-b", "narrow")
    with pytest.raises(AdminInputError, match="honors.valid_to: SHARED -> PUBLIC"):
        await importing
    assert (await history.active()).version == "v2"
    assert [v.version for v in await history.versions()] == ["v2", "v1"]  # nothing stored
    confirmed = await admin_a.import_policy(v1_text, "re-apply the file", confirm_widening=True)
    assert confirmed.active and admin_a.actions[-1]["warning"] == "widens disclosure: honors.valid_to: SHARED -> PUBLIC"
