"""Tables of the hub store (hub-owned state only; department data never lands here)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, PrimaryKeyConstraint, String, Text
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


class ObjectionRecord(Base):
    """An objection (异议) to one record: while open, the record is served flagged as disputed."""

    __tablename__ = "objections"
    __table_args__ = (Index("ix_objections_subject_family_status", "subject", "family", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(18), nullable=False)
    family: Mapped[str] = mapped_column(String(64), nullable=False)
    record_ref: Mapped[str] = mapped_column(String(200), nullable=False)  # the record's key (e.g. decision number)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # open | upheld | dismissed
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    filed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    filed_by: Mapped[str] = mapped_column(String(64), nullable=False)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)


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
