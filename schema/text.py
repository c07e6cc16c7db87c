"""Free text a caller may send on to a department (search text), checked before any connector.

Some strings cannot safely reach a department system whatever its kind:

- a lone UTF-16 surrogate (U+D800–U+DFFF; JSON can carry one as ``"\\ud800"``) cannot be
  encoded as UTF-8, so every database driver and HTTP client raises on it;
- NUL (U+0000) is refused by PostgreSQL, and SQLite's LIKE stops reading its pattern there, so
  ``%<NUL>%`` would match every row;
- the other control characters (C0 except tab, DEL, C1) never occur in a name and only serve to
  confuse logs, terminals and department systems.

`refused_character` names the first such character (as ``U+XXXX``, never the character itself:
an error message must stay encodable), `validate_text` raises `InvalidText` for it. The hub
refuses such input with ``extensions.code = BAD_USER_INPUT`` before any connector is called,
and the connectors apply the same rule to what reaches them (`connectors.contract.caller_text`).
"""

from __future__ import annotations

import re

# C0 controls except tab, DEL, C1 controls, and every UTF-16 surrogate code point.
_REFUSED = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")


class InvalidText(ValueError):
    """Text holds a character the hub does not send to a department; the reason names it as U+XXXX."""


def refused_character(value: str) -> str | None:
    """The first refused character of `value` as ``U+XXXX`` (with what it is), or None if there is none."""
    found = _REFUSED.search(value)
    if found is None:
        return None
    point = ord(found.group())
    kind = "a lone surrogate" if 0xD800 <= point <= 0xDFFF else "a control character"
    return f"U+{point:04X} ({kind})"


def validate_text(value: str) -> str:
    """`value` unchanged, or `InvalidText` when it holds a refused character."""
    if not isinstance(value, str):
        raise InvalidText("must be a string")
    refused = refused_character(value)
    if refused is not None:
        raise InvalidText(f"contains {refused}, which is not allowed")
    return value
