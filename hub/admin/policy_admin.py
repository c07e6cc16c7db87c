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
action carries `warning` (what widened), which lands in the audit entry.

Families and fields are named by their policy keys (`penalties`, `case_handler`) or by their
GraphQL names (`penalties`, `caseHandler`); `*` names every field of a family.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Sequence

from xinlian.hub.governance.policy_versions import PolicyHistory, PolicyHistoryEmpty, StoredPolicy
from xinlian.hub.store import Store
from xinlian.policies.changes import ALL_FIELDS, ClearOverride, PolicyChange, SetFieldClass, SetMask, SetScope
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


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise AdminInputError("reason: say why the policy changes (a policy change needs a reason)")
    return text


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

    async def _write(self, action: str, write: Callable[[], Awaitable[StoredPolicy]], **targets: Any) -> StoredPolicy:
        try:
            stored = await write()
        except (PolicyError, PolicyHistoryEmpty) as exc:  # PolicyChangeError is a PolicyError
            raise AdminInputError(str(exc)) from None
        self.actions.append(
            {"action": action, **{k: v for k, v in targets.items() if v is not None}, "version": stored.version}
        )
        if stored.active and self.take_effect is not None:
            await self.take_effect()
        return stored

    async def _active_policy(self) -> Policy | None:
        try:
            return (await self.history.active()).policy
        except PolicyHistoryEmpty:
            return None  # the change itself reports it

    async def change(
        self, action: str, changes: Sequence[PolicyChange], reason: str | None, *, activate: bool = True, **targets: Any
    ) -> StoredPolicy:
        """Store `changes` as the next version (activated unless `activate` is False)."""
        text = _reason(reason)
        return await self._write(
            action, lambda: self.history.change(changes, self.by, text, activate=activate), reason=text, **targets
        )

    async def set_field_class(
        self, family: str, field: str, disclosure: str, kind: str | None, reason: str | None, *, activate: bool = True,
        confirm_widening: bool = False,
    ) -> StoredPolicy:
        fam = family_name(family)
        name = field_name(fam, field)
        cls = disclosure_class(disclosure)
        kind = kind.strip() if kind and kind.strip() else None
        change = SetFieldClass(fam, name, cls, kind)
        _reason(reason)  # a missing reason is said first
        widened: list[str] = []
        policy = await self._active_policy()
        if policy is not None:
            names = FAMILIES[fam].field_names if name == ALL_FIELDS else (name,)
            for each in names:
                before = policy.class_of((fam, each), kind)
                if _RANK[cls] < _RANK[before]:
                    widened.append(f"{fam}.{each}{f' (for {kind})' if kind else ''}: {before.value} -> {cls.value}")
        warning = widening_warning(widened, confirm_widening)
        return await self.change(
            "setFieldClass", [change], reason, activate=activate, family=fam, field=name, disclosure_class=cls.value,
            kind=kind, warning=warning,
        )

    async def clear_override(
        self, family: str, field: str, kind: str, reason: str | None, *, activate: bool = True
    ) -> StoredPolicy:
        fam = family_name(family)
        name = field_name(fam, field)
        if not kind or not kind.strip():
            raise AdminInputError("kind: name the client kind whose override is cleared")
        return await self.change(
            "clearOverride", [ClearOverride(fam, name, kind.strip())], reason, activate=activate,
            family=fam, field=name, kind=kind.strip(),
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
        _reason(reason)
        policy = await self._active_policy()
        widened: list[str] = []
        if policy is not None and granted is not None:
            before = policy.scopes.get(scope, frozenset())
            more = sorted((c for c in granted - before), key=_RANK.__getitem__)
            if more:
                widened.append(f"scope {scope} now grants {', '.join(c.value for c in more)}")
        warning = widening_warning(widened, confirm_widening)
        return await self.change(
            "setScopeClasses", [SetScope(scope, granted)], reason, activate=activate, scope=scope,
            classes=None if granted is None else sorted(c.value for c in granted), warning=warning,
        )

    async def import_policy(self, toml_text: str, reason: str | None, *, activate: bool = True) -> StoredPolicy:
        text = _reason(reason)
        if not toml_text or not toml_text.strip():
            raise AdminInputError("toml: give the whole policy document")
        return await self._write(
            "importPolicy", lambda: self.history.import_text(toml_text, self.by, text, activate=activate), reason=text
        )

    async def activate(self, version: str, reason: str | None) -> StoredPolicy:
        text = _reason(reason)
        return await self._write(
            "activatePolicyVersion", lambda: self.history.activate(version, self.by, text), reason=text
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
