"""Tables of the hub store (hub-owned state only; department data never lands here)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Float, Index, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ClientRecord(Base):
    """An OAuth2 client of the hub (a department, bank, agency, platform or admin).

    `token_endpoint_auth_method` (RFC 7591) is how the client proves who it is: with its secret
    (`client_secret_basic`, which also allows `client_secret_post`), or with a JWT assertion
    signed by a key of `jwks` (`private_key_jwt`, RFC 7523; `secret_hash` is then empty and
    never verifies).
    """

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False, default="")  # space separated
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    token_endpoint_auth_method: Mapped[str] = mapped_column(
        String(32), nullable=False, default="client_secret_basic", server_default="client_secret_basic"
    )
    jwks: Mapped[str | None] = mapped_column(Text, nullable=True)  # public JWK Set (JSON), private_key_jwt
    # purposes (codes of `purposes`) the client may declare for AUTHORIZED data, space separated
    purposes: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    # a client of kind `subject` speaks for one credit subject (its USCC or resident ID)
    subject_id: Mapped[str | None] = mapped_column(String(18), nullable=True)
    # tokens issued (`iat`) before this moment are refused: set when the client is disabled or its
    # secret rotated, so re-enabling it or rotating does not leave older tokens valid (migration 0004)
    tokens_valid_after: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # a client of kind `department` speaks for one department: the `name` of its connector in the
    # federation (e.g. "market"); it records findings and listings for that department (migration 0008)
    department: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RevokedToken(Base):
    """An access token revoked before its expiry (RFC 7009), kept until it would have expired."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class UsedClientAssertion(Base):
    """A client assertion (RFC 7523, private_key_jwt) already used, kept until it expires: no replay."""

    __tablename__ = "used_client_assertions"
    __table_args__ = (PrimaryKeyConstraint("client_id", "jti"),)

    client_id: Mapped[str] = mapped_column(String(64), nullable=False)
    jti: Mapped[str] = mapped_column(String(255), nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)


class AuditRecord(Base):
    """One entry of the hash-chained audit trail (one per GraphQL request).

    `content` is the entry's canonical JSON and `hash` = SHA-256(prev_hash + "\n" + content);
    `at`, `request_id` and `client_id` repeat values from `content` so they can be indexed
    (the verifier checks that they still agree with the hashed content).
    """

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[str] = mapped_column(String(32), nullable=False, index=True)  # ISO 8601 UTC with 'Z'
    request_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)  # None: public
    content: Mapped[str] = mapped_column(Text, nullable=False)  # canonical JSON of the entry
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)


SEQ = BigInteger().with_variant(Integer(), "sqlite")


class AuditHeadSeal(Base):
    """The head of the audit chain as the hub last wrote it, signed: one row (`id` 1).

    The trail's writer replaces it in the same transaction as every batch of entries, so an
    entry the hub wrote is always covered by it (the chain links each entry to the sealed
    head); an entry appended by anyone without the hub's signing key is not. `jws` is a
    signed checkpoint (hub/audit/checkpoint.py format); the other columns repeat its payload.
    """

    __tablename__ = "audit_head_seal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(SEQ, nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[str] = mapped_column(String(32), nullable=False)
    kid: Mapped[str] = mapped_column(String(128), nullable=False)
    jws: Mapped[str] = mapped_column(Text, nullable=False)


class AuditSubject(Base):
    """Which audit entries name which subject: the index behind a subject's access log.

    Written in the same transaction as the entries it indexes.
    """

    __tablename__ = "audit_subjects"
    __table_args__ = (PrimaryKeyConstraint("subject", "seq"),)

    subject: Mapped[str] = mapped_column(String(32), nullable=False)
    seq: Mapped[int] = mapped_column(SEQ, nullable=False)


class PolicyVersionRecord(Base):
    """One version of the disclosure policy: the whole document, and who made it, when and why.

    `document` is the canonical JSON of `policies.loader.policy_document`; `changes` a JSON list
    of "what changed" lines against `parent`. Versions are never edited or deleted.
    """

    __tablename__ = "policy_versions"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)  # "v<number>"
    document: Mapped[str] = mapped_column(Text, nullable=False)
    parent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    changes: Mapped[str] = mapped_column(Text, nullable=False, default="[]")


class PolicyActivation(Base):
    """A policy version made active; the active version is the latest activation."""

    __tablename__ = "policy_activations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    activated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    activated_by: Mapped[str] = mapped_column(String(64), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)


