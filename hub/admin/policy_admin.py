"""`PolicyOperations`: administrative changes to the disclosure policy, each one a new version.

The admin API (`/admin/graphql`) and the CLI (`xinlian policy ...`) both change the policy
through this class, so they check names, classes and reasons alike. Every change names a
non-empty reason and is made by one administrator (`by`); it goes through
`PolicyHistory` (`hub.governance.policy_versions`), which applies it to the active version,
validates the result and stores it as the next version, activated. Bad input — an unknown family,
field, class or version, a change that changes nothing, an empty reason — raises
`AdminInputError` and stores nothing. Each change appends an action (`setFieldClass`,
`clearOverride`, `setMask`, `setScopeClasses`, `importPolicy`, `activatePolicyVersion`) with
its target, the new version and the reason, for the audit entry.

Widening needs confirming: a change that moves a field (or an override) to a wider class
(CONFIDENTIAL → AUTHORIZED → SHARED → PUBLIC), or makes a scope grant a class it did not, is
refused with `AdminInputError` unless the caller passes `confirm_widening=True` (CLI
`--confirm-widening`, admin API `confirmWidening: true`); a confirmed widening is stored and its
action carries `warning` (what widened), which lands in the audit entry. `policy_widenings`
computes what widens between the active policy and the one that would come into force, for
every change: `set_field_class` and `set_scope_classes` (on the previewed result), a whole
document (`import_policy`) and an activation (`activate`). An import stored without activating
needs no confirmation (its action warns what activating it would widen); its activation does.
Masks are not part of the check (nor is `set_mask`): the class decides whether a caller
receives a field at all, a mask only how much of it; `policy diff` shows mask changes.

Families and fields are named by their policy keys (`penalties`, `case_handler`) or by their
GraphQL names (`penalties`, `caseHandler`); `*` names every field of a family.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Sequence

from xinlian.hub.governance.policy_versions import PolicyHistory, PolicyHistoryEmpty, StoredPolicy
from xinlian.hub.store import Store
from xinlian.policies.changes import (
    ALL_FIELDS,
    ClearOverride,
    PolicyChange,
    SetFieldClass,
    SetMask,
    SetScope,
)
from xinlian.policies.model import DisclosureClass, Policy, PolicyError
from xinlian.schema.catalogue import FAMILIES

from .operations import AdminInputError

TakeEffect = Callable[[], Awaitable[None]]


def family_name(name: str) -> str:
    """A record family's policy key from its policy key or its GraphQL field name."""
    name = (name or "").strip()
    if name in FAMILIES:
        return name
    for family in FAMILIES.values():
        if family.graphql_field == name:
            return family.name
    raise AdminInputError(f"unknown record family {name!r} (one of: {', '.join(FAMILIES)})")


def field_name(family: str, name: str) -> str:
    """A field's policy key (or `*`) from its policy key or its GraphQL name."""
    name = (name or "").strip()
    spec = FAMILIES[family]
    if name == ALL_FIELDS or name in spec.field_names:
        return name
    for field in spec.fields:
        if field.graphql_name == name:
            return field.name
    raise AdminInputError(f"{family}: unknown field {name!r} (one of: {', '.join(spec.field_names)})")


def disclosure_class(value: str, where: str = "disclosureClass") -> DisclosureClass:
    try:
        return DisclosureClass(str(value).strip().upper())
    except ValueError:
        names = ", ".join(c.value for c in DisclosureClass)
        raise AdminInputError(f"{where}: {value!r} is not a disclosure class ({names})") from None


# narrowest last: a move to a lower rank widens who may see the field
_RANK = {DisclosureClass.PUBLIC: 0, DisclosureClass.SHARED: 1, DisclosureClass.AUTHORIZED: 2,
         DisclosureClass.CONFIDENTIAL: 3}
CONFIRM_HINT = "confirm with --confirm-widening (admin API: confirmWidening: true)"


def widening_warning(what: Sequence[str], confirm: bool) -> str | None:
    """The audit warning for a confirmed widening; `AdminInputError` for an unconfirmed one; None if none."""
    if not what:
        return None
    text = "widens disclosure: " + "; ".join(what)
    if not confirm:
        raise AdminInputError(f"{text}; {CONFIRM_HINT}")
    return text


