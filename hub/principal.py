"""`Principal`: who is asking, as established by the endpoint the request came through."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client, or the anonymous public.

    `kind` is the client kind (public, department, bank, agency, platform, admin, subject);
    `scopes` are the OAuth2 scopes of its token; `purpose` the declared purpose, if any.
    """

    client_id: str | None
    kind: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    purpose: str | None = None
    token_id: str | None = None

    @classmethod
    def public(cls, public_scope: str = "credit:public") -> "Principal":
        return cls(client_id=None, kind="public", scopes=frozenset({public_scope}))

    @property
    def is_public(self) -> bool:
        return self.client_id is None
