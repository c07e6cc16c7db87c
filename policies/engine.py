"""`decide(policy, caller, family, field, ...)`: may this caller receive this field, and how?

Decisions are made before any connector is called, so a denied field is never fetched. The
rules, in order:

1. the field's class for the caller's kind (`Policy.class_of`); CONFIDENTIAL never leaves;
2. the class must be granted by one of the caller's scopes;
3. AUTHORIZED (授权查询) also needs a declared purpose among the client's allowed purposes;
4. AUTHORIZED data about a natural person also needs the person's consent on file
   (for this client and purpose, unexpired);
5. an allowed field carries the masking transform of the caller's audience, if the policy names one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .model import DisclosureClass, Policy

if TYPE_CHECKING:
    from .masking import Mask


class Caller(Protocol):
    """What the engine needs to know about a caller (see `hub.principal.Principal`)."""

    @property
    def kind(self) -> str: ...

    @property
    def scopes(self) -> frozenset[str]: ...


class Verdict(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"


class Reason(enum.Enum):
    """Why a field was allowed or denied (shown in dry runs and FORBIDDEN errors)."""

    GRANTED = "granted"
    CONFIDENTIAL = "confidential"  # 不予公开: never leaves its source
    NOT_GRANTED = "class not granted by the caller's scopes"
    NO_PURPOSE = "no purpose declared"
    PURPOSE_NOT_ALLOWED = "purpose not among the client's allowed purposes"
    NO_CONSENT = "no unexpired consent of the subject on file"
    SUBJECT_CAP = "the client's cap on distinct subjects for AUTHORIZED data is reached"  # set by the executor


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    disclosure: DisclosureClass
    reason: Reason = Reason.GRANTED
    mask: "Mask | None" = None

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW


def _purpose_reason(caller: Caller) -> Reason | None:
    purpose = getattr(caller, "purpose", None)
    if not purpose:
        return Reason.NO_PURPOSE
    if purpose not in getattr(caller, "allowed_purposes", frozenset()):
        return Reason.PURPOSE_NOT_ALLOWED
    return None


def decide(
    policy: Policy,
    caller: Caller,
    family: str,
    field: str,
    *,
    natural_person: bool = False,
    consented: bool = False,
) -> Decision:
    """Decide one field for one caller under one policy version.

    `natural_person` says the subject is a natural person; `consented` that a consent of that
    person for this caller and its declared purpose is on file and unexpired.
    """
    disclosure = policy.class_of((family, field), caller.kind)
    if disclosure is DisclosureClass.CONFIDENTIAL:
        return Decision(Verdict.DENY, disclosure, Reason.CONFIDENTIAL)
    if disclosure not in policy.granted(caller.scopes):
        return Decision(Verdict.DENY, disclosure, Reason.NOT_GRANTED)
    if disclosure is DisclosureClass.AUTHORIZED:
        refused = _purpose_reason(caller)
        if refused is not None:
            return Decision(Verdict.DENY, disclosure, refused)
        if natural_person and not consented:
            return Decision(Verdict.DENY, disclosure, Reason.NO_CONSENT)
    mask = policy.mask_for((family, field), policy.audience(caller.scopes))
    return Decision(Verdict.ALLOW, disclosure, Reason.GRANTED, mask)


def allowed_fields(policy: Policy, caller: Caller, family: str, fields: tuple[str, ...]) -> tuple[str, ...]:
    """The subset of `fields` the caller may receive, in order."""
    return tuple(f for f in fields if decide(policy, caller, family, f).allowed)
