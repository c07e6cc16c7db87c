"""Ratings on the nine-level scale (三等九级): the model's evaluation, and the snapshots it leaves.

`rate(...)` is pure: the policy's rating model (`policies.credit.RatingModel`) over one
subject's department records, current listings, in-force findings and objections that corrected a record. Each
indicator reports its points (weighted for the subject's industry), the records or decisions
behind them, and a line of explanation; the score is `base` plus the points, within 0 and
`max_score`; the level is the highest whose threshold the score reaches (exactly at a threshold
reaches it); the supervision class follows from the level.

`RatingRegister` keeps every rating as a snapshot (`credit_ratings`): level, score, class, the
model and policy versions, the whole explanation, the inputs (every record of the families the
model reads, with the fields it reads) and the model's digest — so a rating can be explained and
reproduced later (`rate` over the stored inputs under the same model), whatever the departments'
records have become since. The
newest snapshot of a subject is its current rating; older ones are its history.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from sqlalchemy import func, insert, select

from xinlian.connectors.contract import Record
from xinlian.hub.store import Store
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import CaseRecord, RatingRecord
from xinlian.policies.credit import CreditRules, Indicator, RatingModel, current_records
from xinlian.schema.catalogue import FAMILIES, ValueType

from .checks import finding_reason, in_force
from .model import Finding, Listing

RATINGS = table_of(RatingRecord)


@dataclass(frozen=True)
class IndicatorScore:
    """One indicator's part in a rating."""

    name: str
    label: str
    kind: str
    points: float
    weight: float
    evidence: tuple[str, ...]  # "family:key" of records, "listing:<id>", "finding:<id>", "objection:<id>"
    detail: str


@dataclass(frozen=True)
class Rating:
    """A rating of one subject by one model version."""

    subject: str
    subject_name: str
    industry: str
    level: str
    score: float
    supervision_class: str
    model_version: str
    policy_version: str
    rated_on: dt.date
    indicators: tuple[IndicatorScore, ...]
    id: int | None = None
    rated_at: dt.datetime | None = None
    trigger: str = "on-demand"
    # what the model read, to reproduce the rating: per family, each record's fields the model
    # reads (as text), and the model's digest (its document's SHA-256)
    inputs: Mapping[str, Sequence[Mapping[str, str]]] = field(default_factory=dict)
    model_digest: str = ""

    def explanation(self) -> str:
        return json.dumps(
            {"indicators": [asdict(i) for i in self.indicators], "inputs": {k: list(v) for k, v in self.inputs.items()},
             "model_digest": self.model_digest},
            ensure_ascii=False, sort_keys=True, default=str,
        )


def _record_ref(family: str, record: Mapping[str, Any]) -> str:
    key = FAMILIES[family].record_key
    value = record.get(key) if key else None
    return f"{family}:{value}" if value is not None else family


def _score_indicator(
    indicator: Indicator,
    records: Mapping[str, Sequence[Record]],
    listings: Sequence[Listing],
    findings: Sequence[Finding],
    upheld: Sequence[int],
    rules: CreditRules,
    today: dt.date,
) -> tuple[float, tuple[str, ...], str]:
    """(unweighted points, evidence, detail) of one indicator."""
    if indicator.kind == "records":
        assert indicator.filter is not None
        family = indicator.filter.family
        matching = [r for r in current_records(family, records.get(family, ())) if indicator.filter.matches(r, today)]
        raw = indicator.capped(indicator.points * len(matching))
        return raw, tuple(_record_ref(family, r) for r in matching), f"{len(matching)} record(s) × {indicator.points:g}"
    if indicator.kind == "level":
        assert indicator.filter is not None and indicator.field is not None
        family_records = current_records(indicator.filter.family, records.get(indicator.filter.family, ()))
        if not family_records:
            return 0.0, (), "no record"
        value = str(family_records[0].get(indicator.field))
        points = dict(indicator.levels).get(value, 0.0)
        return indicator.capped(points), (_record_ref(indicator.filter.family, family_records[0]),), f"{indicator.field} = {value}"
    if indicator.kind == "listing":
        current = [x for x in listings if x.list == indicator.list and x.current(today)]
        raw = indicator.points if current else 0.0
        return indicator.capped(raw), tuple(f"listing:{x.id}" for x in current), f"{len(current)} current listing(s)"
    if indicator.kind == "finding":
        active = [f for f in findings if f.severity == indicator.severity and in_force(rules, f, today)]
        raw = indicator.capped(indicator.points * len(active))
        return raw, tuple(f"finding:{finding_reason(rules, f).id}" for f in active), f"{len(active)} finding(s) in force"
    # objections that corrected one of the subject's records (closed `corrected`)
    raw = indicator.capped(indicator.points * len(upheld))
    return raw, tuple(f"objection:{i}" for i in upheld), f"{len(upheld)} objection(s) that corrected a record"


