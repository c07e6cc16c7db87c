"""Credit governance from the command line, as the credit office (信用办) runs it: the measures
catalogue, findings, the red and black lists, district rating runs with their progress bar,
ratings explained, and supervision plans exported to CSV and XLSX — on the demo district's
store and connectors (the court's REST service running), every change audited as a CLI entry.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import openpyxl
import pytest
from sqlalchemy import func, select, update

from xinlian.hub.audit import AuditTrail
from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.cli import main
from xinlian.hub.cli.demo import ensure_demo_clients
from xinlian.hub.config import Settings
from xinlian.hub.credit.district import JOBS, DistrictRun
from xinlian.hub.credit.ratings import RATINGS, RatingRegister
from xinlian.hub.credit.register import CreditRegister
from xinlian.hub.credit.standing import CreditStanding
from xinlian.hub.demo.generator import build_demo_district
from xinlian.hub.demo.services import start_demo_services
from xinlian.hub.store import Store
from xinlian.policies.credit import standard_credit_rules

LEGAL_PERSONS = 120
HEADER = ["统一社会信用代码", "主体名称", "行业", "信用等级", "评分", "监管类别", "监管方式", "本期应检查次数", "评价日期", "模型版本"]
CHINA = dt.timezone(dt.timedelta(hours=8))


def today() -> dt.date:
    return dt.datetime.now(CHINA).date()


@dataclass
class District:
    data_dir: Path
    samples: dict[str, str]


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Iterator[District]:
    """The demo district's departments, store and clients, with the court's API running — what
    `xinlian demo --no-serve` leaves, without the demo's seeding."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("XINLIAN_DATABASE_URL", "XINLIAN_DATA_DIR", "XINLIAN_POLICY"):
            env.delenv(name, raising=False)
        directory = tmp_path_factory.mktemp("credit-cli") / "data"
        directory.mkdir()
        built = build_demo_district(directory, legal_persons=LEGAL_PERSONS, natural_persons=30)
        asyncio.run(ensure_demo_clients(Settings.from_env(directory), dict(built.samples)))
        services = start_demo_services(directory)
        assert services.court_url, "the demo's court is a REST service"
        try:
            yield District(directory, dict(built.samples))
        finally:
            services.stop()


def run(district: District, *argv: str) -> int:
    return main([*argv, "--data-dir", str(district.data_dir)])


def with_store(district: District, use: Callable[[Store], Any]) -> Any:
    async def go() -> Any:
        store = await Store.open(Settings.from_env(district.data_dir).database_url)
        try:
            return await use(store)
        finally:
            await store.close()

    return asyncio.run(go())


def entries(district: District) -> list[AuditEntry]:
    async def tail(store: Store) -> list[AuditEntry]:
        return [s.entry for s in await AuditTrail(store).tail(2000) if s.entry is not None]

    return list(with_store(district, tail))