def policy_widenings(before: Policy, after: Policy) -> list[str]:
    """What `after` discloses that `before` did not, one line each (empty: nothing widens).

    A field (catalogue order) whose class becomes wider, for every client (`fam.field: A -> B`)
    or through a client kind's override (`fam.field (for bank): A -> B`, only where that kind
    has an override in either policy: otherwise it follows the base line); a scope granting a
    class it did not (`scope S now grants C`); a public scope that grants classes the old one
    did not. Masks are not compared (see the module docstring).
    """
    out: list[str] = []
    kinds = sorted(set(before.kind_overrides) | set(after.kind_overrides))
    for family in FAMILIES.values():
        for name in family.field_names:
            key = (family.name, name)
            for kind in (None, *kinds):
                if kind is not None and key not in before.kind_overrides.get(kind, {}) \
                        and key not in after.kind_overrides.get(kind, {}):
                    continue
                old, new = before.class_of(key, kind), after.class_of(key, kind)
                if _RANK[new] < _RANK[old]:
                    out.append(f"{family.name}.{name}{f' (for {kind})' if kind else ''}: {old.value} -> {new.value}")
    for scope in sorted(after.scopes):
        more = sorted(after.scopes[scope] - before.scopes.get(scope, frozenset()), key=_RANK.__getitem__)
        if more:
            out.append(f"scope {scope} now grants {', '.join(c.value for c in more)}")
    if after.public_scope != before.public_scope:
        more = sorted(after.scopes[after.public_scope] - before.scopes[before.public_scope], key=_RANK.__getitem__)
        if more:
            out.append(f"public scope {before.public_scope} -> {after.public_scope} grants {', '.join(c.value for c in more)}")
    return out


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise AdminInputError("reason: say why the policy changes (a policy change needs a reason)")
    return text


class WideningCheck:
    """The widening rule, run by `PolicyHistory` inside the policy lock (a `Vet`), so it compares
    with the version really in force at the write, not one read before it (another administrator
    may activate a narrower version in between). Unconfirmed, a write that would put a wider
    policy in force raises `AdminInputError` and nothing is stored; confirmed, `warning` says what
    widened, for the audit entry. A version stored without activating it only gets a warning of
    what activating it would widen (`activate` checks again then)."""

    def __init__(self, confirm: bool, *, activates: bool) -> None:
        self.confirm = confirm
        self.activates = activates
        self.warning: str | None = None

    def __call__(self, active: Policy | None, after: Policy) -> None:
        widened = [] if active is None else policy_widenings(active, after)
        if self.activates:
            self.warning = widening_warning(widened, self.confirm)
        else:
            self.warning = f"not active; activating it {widening_warning(widened, True)}" if widened else None