class PurposeRecord(Base):
    """A purpose a client may declare for AUTHORIZED data (e.g. `loan-review` 贷款审批)."""

    __tablename__ = "purposes"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    retired: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class ConsentRecord(Base):
    """A natural person's consent that a client receive its AUTHORIZED data for one purpose."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_subject_client_purpose", "subject", "client_id", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(18), nullable=False)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False)
    purpose: Mapped[str] = mapped_column(String(64), nullable=False)
    granted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(64), nullable=False)
    reference: Mapped[str] = mapped_column(String(200), nullable=False, default="")  # the signed form's number


class CaseRecord(Base):
    """A case (hub/cases/): an objection (异议), a complaint or report (投诉举报), or a credit repair
    application (信用修复), with its deadline in working days.

    `subject` is the subject concerned (a complaint may name only a `subject_name`); `department`
    the connector name of the department that must answer (null: with the credit office);
    `filer_kind` `subject`, `department`, `credit-office` or `public`, and `filer` the client id
    (`public` for the anonymous public, who follow a complaint by the tracking code whose SHA-256 is
    `tracking_hash`); `category` the objection's ground, the complaint's category or the repair's
    target (`record` / `listing`); `records` a JSON list of {family, key}; `detail` JSON of what
    only one kind has (a complaint's contact, a repair's commitment and listing, the outcome's
    correction or finding). Never deleted; every change of `status` writes a `case_events` row.
    """

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_kind_status", "kind", "status", "deadline"),
        Index("ix_cases_subject_kind", "subject", "kind", "status"),
        Index("ix_cases_department_status", "department", "status", "deadline"),
        Index("ix_cases_tracking_hash", "tracking_hash", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # objection | complaint | repair
    subject: Mapped[str | None] = mapped_column(String(18), nullable=True)
    subject_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    filer_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    filer: Mapped[str] = mapped_column(String(64), nullable=False)
    tracking_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    category: Mapped[str] = mapped_column(String(64), nullable=False)
    records: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    description: Mapped[str] = mapped_column(Text, nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    filed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    filed_on: Mapped[dt.date] = mapped_column(Date, nullable=False)  # in Hohhot
    deadline: Mapped[dt.date | None] = mapped_column(Date, nullable=True)  # null once closed
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolution: Mapped[str] = mapped_column(Text, nullable=False, default="")


class CaseEvent(Base):
    """One step of a case: filed, assigned, answered, closed — who (and as what), when, why."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(Integer, nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16), nullable=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    by: Mapped[str] = mapped_column(String(64), nullable=False)
    by_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    deadline: Mapped[dt.date | None] = mapped_column(Date, nullable=True)  # the deadline this step set


