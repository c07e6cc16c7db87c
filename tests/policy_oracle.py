"""The disclosure rules stated independently of `policies.engine`, for property tests to check it against.

The five rules, as docs/policies.md and DESIGN §1/§3 state them, read straight off a policy's
data (its classes, per-kind overrides, scope grants and masks) without calling any of the
engine's code:

1. the field's class for the caller's kind: the kind's override, else the field's class, else
   CONFIDENTIAL (a field the policy does not name); CONFIDENTIAL never leaves its source;
2. the class must be granted by one of the caller's scopes;
3. AUTHORIZED needs a declared purpose among the client's allowed purposes;
4. AUTHORIZED data about a natural person needs the person's consent on file;
5. an allowed field carries the mask of the caller's audience — the widest class its scopes
   grant, SHARED above AUTHORIZED above PUBLIC; an AUTHORIZED audience without a mask of its own
   gets the PUBLIC one; `clear` means no mask. A `name` mask is for persons: on a field that names
   the record's own subject (the catalogue says which) it does not apply under a legal person,
   whose registered name is public.

A fixtures module, not a test file: test files import it instead of importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xinlian.policies import DisclosureClass
from xinlian.schema.catalogue import FAMILIES

PUBLIC, SHARED, AUTHORIZED, CONFIDENTIAL = (
    DisclosureClass.PUBLIC, DisclosureClass.SHARED, DisclosureClass.AUTHORIZED, DisclosureClass.CONFIDENTIAL,
)


@dataclass(frozen=True)
class Expected:
    allowed: bool
    disclosure: DisclosureClass
    reason: str  # the engine's `Reason` value the definition implies
    mask: str | None = None  # the mask's spec, e.g. "name", "round:100"


def expected_decision(
    policy: Any,
    *,
    kind: str,
    scopes: frozenset[str],
    purpose: str | None,
    allowed_purposes: frozenset[str],
    family: str,
    field: str,
    natural_person: bool = False,
    consented: bool = False,
    subject_names: bool = True,
) -> Expected:
    """What the definition says for one field (see the module docstring).

    `subject_names` False leaves out the last sentence of rule 5, which the executor applies (it
    knows whose record it is) and `policies.engine.decide` does not.
    """
    key = (family, field)
    override = dict(policy.kind_overrides.get(kind, {})).get(key)
    disclosure = override if override is not None else dict(policy.classes).get(key, CONFIDENTIAL)
    if disclosure is CONFIDENTIAL:
        return Expected(False, disclosure, "confidential")
    granted: set[DisclosureClass] = set()
    for scope in scopes:
        granted |= set(policy.scopes.get(scope, ()))
    if disclosure not in granted:
        return Expected(False, disclosure, "class not granted by the caller's scopes")
    if disclosure is AUTHORIZED:
        if not purpose:
            return Expected(False, disclosure, "no purpose declared")
        if purpose not in allowed_purposes:
            return Expected(False, disclosure, "purpose not among the client's allowed purposes")
        if natural_person and not consented:
            return Expected(False, disclosure, "no unexpired consent of the subject on file")
    audience = SHARED if SHARED in granted else AUTHORIZED if AUTHORIZED in granted else PUBLIC
    masks = dict(policy.masks.get(key, {}))
    mask = masks.get(audience)
    if mask is None and audience is AUTHORIZED:
        mask = masks.get(PUBLIC)
    spec = None if mask is None or mask.spec == "clear" else mask.spec
    if subject_names and spec == "name" and not natural_person and FAMILIES[family].field(field).names_subject:
        spec = None
    return Expected(True, disclosure, "granted", spec)