class PolicyOperations:
    """Policy changes by one administrator; `take_effect` makes an activation apply in this process."""

    def __init__(
        self,
        store: Store,
        by: str,
        take_effect: TakeEffect | None = None,
        actions: list[dict[str, Any]] | None = None,
    ) -> None:
        self.history = PolicyHistory(store)
        self.by = by
        self.take_effect = take_effect
        self.actions: list[dict[str, Any]] = [] if actions is None else actions

    async def _write(
        self, action: str, write: Callable[[], Awaitable[StoredPolicy]], check: "WideningCheck | None" = None,
        **targets: Any,
    ) -> StoredPolicy:
        try:
            stored = await write()
        except (PolicyError, PolicyHistoryEmpty) as exc:  # PolicyChangeError is a PolicyError
            raise AdminInputError(str(exc)) from None
        if check is not None:
            targets["warning"] = check.warning
        self.actions.append(
            {"action": action, **{k: v for k, v in targets.items() if v is not None}, "version": stored.version}
        )
        if stored.active and self.take_effect is not None:
            await self.take_effect()
        return stored

    async def change(
        self, action: str, changes: Sequence[PolicyChange], reason: str | None, *, activate: bool = True,
        confirm_widening: bool = False, **targets: Any,
    ) -> StoredPolicy:
        """Store `changes` as the next version (activated unless `activate` is False); what it
        widens against the version in force is checked under the policy lock (`WideningCheck`)."""
        text = _reason(reason)
        check = WideningCheck(confirm_widening, activates=activate)
        return await self._write(
            action, lambda: self.history.change(changes, self.by, text, activate=activate, vet=check), check,
            reason=text, **targets,
        )

    async def set_field_class(
        self, family: str, field: str, disclosure: str, kind: str | None, reason: str | None, *, activate: bool = True,
        confirm_widening: bool = False,
    ) -> StoredPolicy:
        fam = family_name(family)
        name = field_name(fam, field)
        cls = disclosure_class(disclosure)
        kind = kind.strip() if kind and kind.strip() else None
        return await self.change(
            "setFieldClass", [SetFieldClass(fam, name, cls, kind)], reason, activate=activate,
            confirm_widening=confirm_widening, family=fam, field=name, disclosure_class=cls.value, kind=kind,
        )

    async def clear_override(
        self, family: str, field: str, kind: str, reason: str | None, *, activate: bool = True,
        confirm_widening: bool = False,
    ) -> StoredPolicy:
        """Remove a kind's override; where the override was narrower than the base line, the
        kind then sees more: that widening needs confirming like any other."""
        fam = family_name(family)
        name = field_name(fam, field)
        if not kind or not kind.strip():
            raise AdminInputError("kind: name the client kind whose override is cleared")
        return await self.change(
            "clearOverride", [ClearOverride(fam, name, kind.strip())], reason, activate=activate,
            confirm_widening=confirm_widening, family=fam, field=name, kind=kind.strip(),
        )

    async def set_mask(
        self, family: str, field: str, audience: str, mask: str | None, reason: str | None, *, activate: bool = True
    ) -> StoredPolicy:
        fam = family_name(family)
        name = field_name(fam, field)
        who = disclosure_class(audience, "audience")
        spec = mask.strip() if mask and mask.strip() else None
        return await self.change(
            "setMask", [SetMask(fam, name, who, spec)], reason, activate=activate,
            family=fam, field=name, audience=who.value, mask=spec or "",
        )

    async def set_scope_classes(
        self, scope: str, classes: list[str] | None, reason: str | None, *, activate: bool = True,
        confirm_widening: bool = False,
    ) -> StoredPolicy:
        granted = None if classes is None else frozenset(disclosure_class(c, "classes") for c in classes)
        return await self.change(
            "setScopeClasses", [SetScope(scope, granted)], reason, activate=activate,
            confirm_widening=confirm_widening, scope=scope,
            classes=None if granted is None else sorted(c.value for c in granted),
        )

    async def import_policy(
        self, toml_text: str, reason: str | None, *, activate: bool = True, confirm_widening: bool = False
    ) -> StoredPolicy:
        """Store a whole document; if it is activated, what it widens needs confirming. Stored only
        (`activate=False`), its action warns what activating it would widen: `activate` checks."""
        text = _reason(reason)
        if not toml_text or not toml_text.strip():
            raise AdminInputError("toml: give the whole policy document")
        check = WideningCheck(confirm_widening, activates=activate)
        return await self._write(
            "importPolicy", lambda: self.history.import_text(toml_text, self.by, text, activate=activate, vet=check),
            check, reason=text,
        )

    async def activate(self, version: str, reason: str | None, *, confirm_widening: bool = False) -> StoredPolicy:
        """Put a stored version in force; what it widens against the active one needs confirming."""
        text = _reason(reason)
        check = WideningCheck(confirm_widening, activates=True)
        return await self._write(
            "activatePolicyVersion", lambda: self.history.activate(version, self.by, text, vet=check), check,
            reason=text,
        )

    async def get(self, version: str) -> StoredPolicy:
        stored = await self.history.get(version)
        if stored is None:
            raise AdminInputError(f"no policy version {version!r} (versions are named v1, v2, ...)")
        return stored

    async def diff(self, a: str, b: str) -> list[str]:
        await self.get(a)
        await self.get(b)
        try:
            return await self.history.diff(a, b)
        except PolicyError as exc:
            raise AdminInputError(str(exc)) from None
