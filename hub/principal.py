"""`Principal`: who is asking, as established by the endpoint the request came through."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client, or the anonymous public.

    `kind` is the client kind (public, department, bank, agency, platform, admin, subject);
    `scopes` are the OAuth2 scopes of its token; `purpose` the purpose declared for this request
    (`Xinlian-Purpose` header, else the token's `purpose` claim), if any; `allowed_purposes` the
    purposes the client is registered for (a declared purpose outside them grants nothing);
    `subject_id` the credit subject a client of kind `subject` speaks for; `department` the
    department (its connector's name in the federation, e.g. "market") a `department` client
    speaks for: it records credit findings and listings for that department.
    """

    client_id: str | None
    kind: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    purpose: str | None = None
    token_id: str | None = None
    allowed_purposes: frozenset[str] = field(default_factory=frozenset)
    subject_id: str | None = None
    department: str | None = None

    @property
    def purpose_allowed(self) -> bool:
        """A purpose was declared and the client is registered for it."""
        return self.purpose is not None and self.purpose in self.allowed_purposes

    @classmethod
    def public(cls, public_scope: str = "credit:public") -> "Principal":
        return cls(client_id=None, kind="public", scopes=frozenset({public_scope}))

    @property
    def is_public(self) -> bool:
        return self.client_id is None