def cli_entries(district: District) -> list[AuditEntry]:
    return [e for e in entries(district) if e.endpoint == "cli"]


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def out(capsys: pytest.CaptureFixture[str], district: District, *argv: str) -> str:
    """Run a command that must succeed; its standard output."""
    capsys.readouterr()
    code = run(district, *argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def refused(capsys: pytest.CaptureFixture[str], district: District, *argv: str) -> str:
    """Run a command that must be refused (exit 2, nothing on stdout); its standard error."""
    capsys.readouterr()
    code = run(district, *argv)
    captured = capsys.readouterr()
    assert code == 2, (captured.out, captured.err)
    assert captured.out == ""
    return captured.err


@pytest.fixture(scope="module")
def rated(district: District) -> District:
    """The district rated once (list rules applied): what later runs and plans start from."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("XINLIAN_DATABASE_URL", "XINLIAN_DATA_DIR", "XINLIAN_POLICY"):
            env.delenv(name, raising=False)
        assert run(district, "ratings", "run") == 0
    return district


@pytest.fixture(scope="module")
def fresh(rated: District) -> Callable[[], str]:
    """Rated enterprises on no list, with no finding and no named sample: each handed out once."""

    async def candidates(store: Store) -> list[str]:
        register = CreditRegister(store)
        found = {f.subject for f in await register.findings(limit=10_000)}
        pool = []
        for rating in await RatingRegister(store).current_all():
            if rating.supervision_class != "A" or rating.subject in found or rating.subject in rated.samples.values():
                continue
            if not await register.listings(rating.subject, include_ended=True):
                pool.append(rating.subject)
        return pool

    pool = with_store(rated, candidates)
    assert len(pool) > 10
    return pool.pop


def record_argv(subject: str, decided: dt.date, *extra: str) -> list[str]:
    return ["findings", "record", subject, "--basis", "market-serious", "--department", "market",
            "--facts", "以虚假材料骗取行政许可", "--legal-basis", "《中华人民共和国行政许可法》第七十九条",
            "--decided-on", decided.isoformat(), *extra]


def decision_day(days_ago: int) -> dt.date:
    day = today() - dt.timedelta(days=days_ago)
    return day.replace(day=min(day.day, 28))


def record(capsys: pytest.CaptureFixture[str], district: District, subject: str, days_ago: int = 15, *extra: str) -> tuple[int, int]:
    """Record a serious finding from the CLI; (finding id, listing id) from what it printed."""
    lines = out(capsys, district, *record_argv(subject, decision_day(days_ago), *extra)).splitlines()
    finding = int(lines[0].split()[1])
    listing = int(lines[1].split()[1].rstrip(":"))
    return finding, listing


def listing_row(capsys: pytest.CaptureFixture[str], district: District, listing_id: int, list_name: str = "black") -> dict[str, Any] | None:
    rows = json_lines(out(capsys, district, "lists", "show", list_name, "--first", "100", "--json"))
    return next((r for r in rows if r["id"] == listing_id), None)


# ---- the measures catalogue ---------------------------------------------------------------------


def test_measures_list(district: District, capsys: pytest.CaptureFixture[str]) -> None:
    before = len(cli_entries(district))
    rows = json_lines(out(capsys, district, "measures", "list", "--json"))
    assert [r["code"] for r in rows] == [m.code for m in standard_credit_rules().measures]
    assert len(rows) == 15
    s08 = next(r for r in rows if r["code"] == "S08")
    assert s08 == {
        "code": "S08", "effect": "PROHIBITED", "name": "限制担任国有企业法定代表人、董事、监事", "contexts": ["public-office"],
        "on": ["blacklist:judgment-debtor"], "department": "新城区人民法院", "basis": "《关于对失信被执行人实施联合惩戒的合作备忘录》",
    }
    bidding = out(capsys, district, "measures", "list", "--context", "bidding")
    codes = [line.split()[0] for line in bidding.splitlines()[1:]]
    assert bidding.splitlines()[0].split()[:3] == ["CODE", "EFFECT", "NAME"]
    assert codes == ["S02", "S09", "R02", "R03"]
    err = refused(capsys, district, "measures", "list", "--context", "mining")
    assert err.startswith("xinlian measures: unknown context 'mining'") and "bidding" in err and "lending" in err
    assert len(cli_entries(district)) == before, "reading writes no audit entry"


# ---- findings ------------------------------------------------------------------------------------------


def test_record_list_and_revoke_a_finding(rated: District, fresh: Callable[[], str], capsys: pytest.CaptureFixture[str]) -> None:
    subject = fresh()
    decided = decision_day(15)
    ends = decided.replace(year=decided.year + 3)  # the corresponding day three years on (as the publicity window)
    argv = record_argv(subject, decided, "--measure", "S01", "--measure", "S02", "--by", "ops-li")
    fake = record_argv(subject, decided, "--record", "penalties:新市监罚〔2026〕0000号", "--by", "ops-li")
    assert "is not a record of" in refused(capsys, rated, *fake)  # a record it rests on is checked at its source
    printed = out(capsys, rated, *argv).splitlines()
    finding_id, listing_id = int(printed[0].split()[1]), int(printed[1].split()[1].rstrip(":"))
    assert printed == [
        f"finding {finding_id} recorded: {subject} serious (market-serious)",
        f"listing {listing_id}: 严重失信主体名单 {decided} – {ends}",
    ]
    [row] = json_lines(out(capsys, rated, "findings", "list", "--subject", subject, "--json"))
    assert row == {
        "id": finding_id, "subject": subject, "name": row["name"], "severity": "serious", "basis": "market-serious",
        "department": "market", "decided_on": decided.isoformat(), "until": ends.isoformat(), "status": "in_force",
        "facts": "以虚假材料骗取行政许可",
    }
    assert finding_id in {r["id"] for r in json_lines(out(capsys, rated, "findings", "list", "--department", "market", "--json"))}
    listed = listing_row(capsys, rated, listing_id)
    assert listed is not None and (listed["subject"], listed["basis"], listed["listed_on"], listed["ends_on"]) == (
        subject, "market-serious", decided.isoformat(), ends.isoformat())

    assert out(capsys, rated, "findings", "revoke", str(finding_id), "--reason", "行政复议决定撤销", "--by", "ops-zhao").strip() == (
        f"finding {finding_id} revoked; its listing (if any) cancelled")
    assert json_lines(out(capsys, rated, "findings", "list", "--subject", subject, "--json"))[0]["status"] == "revoked"
    assert listing_row(capsys, rated, listing_id) is None
    history = out(capsys, rated, "lists", "history", str(listing_id)).splitlines()
    assert history[0].startswith(f"listing {listing_id}: {subject}") and history[0].endswith("(market-serious), cancelled")
    assert [line.split()[1:3] for line in history[2:]] == [["listed", "ops-li"], ["cancelled", "ops-zhao"]]
    assert "行政复议决定撤销" in history[3]

    entries = cli_entries(rated)[-2:]
    assert [(e.client_id, e.client_kind, e.subjects, e.outcome) for e in entries] == [
        ("ops-li", "admin", [subject], "ok"), ("ops-zhao", "admin", [subject], "ok")]
    assert [e.detail for e in entries] == [
        {"action": "recordFinding", "subject": subject, "finding": finding_id, "basis": "market-serious",
         "department": "market", "listing": listing_id},
        {"action": "revokeFinding", "subject": subject, "finding": finding_id, "reason": "行政复议决定撤销"},
    ]
    before = len(cli_entries(rated))
    assert "already revoked" in refused(capsys, rated, "findings", "revoke", str(finding_id), "--reason", "again")
    assert len(cli_entries(rated)) == before


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda argv: [*argv[:-1], (today() + dt.timedelta(days=1)).isoformat()], "in the future"),
        (lambda argv: [a if a != "market" else "tax" for a in argv], "not for department 'tax'"),
        (lambda argv: [a if a != "market-serious" else "honour-red-list" for a in argv], "red-list basis"),
        (lambda argv: [*argv, "--record", "penalties"], "FAMILY:KEY"),
        (lambda argv: [*argv, "--record", "weather:2026-1"], "not a family of keyed records"),
        (lambda argv: [*argv, "--measure", "S99"], "unknown S99"),
        (lambda argv: [a if a != argv[2] else "91110000600037341N" for a in argv], "neither a valid USCC"),
    ],
    ids=["future", "other-department", "red-basis", "record-form", "record-family", "measure", "subject"],
)
def test_a_refused_finding_changes_nothing(
    rated: District, fresh: Callable[[], str], capsys: pytest.CaptureFixture[str], change: Any, message: str
) -> None:
    subject = fresh()
    before = len(cli_entries(rated))
    err = refused(capsys, rated, *change(record_argv(subject, decision_day(3))))
    assert err.startswith("xinlian findings: ") and message in err
    assert json_lines(out(capsys, rated, "findings", "list", "--subject", subject, "--json")) == []
    assert len(cli_entries(rated)) == before


def test_a_finding_recorded_from_the_cli_names_the_subject(
    rated: District, fresh: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    subject = fresh()
    registered = json.loads(out(capsys, rated, "ratings", "show", subject, "--json"))["name"]
    assert registered
    _, listing_id = record(capsys, rated, subject)
    listed = listing_row(capsys, rated, listing_id)
    assert listed is not None and listed["name"] == registered


def test_a_finding_recorded_from_the_cli_re_rates_the_subject(
    rated: District, fresh: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    subject = fresh()
    _, listing_id = record(capsys, rated, subject)
    rating = json.loads(out(capsys, rated, "ratings", "show", subject, "--json"))
    blacklisted = next(i for i in rating["indicators"] if i["name"] == "blacklisted")
    assert (blacklisted["points"], blacklisted["evidence"]) == (-35.0, [f"listing:{listing_id}"])


# ---- the lists -----------------------------------------------------------------------------------------------


def test_show_the_black_and_red_lists(rated: District, capsys: pytest.CaptureFixture[str]) -> None:
    red = json_lines(out(capsys, rated, "lists", "show", "red", "--first", "100", "--json"))
    assert red and {r["status"] for r in red} == {"listed"}
    assert {"a-level-taxpayer", "honours-in-force"} <= {r["basis"] for r in red}
    assert rated.samples["a_level_taxpayer"] in {r["subject"] for r in red if r["basis"] == "a-level-taxpayer"}
    black = json_lines(out(capsys, rated, "lists", "show", "black", "--first", "100", "--json"))
    assert rated.samples["judgment_debtor"] in {r["subject"] for r in black if r["basis"] == "judgment-debtor"}
    assert [r["id"] for r in black] == sorted(r["id"] for r in black)

    first = out(capsys, rated, "lists", "show", "red", "--first", "2").splitlines()
    assert first[0].split() == ["ID", "SUBJECT", "NAME", "BASIS", "DEPARTMENT", "LISTED_ON", "ENDS_ON"]
    assert [int(line.split()[0]) for line in first[1:3]] == [r["id"] for r in red[:2]]
    assert first[3] == f"... more: --after {red[1]['id']}"
    following = json_lines(out(capsys, rated, "lists", "show", "red", "--first", "2", "--after", str(red[1]["id"]), "--json"))
    assert following == red[2:4]
    assert "between 1 and 100" in refused(capsys, rated, "lists", "show", "black", "--first", "0")
    assert "no listing 999999" in refused(capsys, rated, "lists", "history", "999999")


def test_cancel_a_listing(rated: District, fresh: Callable[[], str], capsys: pytest.CaptureFixture[str]) -> None:
    subject = fresh()
    _, listing_id = record(capsys, rated, subject)
    ruling = "（2026）内0102执异21号"
    assert out(capsys, rated, "lists", "cancel", str(listing_id), "--reason", ruling, "--by", "ops-wu").strip() == (
        f"listing {listing_id} cancelled ({subject})")
    assert listing_row(capsys, rated, listing_id) is None
    history = out(capsys, rated, "lists", "history", str(listing_id)).splitlines()
    assert history[0].endswith("cancelled") and history[-1].split()[1:3] == ["cancelled", "ops-wu"] and ruling in history[-1]
    assert cli_entries(rated)[-1].detail == {"action": "cancelListing", "subject": subject, "listing": listing_id, "reason": ruling}
    before = len(cli_entries(rated))
    assert "nothing to end" in refused(capsys, rated, "lists", "cancel", str(listing_id), "--reason", ruling)
    assert len(cli_entries(rated)) == before


def test_record_expiries(rated: District, fresh: Callable[[], str], capsys: pytest.CaptureFixture[str]) -> None:
    subject = fresh()
    _, listing_id = record(capsys, rated, subject, 38 * 31)  # decided over three years ago
    assert listing_row(capsys, rated, listing_id) is None, "over the day after its end date"
    assert out(capsys, rated, "lists", "history", str(listing_id)).splitlines()[0].endswith(", listed")
    said = out(capsys, rated, "lists", "expire", "--by", "ops-sun").strip()
    count = int(said.split()[0])
    assert count >= 1 and said == f"{count} listing(s) expired"
    history = out(capsys, rated, "lists", "history", str(listing_id)).splitlines()
    assert history[0].endswith(", expired") and history[-1].split()[1:3] == ["expired", "ops-sun"]
    assert cli_entries(rated)[-1].detail == {"action": "expireListings", "expired": count}
    assert out(capsys, rated, "lists", "expire").strip() == "0 listing(s) expired"


# ---- district rating runs -----------------------------------------------------------------------------------


def test_a_run_in_two_parts_rates_the_whole_district(district: District, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run(district, "ratings", "run", "--limit", "50", "--batch", "20", "--by", "ops-li") == 0
    first = capsys.readouterr()
    job_id = int(first.out.split()[1])
    # the run takes the registry's subjects and the natural persons of the list rules' families
    # (the tax bureau's published cases): 50 subjects done, the legal persons among them rated
    head = re.fullmatch(r"job \d+ interrupted: (\d+) rated, 0 failed \(model xc-2026.1\) — stopped after 50 subjects \(limit\)",
                        first.out.strip())
    assert head is not None, first.out
    rated_first = int(head.group(1))
    assert 0 < rated_first <= 50
    bar = re.search(r"\] 50/(\d+) rated (\d+) failed 0", first.err)
    assert bar is not None and int(bar.group(2)) == rated_first and "\r[" in first.err and "#" in first.err
    total = int(bar.group(1))
    assert total >= LEGAL_PERSONS
    jobs = out(capsys, district, "ratings", "jobs").splitlines()
    assert jobs[0].split()[:6] == ["ID", "STATUS", "MODEL", "RATED", "FAILED", "CURSOR"]
    assert jobs[1].split()[:5] == [str(job_id), "interrupted", "xc-2026.1", str(rated_first), "0"]

    assert run(district, "ratings", "run", "--resume", "--by", "ops-li") == 0
    second = capsys.readouterr()
    assert second.out.strip() == f"job {job_id} done: {LEGAL_PERSONS} rated, 0 failed (model xc-2026.1)"
    assert f"[{'#' * 30}] {total}/{total} rated {LEGAL_PERSONS} failed 0" in second.err
    jobs = out(capsys, district, "ratings", "jobs").splitlines()
    assert jobs[1].split()[:5] == [str(job_id), "done", "xc-2026.1", str(LEGAL_PERSONS), "0"]

    async def snapshots(store: Store) -> tuple[int, int]:
        async with store.session() as session:
            rows = (await session.execute(
                select(func.count(), func.count(RATINGS.c.subject.distinct())).where(RATINGS.c.job_id == job_id)
            )).one()
        return int(rows[0]), int(rows[1])

    assert with_store(district, snapshots) == (LEGAL_PERSONS, LEGAL_PERSONS), "each subject once: the resume went on from the cursor"
    runs = [e for e in entries(district) if (e.detail or {}).get("action") == "ratingsRun"][-2:]
    assert {(e.endpoint, e.client_id) for e in runs} == {("/credit/district-run", "ops-li")}
    assert [e.detail for e in runs] == [
        {"action": "ratingsRun", "job": job_id, "status": "interrupted", "rated": rated_first, "failed": 0, "model": "xc-2026.1",
         "note": "stopped after 50 subjects (limit)"},
        {"action": "ratingsRun", "job": job_id, "status": "done", "rated": LEGAL_PERSONS, "failed": 0, "model": "xc-2026.1",
         "note": ""},
    ]


def test_a_second_run_is_refused_while_one_is_running(district: District, capsys: pytest.CaptureFixture[str]) -> None:
    async def start_elsewhere(store: Store) -> int:  # another operator's run, moving right now
        run_ = DistrictRun(store, CreditRegister(store), CreditStanding(store), RatingRegister(store), None)  # type: ignore[arg-type]
        return (await run_.start_job(standard_credit_rules(), "ops-elsewhere", resume=False)).id

    async def set_job(store: Store, **values: Any) -> None:
        async with store.session() as session:
            await session.execute(update(JOBS).where(JOBS.c.id == running).values(**values))
            await session.commit()

    running = with_store(district, start_elsewhere)
    try:
        for argv in (["ratings", "run"], ["ratings", "run", "--resume"]):
            err = refused(capsys, district, *argv)
            assert f"district job {running} is running" in err and "ops-elsewhere" in err
        jobs = out(capsys, district, "ratings", "jobs").splitlines()
        assert jobs[1].split()[:2] == [str(running), "running"]
        # it stopped moving an hour ago (its process died): a resume takes it over
        an_hour_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        with_store(district, lambda store: set_job(store, started_at=an_hour_ago, finished_at=an_hour_ago))
        assert out(capsys, district, "ratings", "run", "--resume", "--by", "ops-li").strip() == (
            f"job {running} done: {LEGAL_PERSONS} rated, 0 failed (model xc-2026.1)")
    finally:  # never leave a `running` job behind for the other tests
        async def settle(store: Store) -> None:
            async with store.session() as session:
                await session.execute(update(JOBS).where(JOBS.c.status == "running").values(status="interrupted"))
                await session.commit()

        with_store(district, settle)


def test_bad_run_options_are_refused(district: District, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--limit", "0"], ["--batch", "0"], ["--batch", "1001"]):
        assert "--limit at least 1, --batch 1 to 1000" in refused(capsys, district, "ratings", "run", *argv)


# ---- ratings explained ------------------------------------------------------------------------------------------


def test_show_a_rating(rated: District, capsys: pytest.CaptureFixture[str]) -> None:
    subject = rated.samples["judgment_debtor"]
    text = out(capsys, rated, "ratings", "show", subject).splitlines()
    head = text[0]
    assert head.startswith(f"{subject} ") and "class C, model xc-2026.1" in head
    scored = {line.split()[0]: line.split()[1] for line in text[2:]}
    assert text[1].split() == ["INDICATOR", "POINTS", "DETAIL", "EVIDENCE"]
    assert scored["judgment-debtor"] == "-40" and scored["blacklisted"] == "-35"
    assert "general-findings" not in scored, "only indicators that scored or have evidence are shown"

    document = json.loads(out(capsys, rated, "ratings", "show", subject, "--json"))
    assert document["subject"] == subject and document["class"] == "C" and document["model"] == "xc-2026.1"
    assert document["level"] in ("CCC", "CC", "C") and document["level"] in head
    indicators = {i["name"]: i for i in document["indicators"]}
    assert len(indicators) == 10
    blacklisted = indicators["blacklisted"]
    assert blacklisted["points"] == -35.0 and len(blacklisted["evidence"]) == 1 and blacklisted["evidence"][0].startswith("listing:")
    assert document["score"] == pytest.approx(max(0.0, 85 + sum(i["points"] for i in document["indicators"])))

    history = json_lines(out(capsys, rated, "ratings", "show", subject, "--history", "--json"))
    assert len(history) >= 1 and history[0] == document

    person = rated.samples["natural_clean"]
    assert out(capsys, rated, "ratings", "show", person).strip() == f"{person} has no rating yet (xinlian ratings run)"
    assert "neither a valid USCC" in refused(capsys, rated, "ratings", "show", "91110000600037341N")


# ---- supervision plans ----------------------------------------------------------------------------------------------


def test_export_a_supervision_plan(rated: District, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    csv_path = tmp_path / "f.csv"
    said = out(capsys, rated, "supervision", "plan", "--period", "2026-Q4", "--format", "csv", "--output", str(csv_path), "--by", "ops-li")
    rows = list(csv.reader(io.StringIO(csv_path.read_text(encoding="utf-8"))))
    assert rows[0] == HEADER
    body = rows[1:]
    assert said.strip() == f"{len(body)} subjects written to {csv_path}"
    assert len(body) >= LEGAL_PERSONS
    classes = [r[5] for r in body]
    assert classes[0] == "C" and classes == sorted(classes, reverse=True), "class C rows first"
    assert {r[7] for r in body} == {"1"} and {r[9] for r in body} == {"xc-2026.1"}
    judged = next(r for r in body if r[0] == rated.samples["judgment_debtor"])
    assert judged[5] == "C" and judged[6].startswith("focused inspections")

    xlsx_path = tmp_path / "f.xlsx"
    out(capsys, rated, "supervision", "plan", "--period", "2026-Q4", "--format", "xlsx", "--output", str(xlsx_path))
    book = openpyxl.load_workbook(xlsx_path)
    sheet = book.active
    assert sheet is not None and sheet.title == "监管计划 2026-Q4"
    cells = [[("" if v is None else str(v)) for v in row] for row in sheet.iter_rows(values_only=True)]
    assert cells[0] == HEADER
    assert [r[0] for r in cells[1:]] == [r[0] for r in body] and [r[5] for r in cells[1:]] == classes

    printed = out(capsys, rated, "supervision", "plan", "--period", "2026", "--format", "csv")
    year = list(csv.reader(io.StringIO(printed)))
    assert year[0] == HEADER and {(r[5], r[7]) for r in year[1:]} <= {("A", "1"), ("B", "2"), ("C", "4")}

    table = out(capsys, rated, "supervision", "plan", "--department", "environment", "--period", "2026-12").splitlines()
    assert table[0].startswith("supervision plan 2026-12 (2026-12-01 – 2026-12-31) for environment: C ")
    supervised = {"食品制造业", "房屋建筑业", "机动车、电子产品和日用产品修理业", "畜牧业"}
    assert len(table) > 2 and {line.split()[-1] for line in table[2:]} <= supervised

    entries = [e.detail for e in cli_entries(rated) if e.detail["action"] == "supervisionPlan"][-4:]
    assert entries[0] == {"action": "supervisionPlan", "period": "2026-Q4", "subjects": len(body), "format": "csv"}
    assert [e["format"] for e in entries] == ["csv", "xlsx", "csv", "table"] and entries[3]["department"] == "environment"

    before = len(cli_entries(rated))
    assert "--format xlsx needs --output FILE" in refused(capsys, rated, "supervision", "plan", "--format", "xlsx")
    assert "period:" in refused(capsys, rated, "supervision", "plan", "--period", "2026-Q5")
    assert len(cli_entries(rated)) == before


def test_a_red_listing_and_a_check_from_the_cli(rated: District, fresh: Callable[[], str], capsys: pytest.CaptureFixture[str]) -> None:
    subject = fresh()
    day = decision_day(2).isoformat()
    said = out(capsys, rated, "lists", "add-red", subject, "--basis", "honour-red-list", "--department", "market",
               "--reason", "诚信示范", "--listed-on", day, "--by", "ops-wang").strip()
    assert said.startswith("listing ") and f"守信激励名单 {subject} {day}" in said
    assert "is not a red-list basis" in refused(capsys, rated, "lists", "add-red", fresh(), "--basis", "market-serious",
                                               "--department", "market", "--reason", "x", "--listed-on", day)
    [row] = json_lines(out(capsys, rated, "measures", "check", subject, "--context", "bidding", "--json"))
    assert (row["subject"], row["verdict"], row["rewards"]) == (subject, "ALLOWED", ["R02", "R03"])
    assert "unknown 'fishing'" in refused(capsys, rated, "measures", "check", subject, "--context", "fishing")
    assert [e.detail["action"] for e in cli_entries(rated)[-2:]] == ["addRedListing", "creditCheck"]
