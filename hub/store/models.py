"""Tables of the hub store (hub-owned state only; department data never lands here)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, PrimaryKeyConstraint, String, Text
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