class CaseAttachment(Base):
    """A file attached to a case, stored content-addressed (hub/cases/attachments.py) by `sha256`."""

    __tablename__ = "case_attachments"
    __table_args__ = (Index("ix_case_attachments_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(Integer, nullable=False)
    filename: Mapped[str] = mapped_column(String(200), nullable=False)
    media_type: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    added_by: Mapped[str] = mapped_column(String(64), nullable=False)


class ChangeGeneration(Base):
    """How many times a watched table has changed: bumped by a trigger in the changing transaction.

    One row per topic (the table's name); see hub/store/change_triggers.py and migration 0006.
    """

    __tablename__ = "change_generations"

    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(SEQ, nullable=False)


class ClusterMember(Base):
    """A running hub process and its last heartbeat (hub/cluster/members.py)."""

    __tablename__ = "cluster_members"

    member: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)


class PublishedKeyRecord(Base):
    """The public half of one hub host's signing key, published for the other hosts (keys/published.py).

    `jwk` is the canonical JSON of the public members only (kty, crv, x, y); `kid` its RFC 7638
    thumbprint. The life (`created`, `retired`, `verify_until`) and `signing` are the holding
    host's manifest's, as of `published_at`. `endorsement`: hex HMAC-SHA256 of the row's canonical
    statement with the hosts' cluster secret (keys/published.py `statement`), "" when the publishing
    host had none; a row is accepted only when it verifies. Private keys never enter the store.
    """

    __tablename__ = "published_keys"

    kid: Mapped[str] = mapped_column(String(128), primary_key=True)
    jwk: Mapped[str] = mapped_column(Text, nullable=False)
    alg: Mapped[str] = mapped_column(String(16), nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    signing: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    retired: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    verify_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    published_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    endorsement: Mapped[str] = mapped_column(String(64), nullable=False, default="", server_default="")


class FindingRecord(Base):
    """A dishonesty finding (失信认定) on one subject by one department, or by a list rule.

    `severity` is `general` (一般失信) or `serious` (严重失信); `basis` the code of the finding
    basis in the policy's credit catalogue; `records` a JSON list of {family, key} the finding
    rests on; `measures` a JSON list of proposed measure codes. Never deleted: `status` becomes
    `revoked` (with who, when and why) when the deciding department or a court revokes it.
    """

    __tablename__ = "credit_findings"
    __table_args__ = (Index("ix_credit_findings_subject_status", "subject", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(18), nullable=False)
    subject_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    severity: Mapped[str] = mapped_column(String(16), nullable=False)
    basis: Mapped[str] = mapped_column(String(64), nullable=False)
    facts: Mapped[str] = mapped_column(Text, nullable=False)
    legal_basis: Mapped[str] = mapped_column(Text, nullable=False)
    records: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    department: Mapped[str] = mapped_column(String(64), nullable=False)
    decided_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    measures: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # in_force | revoked
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the list rule that made it, if any
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(64), nullable=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class ListingRecord(Base):
    """A subject on the blacklist (严重失信主体名单, `black`) or the red list (守信激励, `red`).

    `listed_on` and `ends_on` are dates in Hohhot; `ends_on` null: while its rule holds (a
    rule-derived listing, e.g. a dishonest judgment debtor while the court's record stands).
    `status` is `listed` until a transition ends it: `expired` (its end date passed), `delisted`
    (its rule stopped holding), `repaired` (credit repair), `cancelled` (a court's cancellation or
    the deciding department's revocation of the finding). `rule` and `source_ref` name the list
    rule and the department record behind a rule-derived listing.
    """

    __tablename__ = "credit_listings"
    __table_args__ = (
        Index("ix_credit_listings_list_status", "list", "status", "id"),
        Index("ix_credit_listings_subject_status", "subject", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(18), nullable=False)
    subject_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    list: Mapped[str] = mapped_column(String(8), nullable=False)  # black | red
    basis: Mapped[str] = mapped_column(String(64), nullable=False)  # basis code or list rule name
    basis_text: Mapped[str] = mapped_column(Text, nullable=False)
    department: Mapped[str] = mapped_column(String(64), nullable=False)
    finding_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    listed_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    ends_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    ended_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(64), nullable=False)


class ListingEvent(Base):
    """One transition of a listing: listed, expired, delisted, repaired, cancelled — who, when, why."""

    __tablename__ = "credit_listing_events"
    __table_args__ = (Index("ix_credit_listing_events_listing", "listing_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    listing_id: Mapped[int] = mapped_column(Integer, nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    by: Mapped[str] = mapped_column(String(64), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)


class MeasureFeedback(Base):
    """实施反馈: a unit that ran a credit check recording which measure it actually applied."""

    __tablename__ = "credit_measure_feedback"
    __table_args__ = (Index("ix_credit_measure_feedback_department", "department", "measure"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    measure: Mapped[str] = mapped_column(String(32), nullable=False)
    subject: Mapped[str] = mapped_column(String(18), nullable=False)
    context: Mapped[str] = mapped_column(String(32), nullable=False)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False)
    department: Mapped[str] = mapped_column(String(64), nullable=False)  # the client's department, or its client id
    applied_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    check_request_id: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class RatingRecord(Base):
    """A rating snapshot: the level, score and supervision class one model version gave one
    subject, with its inputs (`explanation`: JSON of every indicator, the records behind it and
    its points), so it can be explained and reproduced. Never edited; the newest is current."""

    __tablename__ = "credit_ratings"
    __table_args__ = (Index("ix_credit_ratings_subject_id", "subject", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(18), nullable=False)
    subject_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    industry: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    level: Mapped[str] = mapped_column(String(4), nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    supervision_class: Mapped[str] = mapped_column(String(1), nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    policy_version: Mapped[str] = mapped_column(String(32), nullable=False)
    explanation: Mapped[str] = mapped_column(Text, nullable=False)
    trigger: Mapped[str] = mapped_column(String(16), nullable=False)  # on-demand | bulk | finding | schedule
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    rated_on: Mapped[dt.date] = mapped_column(Date, nullable=False)


class RatingJob(Base):
    """A district-wide rating run: resumable from `cursor` (the last subject key rated)."""

    __tablename__ = "credit_rating_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # running | done | failed | interrupted
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    cursor: Mapped[str] = mapped_column(String(18), nullable=False, default="")
    rated: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    by: Mapped[str] = mapped_column(String(64), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")


class ReviewItemRecord(Base):
    """A department's new PUBLIC record in the review before publication (hub/cases/review.py):
    `pending` from its first sighting until a reviewer approves or rejects it (who, when, why)."""

    __tablename__ = "review_items"
    __table_args__ = (
        Index("ux_review_items_record", "department", "family", "subject", "record_key", unique=True),
        Index("ix_review_items_status", "status", "first_seen_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    department: Mapped[str] = mapped_column(String(64), nullable=False)
    family: Mapped[str] = mapped_column(String(64), nullable=False)
    subject: Mapped[str] = mapped_column(String(18), nullable=False)
    record_key: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # pending | approved | rejected
    first_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
