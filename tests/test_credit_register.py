"""Findings and listings in the hub store: every transition one transaction, serialised per subject.

Each test runs on the embedded SQLite store and on a real PostgreSQL server; the concurrency
tests run on PostgreSQL, where transactions really overlap.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import AsyncIterator

import pytest
from sqlalchemy import func, select

from xinlian.hub.credit.model import CreditForbidden, CreditInputError, RecordRef
from xinlian.hub.credit.register import EVENTS, FINDINGS, LISTINGS, CreditRegister
from xinlian.hub.credit.standing import CreditStanding
from xinlian.hub.store import Store
from xinlian.policies.credit import ListRule, standard_credit_rules

RULES = standard_credit_rules()
TODAY = dt.date(2026, 12, 3)
FIRM = "91110000600037341L"
OTHER = "91310115MA1K3BTP2B"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(store_url)
    try:
        yield opened
    finally:
        await opened.close()


async def serious(register: CreditRegister, subject: str = FIRM, decided_on: dt.date = dt.date(2026, 1, 15),
                  department: str = "market", basis: str = "market-serious", facts: str = "严重违法") -> object:
    return await register.record_finding(
        RULES, subject=subject, basis=basis, facts=facts, legal_basis="《市场监督管理严重违法失信名单管理办法》第二条",
        records=[RecordRef("penalties", "新市监罚〔2026〕1号")], department=department, decided_on=decided_on,
        measures=["S01"], by="demo-market", today=TODAY, subject_name="某公司",
    )


async def counts(store: Store) -> tuple[int, int, int]:
    async with store.session() as session:
        found = [int(await session.scalar(select(func.count()).select_from(t)) or 0) for t in (FINDINGS, LISTINGS, EVENTS)]
    return found[0], found[1], found[2]


async def test_a_serious_finding_blacklists_the_subject_until_the_end_its_basis_sets(store: Store) -> None:
    register = CreditRegister(store)
    outcome = await serious(register)
    assert outcome.finding.severity == "serious" and outcome.finding.records == (RecordRef("penalties", "新市监罚〔2026〕1号"),)
    listing = outcome.listing
    assert listing is not None
    assert (listing.list, listing.basis, listing.listed_on, listing.ends_on) == ("black", "market-serious", dt.date(2026, 1, 15), dt.date(2029, 1, 15))
    assert listing.finding_id == outcome.finding.id and listing.department == "market"
    assert [t.action for t in await register.history(listing.id)] == ["listed"]
    # a second serious finding on the same basis extends the one listing
    later = await serious(register, decided_on=dt.date(2026, 6, 1))
    assert later.listing is not None and later.listing.id == listing.id and later.listing.ends_on == dt.date(2029, 6, 1)
    assert [t.action for t in await register.history(listing.id)] == ["listed", "extended"]
    assert len(await register.listings(FIRM)) == 1


async def test_a_general_finding_lists_nobody(store: Store) -> None:
    register = CreditRegister(store)
    outcome = await register.record_finding(
        RULES, subject=FIRM, basis="general-dishonesty", facts="一年内多次处罚", legal_basis="办法", records=[],
        department="tax", decided_on=dt.date(2026, 11, 1), measures=[], by="t", today=TODAY,
    )
    assert outcome.listing is None and outcome.finding.severity == "general"
    assert await register.listings(FIRM) == []


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"subject": "91110000600037341N"}, CreditInputError, "neither a valid USCC"),
        ({"basis": "no-such-basis"}, CreditInputError, "basis: unknown 'no-such-basis'"),
        ({"department": "tax"}, CreditForbidden, "basis 'market-serious' is for market, not for department 'tax'"),
        ({"decided_on": TODAY + dt.timedelta(days=1)}, CreditInputError, "in the future"),
        ({"facts": "  "}, CreditInputError, "facts: required"),
        ({"facts": "bad\x00"}, CreditInputError, "U\\+0000 \\(a control character\\)"),
        ({"facts": "假名字\u202e"}, CreditInputError, "bidirectional-text control"),
    ],
)
async def test_refused_input_changes_nothing(store: Store, change: dict[str, object], error: type, message: str) -> None:
    register = CreditRegister(store)
    arguments: dict[str, object] = {"subject": FIRM, "decided_on": dt.date(2026, 1, 15), "department": "market",
                                    "basis": "market-serious", "facts": "严重违法"} | change
    with pytest.raises(error, match=message):
        await serious(register, **arguments)  # type: ignore[arg-type]
    assert await counts(store) == (0, 0, 0)


async def test_unknown_measures_and_records_are_refused(store: Store) -> None:
    register = CreditRegister(store)
    with pytest.raises(CreditInputError, match="measures: unknown S99"):
        await register.record_finding(RULES, subject=FIRM, basis="general-dishonesty", facts="f", legal_basis="l",
                                      records=[], department="market", decided_on=TODAY, measures=["S99"], by="t", today=TODAY)
    with pytest.raises(CreditInputError, match="'registration' is not a family of keyed records"):
        await register.record_finding(RULES, subject=FIRM, basis="general-dishonesty", facts="f", legal_basis="l",
                                      records=[RecordRef("registration", "x")], department="market", decided_on=TODAY,
                                      measures=[], by="t", today=TODAY)
    assert await counts(store) == (0, 0, 0)


async def test_revoking_a_finding_cancels_its_listing_and_only_its_department_may(store: Store) -> None:
    register = CreditRegister(store)
    outcome = await serious(register)
    with pytest.raises(CreditForbidden, match="decided by market, not tax"):
        await register.revoke_finding(RULES, outcome.finding.id, "tax", "wrong", "t", TODAY)
    revoked = await register.revoke_finding(RULES, outcome.finding.id, "market", "复议撤销", "demo-market", TODAY)
    assert revoked.status == "revoked"
    assert await register.listings(FIRM) == []
    history = await register.history(outcome.listing.id)  # type: ignore[union-attr]
    assert [(t.action, t.by) for t in history] == [("listed", "demo-market"), ("cancelled", "demo-market")]
    assert "finding" in history[-1].reason and "复议撤销" in history[-1].reason
    with pytest.raises(CreditInputError, match="already revoked"):
        await register.revoke_finding(RULES, outcome.finding.id, None, "again", "t", TODAY)


async def test_revoking_one_of_two_findings_amends_the_listing_to_the_other(store: Store) -> None:
    register = CreditRegister(store)
    first = await serious(register, decided_on=dt.date(2026, 1, 15))
    second = await serious(register, decided_on=dt.date(2026, 6, 1))  # extends the listing to 2029-06-01
    listing_id = first.listing.id  # type: ignore[union-attr]
    await register.revoke_finding(RULES, second.finding.id, "market", "复议撤销", "t", TODAY)  # the extension is taken back
    (listing,) = await register.listings(FIRM)
    assert (listing.id, listing.listed_on, listing.ends_on) == (listing_id, dt.date(2026, 1, 15), dt.date(2029, 1, 15))
    await register.revoke_finding(RULES, first.finding.id, "market", "复议撤销", "t", TODAY)  # the last one: cancelled
    assert await register.listings(FIRM) == []
    assert [t.action for t in await register.history(listing_id)] == ["listed", "extended", "amended", "cancelled"]
    third = await serious(register, decided_on=dt.date(2026, 3, 1))
    fourth = await serious(register, subject=FIRM, decided_on=dt.date(2026, 4, 1))
    await register.revoke_finding(RULES, third.finding.id, "market", "撤销", "t", TODAY)  # the earlier one goes
    (listing,) = await register.listings(FIRM)
    assert (listing.listed_on, listing.ends_on, listing.finding_id) == (dt.date(2026, 4, 1), dt.date(2029, 4, 1), fourth.finding.id)


async def test_a_listing_ends_early_only_by_cancellation_or_repair_and_by_whom_the_policy_says(store: Store) -> None:
    register = CreditRegister(store)
    listing = (await serious(register)).listing
    assert listing is not None
    courts = RULES.access.cancel_departments
    with pytest.raises(CreditInputError, match="only by cancelled or repaired"):
        await register.end_listing(listing.id, "expired", "x", "t", TODAY, "courts", courts)
    with pytest.raises(CreditForbidden, match="only courts may end a listing early"):
        await register.end_listing(listing.id, "cancelled", "x", "t", TODAY, "market", courts)
    ended = await register.end_listing(listing.id, "cancelled", "（2026）内0102执异12号", "demo-court", TODAY, "courts", courts)
    assert (ended.status, ended.ended_on) == ("cancelled", TODAY)
    with pytest.raises(CreditInputError, match="is cancelled: nothing to end"):
        await register.end_listing(listing.id, "repaired", "x", "t", TODAY, None, courts)


async def test_expiry_is_recorded_the_day_after_the_last_day(store: Store) -> None:
    register = CreditRegister(store)
    ends_today = (await serious(register, decided_on=dt.date(2023, 12, 3))).listing  # last day 2026-12-03
    ended_yesterday = (await serious(register, subject=OTHER, decided_on=dt.date(2023, 12, 2))).listing  # last day 2026-12-02
    assert ends_today is not None and ended_yesterday is not None
    assert ends_today.ends_on == TODAY and ended_yesterday.ends_on == TODAY - dt.timedelta(days=1)
    assert await register.expire_due(TODAY) == 1
    expired = await register.listing(ended_yesterday.id)
    assert expired is not None and (expired.status, expired.ended_on) == ("expired", TODAY)
    assert (await register.listing(ends_today.id)).status == "listed"  # type: ignore[union-attr]
    assert await register.expire_due(TODAY) == 0
    page, more = await register.page("black", TODAY, 10, None)
    assert [x.id for x in page] == [ends_today.id] and not more
    assert await register.page("black", TODAY + dt.timedelta(days=1), 10, None) == ([], False)  # over the next day, sweep or not


async def test_red_listing_is_refused_while_blacklisted_and_a_blacklisting_ends_it(store: Store) -> None:
    register = CreditRegister(store)
    red = await register.list_on_red_list(RULES, subject=OTHER, basis="honour-red-list", reason="诚信示范", department="market",
                                          listed_on=dt.date(2026, 11, 1), by="t", today=TODAY)
    assert (red.list, red.ends_on) == ("red", dt.date(2028, 11, 1))
    with pytest.raises(CreditInputError, match="is not a red-list basis"):
        await register.list_on_red_list(RULES, subject=OTHER, basis="market-serious", reason="x", department="market",
                                        listed_on=TODAY, by="t", today=TODAY)
    await serious(register, subject=OTHER, decided_on=dt.date(2026, 11, 20))
    assert [x.list for x in await register.listings(OTHER)] == ["black"]
    assert [t.action for t in await register.history(red.id)] == ["listed", "delisted"]
    with pytest.raises(CreditInputError, match="is on the blacklist"):
        await register.list_on_red_list(RULES, subject=OTHER, basis="honour-red-list", reason="x", department="market",
                                        listed_on=TODAY, by="t", today=TODAY)


async def test_a_rule_lists_while_it_holds_and_delists_when_it_stops(store: Store) -> None:
    register = CreditRegister(store)
    rule = RULES.list_rule("judgment-debtor")
    assert isinstance(rule, ListRule)
    assert await register.apply_rule(rule, FIRM, True, ["judgment_debtor_records:（2025）内0102执2号"], TODAY, "schedule") == "listed"
    assert await register.apply_rule(rule, FIRM, True, ["judgment_debtor_records:（2025）内0102执2号"], TODAY, "schedule") is None
    (listing,) = await register.listings(FIRM)
    assert (listing.rule, listing.ends_on, listing.department) == ("judgment-debtor", None, "courts")
    assert listing.source_ref == "judgment_debtor_records:（2025）内0102执2号"
    assert await register.apply_rule(rule, FIRM, False, [], TODAY, "schedule") == "delisted"
    assert await register.listings(FIRM) == []
    assert [t.action for t in await register.history(listing.id)] == ["listed", "delisted"]


async def test_a_court_cancellation_is_not_undone_by_the_rule_while_the_same_records_stand(store: Store) -> None:
    register = CreditRegister(store)
    rule = RULES.list_rule("judgment-debtor")
    assert rule is not None
    refs = ["judgment_debtor_records:（2025）内0102执2号"]
    assert await register.apply_rule(rule, FIRM, True, refs, TODAY, "schedule") == "listed"
    (listing,) = await register.listings(FIRM)
    await register.end_listing(listing.id, "cancelled", "（2026）内0102执异12号", "demo-court", TODAY, "courts", ["courts"])
    assert await register.apply_rule(rule, FIRM, True, refs, TODAY, "schedule") is None  # the court's word stands
    assert await register.listings(FIRM) == []
    newer = ["judgment_debtor_records:（2026）内0102执9号"]  # a new case: listed again
    assert await register.apply_rule(rule, FIRM, True, newer, TODAY, "schedule") == "listed"


async def test_the_standing_follows_the_store(store: Store) -> None:
    register = CreditRegister(store)
    standing = CreditStanding(store, interval=0.0)
    await standing.fresh()
    assert standing.listings(FIRM, TODAY) == ()
    await serious(register)
    await standing.fresh()  # interval 0: it looks at the change counters and reloads because they moved
    (current,) = standing.listings(FIRM, TODAY)
    assert current.basis == "market-serious"
    assert standing.listings(FIRM, dt.date(2029, 1, 15)) != () and standing.listings(FIRM, dt.date(2029, 1, 16)) == ()  # dates apply when read
    reloads = standing.reloads
    await standing.fresh()
    assert standing.reloads == reloads  # nothing moved: no reload


# ---- concurrency (PostgreSQL) ---------------------------------------------------------------


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(postgres_url)
    try:
        yield opened
    finally:
        await opened.close()


async def test_concurrent_serious_findings_on_one_subject_make_one_listing(pg_store: Store) -> None:
    """Clerks record the same serious basis on a subject at once: each finding is kept, the subject
    is listed once, and every later finding extends or confirms that one listing."""
    register = CreditRegister(pg_store)
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=10 * i) for i in range(12)]
    for subject in (FIRM, OTHER, "91350100M000100Y43"):
        outcomes = await asyncio.gather(
            *(serious(register, subject=subject, decided_on=d, facts=f"违法{i}") for i, d in enumerate(days))
        )
        assert len({o.listing.id for o in outcomes}) == 1, subject  # type: ignore[union-attr]
        (listing,) = await register.listings(subject)
        assert listing.ends_on == RULES.bases["market-serious"].ends_on(max(days))
        actions = [t.action for t in await register.history(listing.id)]
        assert actions[0] == "listed" and len(actions) == len(days) and set(actions[1:]) <= {"extended", "confirmed"}
    assert await counts(pg_store) == (36, 3, 36)


async def test_a_concurrent_red_listing_and_blacklisting_never_leave_both(pg_store: Store) -> None:
    """The red list and the blacklist exclude each other whatever the order two departments act in."""
    register = CreditRegister(pg_store)
    for round_ in range(6):
        subject = ["91350100M000100Y43", OTHER, FIRM][round_ % 3]

        async def red() -> object:
            try:
                return await register.list_on_red_list(RULES, subject=subject, basis="honour-red-list", reason="示范",
                                                       department="market", listed_on=TODAY, by="t", today=TODAY)
            except CreditInputError as exc:
                return exc

        await asyncio.gather(red(), serious(register, subject=subject, decided_on=TODAY))
        current = await register.listings(subject)
        assert [x.list for x in current] == ["black"], f"round {round_}: {current}"


async def test_a_changed_rating_model_needs_a_new_model_version(store: Store) -> None:
    """Snapshots name their model by version: a changed threshold under the same version is refused."""
    from xinlian.hub.admin.policy_text import policy_toml
    from xinlian.hub.governance.policy_versions import PolicyHistory
    from xinlian.policies import load_policy
    from xinlian.policies.changes import PolicyChangeError
    from xinlian.policies.loader import policy_document

    history = PolicyHistory(store)
    await history.seed(load_policy(), "t", "seed")
    document = policy_document(load_policy())
    document["credit"]["rating"]["thresholds"]["A"] = 86.0
    with pytest.raises(PolicyChangeError, match="the rating model changed but kept its version 'xc-2026.1'"):
        await history.import_text(policy_toml(document), "t", "stricter A")
    document["credit"]["rating"]["version"] = "xc-2026.2"
    stored = await history.import_text(policy_toml(document), "t", "stricter A, model xc-2026.2")
    assert stored.policy.credit.rating.version == "xc-2026.2" and stored.policy.credit.rating.level_for(85.5) == "BBB"


def test_key_pages_from_sources_of_different_page_sizes_merge_without_skipping() -> None:
    """A registry answering 100 keys a page and a court capping its pages at 30 (and sending a key
    that is no valid identifier): walking the merged pages sees every valid key once."""
    from xinlian.hub.credit.records import merge_key_pages
    from xinlian.schema.identifiers import id_check_char

    def resident(n: int) -> str:
        body = f"15010219900101{n:03d}"
        return body + id_check_char(body)

    court = sorted({resident(n) for n in range(120)} | {"110105194912310021"})  # the last: a wrong check digit
    registry = sorted({FIRM, OTHER, "91350100M000100Y43"})

    def page(source: list[str], after: str, size: int) -> list[str]:
        return [k for k in source if k > after][:size]

    seen: list[str] = []
    after = ""
    dropped_total = 0
    for _ in range(100):  # bounded
        valid, merged, dropped = merge_key_pages([page(registry, after, 100), page(court, after, 30)], after, 100)
        dropped_total += dropped
        if not merged:
            break
        seen.extend(valid)
        after = merged[-1]
    expected = sorted(set(registry) | {k for k in court if k != "110105194912310021"})
    assert seen == expected and dropped_total == 1


async def test_the_schedule_repeats_the_newest_run_and_waits_for_the_first(store: Store) -> None:
    from sqlalchemy import insert

    from xinlian.hub.credit.district import JOBS
    from xinlian.hub.credit.governance import CreditGovernance

    def no_context(principal: object) -> object:
        raise AssertionError("the schedule check reads no department")

    credit = CreditGovernance(store, no_context)  # type: ignore[arg-type]
    assert not await credit._run_due(24)  # no run ever: the first is an operator's
    started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=23)
    async with store.session() as session:
        await session.execute(insert(JOBS).values(status="done", model_version="m", cursor="", rated=1, failed=0,
                                                  started_at=started, finished_at=started, by="t", note=""))
        await session.commit()
    assert not await credit._run_due(24) and await credit._run_due(22)
