"""`xinlian index show|departments`: the credit environment index and the department assessment.

- `index show [--from YYYY-MM] [--to YYYY-MM] [--industry X] [--csv]` — the district's indicators
  per month and the composite index (hub/cases/index.py), as the credit office sees them (every
  figure: nothing suppressed), as a table of the main figures or, with `--csv`, the whole answer
  as the admin API's `csv` gives it.
- `index departments [--from YYYY-MM] [--to YYYY-MM] [--csv]` — department data quality per
  department and family (hub/cases/assessment.py). The connectors' mappings come from the
  configured connectors file; availability over the period comes from the store's audit trail;
  the link counters are not known to a command (it has no link history: the admin API's
  `departmentAssessment` reports the serving hub's).

Both read the hub store directly (the policy in force for the finding bases, the data
directory's working-day calendar) and change nothing. Each is a read of credit data by the
credit office, audited like the admin API's: one entry per command (`endpoint` "cli",
`detail` `{"action": "creditEnvironmentIndex", "from", "to", "industry"}` or
`{"action": "departmentAssessment", "from", "to"}`, no subject), written before anything is
printed — a read that cannot be audited shows nothing (exit 2). Bad input (a month that is not
YYYY-MM, `--from` after `--to`, more than 60 months): stderr, exit 2, no entry.
"""

from __future__ import annotations

import argparse
from typing import Any

from xinlian.hub.cases.assessment import Source, assessment_csv, department_assessment, quality_row
from xinlian.hub.cases.calendar import WorkingCalendar
from xinlian.hub.cases.index import OFFICE, Window, index_csv
from xinlian.hub.cases.model import CaseInputError
from xinlian.hub.executor.index_fields import audit_detail, compute

from .admin_session import AdminSession, add_common_arguments, run_admin
from .credit import policy_in_force, today

SHOW_COLUMNS = ("month", "index", "subjects_known", "subjects_rated", "dishonesty_share", "blacklist_size", "red_list_size",
                "findings_serious", "findings_general", "objections_filed", "complaints_filed", "repairs_filed")
DEPARTMENT_COLUMNS = ("department", "family", "completeness", "timeliness", "objections", "objection_rate_per_1000",
                      "objections_on_time_rate", "repairs_on_time_rate", "complaints_on_time_rate", "availability")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    index = sub.add_parser("index", help="the credit environment index and the department assessment")
    i = index.add_subparsers(dest="index_command", required=True)
    show = i.add_parser("show", help="the district's indicators per month and the composite index")
    show.add_argument("--from", dest="first", default=None, metavar="YYYY-MM", help="first month (default: 11 before --to)")
    show.add_argument("--to", dest="last", default=None, metavar="YYYY-MM", help="last month (default: this month)")
    show.add_argument("--industry", default=None, help="only subjects whose newest rating names this industry")
    show.add_argument("--csv", action="store_true", help="the whole answer as CSV")
    add_common_arguments(show, changes=False)
    show.set_defaults(handler=run_show)
    departments = i.add_parser("departments", help="department data quality per department and family")
    departments.add_argument("--from", dest="first", default=None, metavar="YYYY-MM")
    departments.add_argument("--to", dest="last", default=None, metavar="YYYY-MM")
    departments.add_argument("--csv", action="store_true", help="the whole table as CSV")
    add_common_arguments(departments, changes=False)
    departments.set_defaults(handler=run_departments)


def _shown(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def run_show(args: argparse.Namespace) -> int:
    async def show(session: AdminSession) -> int:
        rules = (await policy_in_force(session)).credit
        calendar = WorkingCalendar.load(session.settings.data_dir)
        result = await compute(session.store, rules, calendar, today(), args.first, args.last, args.industry, OFFICE)
        session.record("creditEnvironmentIndex", read=True, **audit_detail(result))
        if args.csv:
            session.say(index_csv(result).rstrip("\n"))
            return 0
        rows = []
        for m in result.months:
            rows.append({
                "month": m.month, "index": m.index, "subjects_known": m.subjects_known, "subjects_rated": m.subjects_rated,
                "dishonesty_share": _shown(m.dishonesty_share), "blacklist_size": m.blacklist_size,
                "red_list_size": m.red_list_size, "findings_serious": m.findings["serious"],
                "findings_general": m.findings["general"], "objections_filed": m.cases["objections_filed"],
                "complaints_filed": m.cases["complaints_filed"], "repairs_filed": m.cases["repairs_filed"],
            })
        scope = f" industry {result.industry}" if result.industry else ""
        session.say(f"credit environment index {result.first} to {result.last}{scope} (formula {result.formula_version})")
        session.listing(rows, SHOW_COLUMNS, False, "no months")
        return 0

    return run_admin(args, "index", show)


def run_departments(args: argparse.Namespace) -> int:
    async def show(session: AdminSession) -> int:
        from xinlian.connectors.mapping import ConnectorConfigError
        from xinlian.hub.executor.federation import Federation

        settings = session.settings
        day = today()
        window = Window.parse(args.first, args.last, day)
        path = settings.connectors_path
        try:
            federation = Federation.from_config(path, settings.data_dir) if path and path.exists() else Federation([])
        except ConnectorConfigError as exc:
            raise CaseInputError(f"connectors: {exc}") from None
        try:
            sources = [Source.of(c) for c in federation.connectors]
        finally:
            await federation.close()
        result = await department_assessment(session.store, sources, window, day)
        session.record("departmentAssessment", read=True, **{"from": result.first, "to": result.last})
        if args.csv:
            session.say(assessment_csv(result).rstrip("\n"))
            return 0
        session.say(f"department assessment {result.first} to {result.last}: {result.subjects_known} subjects known "
                    "(availability over the period from the audit trail; the serving hub's links: the admin API's "
                    "departmentAssessment)")
        rows = [{k: _shown(v) for k, v in quality_row(result, q).items()} for q in result.rows]
        session.listing(rows, DEPARTMENT_COLUMNS, False, "no departments")
        return 0

    return run_admin(args, "index", show)