def rate(
    rules: CreditRules,
    policy_version: str,
    subject: str,
    subject_name: str,
    industry: str,
    records: Mapping[str, Sequence[Record]],
    listings: Sequence[Listing],
    findings: Sequence[Finding],
    upheld: Sequence[int],
    today: dt.date,
    trigger: str = "on-demand",
) -> Rating:
    """One subject's rating under the policy's model (see the module docstring)."""
    model = rules.rating
    scores = []
    total = 0.0
    for indicator in model.indicators:
        raw, evidence, detail = _score_indicator(indicator, records, listings, findings, upheld, rules, today)
        weight = model.weight(industry, indicator.name)
        points = round(raw * weight, 2) + 0.0  # + 0.0: no "-0.0" for an indicator that scored nothing
        total += points
        scores.append(IndicatorScore(indicator.name, indicator.label, indicator.kind, points, weight, evidence, detail))
    score = round(min(max(model.base + total, 0.0), model.max_score), 2)
    level = model.level_for(score)
    reads = model.reads()
    inputs = {
        family: [{k: _text(r.get(k)) for k in sorted(fields) if k in r} for r in records.get(family, ())]
        for family, fields in sorted(reads.items())
    }
    return Rating(
        inputs=inputs, model_digest=model_digest(model),
        subject=subject, subject_name=subject_name, industry=industry, level=level, score=score,
        supervision_class=rules.supervision_class(level).code, model_version=model.version,
        policy_version=policy_version, rated_on=today, indicators=tuple(scores), trigger=trigger,
    )


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def stored_records(rating: Rating) -> dict[str, list[dict[str, Any]]]:
    """A snapshot's inputs as records again (catalogue types: dates, decimals, integers), to run
    the model over them and get the same rating back."""
    out: dict[str, list[dict[str, Any]]] = {}
    for family, records in rating.inputs.items():
        spec = FAMILIES[family]
        converted = []
        for record in records:
            row: dict[str, Any] = {}
            for name, text in record.items():
                kind = spec.field(name).type
                if text == "None":
                    row[name] = None
                elif kind is ValueType.DATE:
                    row[name] = dt.date.fromisoformat(text)
                elif kind is ValueType.DECIMAL:
                    row[name] = decimal.Decimal(text)
                elif kind is ValueType.INT:
                    row[name] = int(text)
                else:
                    row[name] = text
            converted.append(row)
        out[family] = converted
    return out


def model_digest(model: RatingModel) -> str:
    """The SHA-256 of the model's document: two snapshots with one digest were made by one model."""
    return hashlib.sha256(json.dumps(model.document(), ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _rating_of(row: Any) -> Rating:
    stored = json.loads(row.explanation)
    if isinstance(stored, list):  # a snapshot from before inputs were kept
        stored = {"indicators": stored}
    indicators = tuple(
        IndicatorScore(
            i["name"], i["label"], i["kind"], float(i["points"]), float(i["weight"]), tuple(i["evidence"]), i["detail"]
        )
        for i in stored["indicators"]
    )
    return Rating(
        subject=row.subject, subject_name=row.subject_name, industry=row.industry, level=row.level, score=float(row.score),
        supervision_class=row.supervision_class, model_version=row.model_version, policy_version=row.policy_version,
        rated_on=row.rated_on, indicators=indicators, id=row.id, rated_at=row.rated_at, trigger=row.trigger,
        inputs=stored.get("inputs", {}), model_digest=stored.get("model_digest", ""),
    )


class RatingRegister:
    """Rating snapshots in the hub store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def save(self, ratings: Sequence[Rating], job_id: int | None = None) -> list[Rating]:
        if not ratings:
            return []
        now = dt.datetime.now(dt.timezone.utc)
        rows = [
            {
                "subject": r.subject, "subject_name": r.subject_name[:200], "industry": r.industry[:100], "level": r.level,
                "score": r.score, "supervision_class": r.supervision_class, "model_version": r.model_version,
                "policy_version": r.policy_version, "explanation": r.explanation(), "trigger": r.trigger,
                "job_id": job_id, "rated_at": now, "rated_on": r.rated_on,
            }
            for r in ratings
        ]
        async with self.store.session() as session:
            await session.execute(insert(RATINGS), rows)
            await session.commit()
        return [dataclasses.replace(r, rated_at=now) for r in ratings]

    async def latest(self, subject: str) -> Rating | None:
        async with self.store.session() as session:
            row = (await session.execute(
                select(RATINGS).where(RATINGS.c.subject == subject).order_by(RATINGS.c.id.desc()).limit(1)
            )).first()
        return _rating_of(row) if row is not None else None

    async def history(self, subject: str, limit: int = 50) -> list[Rating]:
        async with self.store.session() as session:
            rows = await session.execute(
                select(RATINGS).where(RATINGS.c.subject == subject).order_by(RATINGS.c.id.desc()).limit(limit)
            )
            return [_rating_of(row) for row in rows]

    async def current_all(self) -> list[Rating]:
        """Every subject's newest rating (the supervision plan's input)."""
        newest = select(func.max(RATINGS.c.id)).group_by(RATINGS.c.subject).scalar_subquery()
        async with self.store.session() as session:
            rows = await session.execute(select(RATINGS).where(RATINGS.c.id.in_(newest)).order_by(RATINGS.c.subject))
            return [_rating_of(row) for row in rows]

    async def upheld_objections(self, subjects: Sequence[str]) -> dict[str, list[int]]:
        """Ids of the objections that succeeded on each subject's records: objection cases closed
        `corrected` (the department corrected the record; hub/cases/model.py)."""
        o = CaseRecord
        out: dict[str, list[int]] = {}
        async with self.store.session() as session:
            for start in range(0, len(subjects), 500):
                chunk = list(subjects[start:start + 500])
                rows = await session.execute(
                    select(o.subject, o.id).where(o.subject.in_(chunk), o.kind == "objection", o.status == "corrected")
                )
                for subject, objection_id in rows:
                    out.setdefault(subject or "", []).append(int(objection_id))
        return out
