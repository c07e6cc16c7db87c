"""Credit checks (联合奖惩): which measures of the catalogue apply to a subject in a context, and why.

`evaluate(rules, context, listings, findings, today)` is pure: given the subject's current
listings and in-force findings (hub/credit/standing.py) and the policy's measures catalogue, it
answers

- `PROHIBITED` when a prohibiting sanction applies, else `RESTRICTED` when a restricting one
  does, else `ALLOWED`;
- every sanction that applies, each with its legal basis, issuing department and the listings or
  findings that trigger it (the reasons);
- the rewards that apply (fast-track, reduced inspections, waived deposits): only to a subject
  on the red list that is neither blacklisted nor under a serious finding.

A finding is in force from its decision date through the last day of its basis' period (the
policy's `credit.bases`); a finding whose basis the policy no longer names stays in force until
it is revoked — a sanction is never dropped by forgetting its basis.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

from xinlian.policies.credit import CreditRules, Effect, Measure, Trigger, Verdict

from .model import BLACK, RED, CreditInputError, Finding, Listing


@dataclass(frozen=True, slots=True)
class CheckReason:
    """A listing or a finding behind a measure."""

    kind: str  # listing | finding
    id: int
    basis: str
    basis_text: str
    department: str
    since: dt.date  # listed on / decided on
    until: dt.date | None  # last day in force (None: while its rule holds)
    list: str | None = None  # black | red, for a listing
    severity: str | None = None  # general | serious, for a finding


@dataclass(frozen=True, slots=True)
class AppliedMeasure:
    measure: Measure
    reasons: tuple[CheckReason, ...]


@dataclass(frozen=True, slots=True)
class CheckResult:
    subject: str
    context: str
    verdict: Verdict
    measures: tuple[AppliedMeasure, ...]  # sanctions
    rewards: tuple[AppliedMeasure, ...]
    reasons: tuple[CheckReason, ...]  # every listing and finding that set a measure off


def check_context(rules: CreditRules, context: str) -> str:
    if context not in rules.contexts:
        shown = context if len(context) <= 40 else context[:40] + "…"
        raise CreditInputError(f"context: unknown {shown!r} (one of {', '.join(rules.contexts)})")
    return context


def finding_until(rules: CreditRules, finding: Finding) -> dt.date | None:
    basis = rules.bases.get(finding.basis)
    return basis.ends_on(finding.decided_on) if basis is not None else None


def in_force(rules: CreditRules, finding: Finding, today: dt.date) -> bool:
    until = finding_until(rules, finding)
    return finding.decided_on <= today and (until is None or today <= until)


def listing_reason(listing: Listing) -> CheckReason:
    return CheckReason(
        "listing", listing.id, listing.basis, listing.basis_text, listing.department, listing.listed_on, listing.ends_on,
        list=listing.list,
    )


def finding_reason(rules: CreditRules, finding: Finding) -> CheckReason:
    basis = rules.bases.get(finding.basis)
    return CheckReason(
        "finding", finding.id, finding.basis, basis.name if basis else finding.basis, finding.department,
        finding.decided_on, finding_until(rules, finding), severity=finding.severity,
    )


def _triggered(trigger: Trigger, listings: Sequence[CheckReason], findings: Sequence[CheckReason]) -> list[CheckReason]:
    if trigger.source in ("blacklist", "redlist"):
        wanted = BLACK if trigger.source == "blacklist" else RED
        pool = [r for r in listings if r.list == wanted]
    else:
        severity = trigger.source.removeprefix("finding-")
        pool = [r for r in findings if r.severity == severity]
    return [r for r in pool if trigger.qualifier is None or r.basis == trigger.qualifier]


def evaluate(
    rules: CreditRules, context: str, subject: str, listings: Sequence[Listing], findings: Sequence[Finding], today: dt.date
) -> CheckResult:
    """The credit check of one subject in one context (see the module docstring)."""
    current = [listing_reason(x) for x in listings if x.current(today)]
    active = [finding_reason(rules, f) for f in findings if f.status == "in_force" and in_force(rules, f, today)]
    sanctions: list[AppliedMeasure] = []
    rewards: list[AppliedMeasure] = []
    rewardable = not any(r.list == BLACK for r in current) and not any(r.severity == "serious" for r in active)
    for measure in rules.measures_in(context):
        reasons: dict[tuple[str, int], CheckReason] = {}
        for trigger in measure.on:
            for reason in _triggered(trigger, current, active):
                reasons[(reason.kind, reason.id)] = reason
        if not reasons:
            continue
        applied = AppliedMeasure(measure, tuple(reasons.values()))
        if measure.effect is Effect.REWARD:
            if rewardable:
                rewards.append(applied)
        else:
            sanctions.append(applied)
    effects = {m.measure.effect for m in sanctions}
    verdict = (
        Verdict.PROHIBITED if Effect.PROHIBITED in effects
        else Verdict.RESTRICTED if Effect.RESTRICTED in effects
        else Verdict.ALLOWED
    )
    behind: dict[tuple[str, int], CheckReason] = {}
    for applied in (*sanctions, *rewards):
        for reason in applied.reasons:
            behind[(reason.kind, reason.id)] = reason
    return CheckResult(subject, context, verdict, tuple(sanctions), tuple(rewards), tuple(behind.values()))
