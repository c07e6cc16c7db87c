"""`decide(principal, family, field)`: may this caller receive this field?

Decisions are made before any connector is called, so a denied field is never fetched.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from .model import DisclosureClass, Policy


class Caller(Protocol):
    """What the engine needs to know about a caller (see `hub.principal.Principal`)."""

    @property
    def kind(self) -> str: ...

    @property
    def scopes(self) -> frozenset[str]: ...


class Verdict(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    disclosure: DisclosureClass

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW


def decide(policy: Policy, caller: Caller, family: str, field: str) -> Decision:
    """Decide one field for one caller under one policy version."""
    disclosure = policy.class_of((family, field), caller.kind)
    if disclosure is DisclosureClass.CONFIDENTIAL:
        return Decision(Verdict.DENY, disclosure)
    granted = policy.granted(caller.scopes)
    return Decision(Verdict.ALLOW if disclosure in granted else Verdict.DENY, disclosure)


def allowed_fields(policy: Policy, caller: Caller, family: str, fields: tuple[str, ...]) -> tuple[str, ...]:
    """The subset of `fields` the caller may receive, in order."""
    return tuple(f for f in fields if decide(policy, caller, family, f).allowed)
