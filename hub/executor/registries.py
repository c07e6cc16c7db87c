"""Which registry confirms that a subject exists, per registration authority (USCC position 1).

Configured as data in `connectors.toml`:

```toml
[registries]
"9" = "*"               # enterprises: every source of the registration family (market regulation)
"5" = ["civil-affairs"] # social organisations: the civil affairs bureau's registry
```

An authority without an entry has no registry: its subjects are admitted and their families
answer (a subject with records but no registry answer is still returned).
"""

from __future__ import annotations

from typing import Any, Collection, Mapping

# registration authority (USCC position 1) → the connectors that are its registry; None: every
# source of the `registration` family. Market regulation (9) registers enterprises; authorities
# without an entry (1 public institutions, 5 social organisations, Y others, …) have no registry.
EVERY_REGISTRATION_SOURCE = None
DEFAULT_REGISTRIES: Mapping[str, tuple[str, ...] | None] = {"9": EVERY_REGISTRATION_SOURCE}
USCC_AUTHORITIES = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")


def parse_registries(raw: Any, connectors: Collection[str], where: str = "registries") -> dict[str, tuple[str, ...] | None]:
    """A `[registries]` table (authority code = [connector names]) → the admission's registries.

    Each key is one registration-authority character (`"9"`, `"5"`, `"1"`, `"Y"`); each value a
    non-empty list of configured connector names, or `"*"` for every source of `registration`.
    An authority left out has no registry: its subjects are admitted and their families answer.
    """
    if raw is None:
        return dict(DEFAULT_REGISTRIES)
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a table of authority code = [connector names]")
    out: dict[str, tuple[str, ...] | None] = {}
    for authority, names in raw.items():
        if not isinstance(authority, str) or len(authority) != 1 or authority.upper() not in USCC_AUTHORITIES:
            raise ValueError(f"{where}: {authority!r} is not a registration authority code (one USCC character)")
        if names == "*":
            out[authority.upper()] = EVERY_REGISTRATION_SOURCE
            continue
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"{where}.{authority}: give a non-empty array of connector names, or \"*\"")
        unknown = sorted(set(names) - set(connectors))
        if unknown:
            raise ValueError(f"{where}.{authority}: unknown connector {unknown[0]!r}")
        out[authority.upper()] = tuple(dict.fromkeys(names))
    return out
