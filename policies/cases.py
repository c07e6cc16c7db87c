"""The policy's case rules: deadlines in working days, complaint categories, credit repair periods,
attachments and the review before publication — data, versioned with the policy.

A policy document's `[cases]` section (see `policies/cases.toml`, the standard one, and
docs/cases.md) declares:

- `deadlines`: working days a department has to answer an objection (`objection`, default 10),
  the credit office to triage a complaint (`complaint_triage`) and the department to answer it
  (`complaint`), and the deciding department to decide a repair application (`repair`);
  `reminder` — a case is *due soon* this many working days before its deadline;
- `complaint_categories`: the categories a complaint or report is filed under (code → label);
- `repair`: the record families a subject may apply to repair, the minimum publicity (in months
  from the decision date) per severity before it may apply (national minimum: 轻微 0 — repairable
  only where the policy shows minor penalties —, 一般 3, 严重 12), and the months a blacklisting
  must have lasted (`listing_min_months`, national minimum 12): a policy may raise these
  minimums, never lower them;
- `attachments`: the size and count limits (at least one attachment per case: repairing a
  penalty needs a proof document) and the media types accepted;
- `review`: the queue of the review before publication (预留审核环节) — whether new PUBLIC
  records wait for approval at all, from which decision date (`since`: older records were
  published before the queue), the default auto-approval after N hours, and per department (the
  connector's name) `trusted` (approved on sight) or its own `after_hours`. Which families are
  reviewed is the `publication-review` row rule's (policies/review.py): `families` here is
  accepted, so that documents naming it still load, and not read;
- `access`: the scopes with which a department client (bound to its department) files
  objections and answers its department's cases.

Pure: parsing (`parse_cases`, `PolicyError` naming the place of fault) and the explicit
document form (`cases_document`). The registers live in `hub/cases/`.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from xinlian.schema.catalogue import FAMILIES

from .credit import SectionTable, section_leaves
from .model import PolicyError
from .rows import STANDARD_MIN_MONTHS

DEADLINE_KINDS = ("objection", "complaint_triage", "complaint", "repair")
LISTING_MIN_MONTHS = 12  # the national minimum a blacklisting lasts before it may be repaired
MEDIA_TYPES = ("application/pdf", "image/jpeg", "image/png")  # what the hub can recognise


@dataclass(frozen=True)
class Deadlines:
    """Working days to answer each kind of case, and when one is due soon."""

    objection: int = 10
    complaint_triage: int = 3
    complaint: int = 15
    repair: int = 10
    reminder: int = 2

    def document(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in (*DEADLINE_KINDS, "reminder")}


@dataclass(frozen=True)
class RepairRules:
    """What a subject may apply to repair, and after how long."""

    families: tuple[str, ...] = ("penalties",)
    min_months: Mapping[str, int] = field(default_factory=lambda: dict(STANDARD_MIN_MONTHS))
    listing_min_months: int = LISTING_MIN_MONTHS

    def document(self) -> dict[str, Any]:
        return {"families": list(self.families), "min_months": dict(self.min_months), "listing_min_months": self.listing_min_months}


@dataclass(frozen=True)
class AttachmentRules:
    max_mb: int = 10
    max_per_case: int = 10
    media_types: tuple[str, ...] = MEDIA_TYPES

    @property
    def max_bytes(self) -> int:
        return self.max_mb * 1024 * 1024

    def document(self) -> dict[str, Any]:
        return {"max_mb": self.max_mb, "max_per_case": self.max_per_case, "media_types": list(self.media_types)}


@dataclass(frozen=True)
class ReviewSource:
    """How one department's new PUBLIC records are approved: on sight (`trusted`), after
    `after_hours` in the queue, or (neither) only by a reviewer."""

    trusted: bool = False
    after_hours: int | None = None

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {"trusted": self.trusted}
        if self.after_hours is not None:
            out["after_hours"] = self.after_hours
        return out


@dataclass(frozen=True)
class ReviewRules:
    """The review before publication: off (`enabled = false`) shows new PUBLIC records at once."""

    enabled: bool = True
    families: tuple[str, ...] = ("penalties", "licenses")  # not read: the publication-review rule names the families
    after_hours: int | None = None  # the default for departments not named in `sources`
    sources: Mapping[str, ReviewSource] = field(default_factory=dict)
    since: dt.date | None = None  # records decided before it were published before the queue: not reviewed

    def source(self, department: str) -> ReviewSource:
        return self.sources.get(department, ReviewSource(after_hours=self.after_hours))

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {"enabled": self.enabled, "families": list(self.families)}
        if self.after_hours is not None:
            out["after_hours"] = self.after_hours
        if self.since is not None:
            out["since"] = self.since.isoformat()
        out["sources"] = {name: s.document() for name, s in self.sources.items()}
        return out


@dataclass(frozen=True)
class CaseAccess:
    departments: tuple[str, ...] = ("credit:findings",)

    def document(self) -> dict[str, Any]:
        return {"departments": list(self.departments)}


@dataclass(frozen=True)
class CaseRules:
    deadlines: Deadlines = field(default_factory=Deadlines)
    complaint_categories: Mapping[str, str] = field(default_factory=dict)
    repair: RepairRules = field(default_factory=RepairRules)
    attachments: AttachmentRules = field(default_factory=AttachmentRules)
    review: ReviewRules = field(default_factory=ReviewRules)
    access: CaseAccess = field(default_factory=CaseAccess)


def _deadlines(raw: Any) -> Deadlines:
    t = SectionTable(raw or {}, "cases.deadlines")
    base = Deadlines()
    values = {k: t.integer(k, getattr(base, k), minimum=1) for k in DEADLINE_KINDS}
    reminder = t.integer("reminder", base.reminder, minimum=0)
    t.finish()
    return Deadlines(**values, reminder=reminder)


def _categories(raw: Any) -> dict[str, str]:
    t = SectionTable(raw, "cases.complaint_categories")
    out = {code: t.string(code) for code in list(t.table)}
    t.finish()
    if not out:
        raise PolicyError("cases.complaint_categories: name at least one category")
    return out


def _repair(raw: Any) -> RepairRules:
    t = SectionTable(raw or {}, "cases.repair")
    base = RepairRules()
    families = t.strings("families", base.families)
    for name in families:
        spec = FAMILIES.get(name)
        if spec is None or spec.record_key is None:
            raise PolicyError(f"cases.repair.families: {name!r} is not a family of keyed records")
    months_table = SectionTable(t.raw("min_months", dict(base.min_months)), "cases.repair.min_months")
    months: dict[str, int] = {}
    for severity in list(months_table.table):
        least = STANDARD_MIN_MONTHS.get(severity)
        if least is None:
            raise PolicyError(f"cases.repair.min_months: unknown severity {severity!r} (轻微, 一般, 严重)")
        months[severity] = months_table.integer(severity, minimum=least)
    months_table.finish()
    for severity, least in STANDARD_MIN_MONTHS.items():
        months.setdefault(severity, least)
    listing = t.integer("listing_min_months", base.listing_min_months)
    if listing < LISTING_MIN_MONTHS:
        raise PolicyError(
            f"cases.repair.listing_min_months: {listing} is below the national minimum of {LISTING_MIN_MONTHS} months "
            "(a policy may raise it, never lower it)"
        )
    t.finish()
    return RepairRules(families=families, min_months=months, listing_min_months=listing)


def _attachments(raw: Any) -> AttachmentRules:
    t = SectionTable(raw or {}, "cases.attachments")
    base = AttachmentRules()
    max_mb = t.integer("max_mb", base.max_mb, minimum=1)
    if max_mb > 100:
        raise PolicyError("cases.attachments.max_mb: at most 100")
    count = t.integer("max_per_case", base.max_per_case)
    if count < 1:
        raise PolicyError(
            f"cases.attachments.max_per_case: at least 1, got {count} (repairing a penalty needs a proof document)"
        )
    types = t.strings("media_types", base.media_types)
    unknown = [m for m in types if m not in MEDIA_TYPES]
    if unknown:
        raise PolicyError(f"cases.attachments.media_types: the hub recognises only {', '.join(MEDIA_TYPES)}, not {', '.join(unknown)}")
    t.finish()
    return AttachmentRules(max_mb=max_mb, max_per_case=count, media_types=types)


def _review(raw: Any) -> ReviewRules:
    t = SectionTable(raw or {}, "cases.review")
    base = ReviewRules()
    enabled = t.raw("enabled", base.enabled)
    if not isinstance(enabled, bool):
        raise PolicyError(f"cases.review.enabled must be true or false, got {enabled!r}")
    families = t.strings("families", base.families)
    for name in families:
        if name not in FAMILIES:
            raise PolicyError(f"cases.review.families: unknown record family {name!r}")
    after = t.optional_integer("after_hours", minimum=0)
    since = t.raw("since")
    if isinstance(since, str):  # as stored (JSON) and written back (policy TOML text)
        try:
            since = dt.date.fromisoformat(since)
        except ValueError:
            raise PolicyError(f"cases.review.since must be a date (2026-12-01), got {since!r}") from None
    if since is not None and (not isinstance(since, dt.date) or isinstance(since, dt.datetime)):
        raise PolicyError(f"cases.review.since must be a date (2026-12-01), got {since!r}")
    sources: dict[str, ReviewSource] = {}
    table = SectionTable(t.raw("sources", {}), "cases.review.sources")
    for name in list(table.table):
        s = SectionTable(table.raw(name), f"cases.review.sources.{name}")
        trusted = s.raw("trusted", False)
        if not isinstance(trusted, bool):
            raise PolicyError(f"cases.review.sources.{name}.trusted must be true or false")
        sources[name] = ReviewSource(trusted=trusted, after_hours=s.optional_integer("after_hours", minimum=0))
        s.finish()
    table.finish()
    t.finish()
    return ReviewRules(enabled=enabled, families=families, after_hours=after, sources=sources, since=since)


def _access(raw: Any) -> CaseAccess:
    t = SectionTable(raw or {}, "cases.access")
    access = CaseAccess(departments=t.strings("departments", CaseAccess().departments))
    t.finish()
    return access


def parse_cases(raw: Any) -> CaseRules:
    """The `[cases]` section of a policy document; `PolicyError` naming the place of fault."""
    t = SectionTable(raw, "cases")
    rules = CaseRules(
        deadlines=_deadlines(t.raw("deadlines")),
        complaint_categories=_categories(t.raw("complaint_categories")),
        repair=_repair(t.raw("repair")),
        attachments=_attachments(t.raw("attachments")),
        review=_review(t.raw("review")),
        access=_access(t.raw("access")),
    )
    t.finish()
    return rules


def cases_document(rules: CaseRules) -> dict[str, Any]:
    """The section spelled out: `parse_cases(cases_document(r)) == r`."""
    return {
        "deadlines": rules.deadlines.document(),
        "complaint_categories": dict(rules.complaint_categories),
        "repair": rules.repair.document(),
        "attachments": rules.attachments.document(),
        "review": rules.review.document(),
        "access": rules.access.document(),
    }


def standard_cases_path() -> Path:
    return Path(__file__).with_name("cases.toml")


@functools.cache
def standard_case_rules() -> CaseRules:
    """The shipped rules (policies/cases.toml), for a policy document without a `[cases]` section."""
    text = standard_cases_path().read_text(encoding="utf-8")
    return parse_cases(tomllib.loads(text)["cases"])


def cases_leaves(document: Mapping[str, Any]) -> dict[str, str]:
    """`cases.<part>.<key>: value` lines of a document's cases section, for diffs."""
    section = document.get("cases")
    if section is None:
        section = cases_document(standard_case_rules())
    if not isinstance(section, dict):
        return {"cases": str(section)}
    return section_leaves("cases", section)
