"""Chinese credit-subject identifiers and their check characters.

- Unified social credit code (统一社会信用代码, GB 32100-2015) for legal persons.
- Resident identity number (公民身份号码, GB 11643-1999) for natural persons.

Inside a USCC, positions 3–8 are the administrative division (digits) and positions 9–17
the organisation code (组织机构代码, GB 11714-1997) with its own check character; both are
checked. A resident ID's birth date must be a real date between 1900-01-01 and today.

Both are validated before any connector is called; `InvalidIdentifier` carries a
human-readable reason that the hub returns with ``extensions.code = BAD_USER_INPUT``.
"""

from __future__ import annotations

import datetime as _dt

_ASCII_DIGITS = frozenset("0123456789")

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_ALPHABET)}

ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_CODE_VALUE = {**{d: int(d) for d in "0123456789"}, **{chr(65 + i): 10 + i for i in range(26)}}

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
ID_EARLIEST_BIRTH = _dt.date(1900, 1, 1)


class InvalidIdentifier(ValueError):
    """An identifier failed its format or check-character rule."""


def uscc_check_char(first17: str) -> str:
    """The check character (position 18) for the first 17 characters of a USCC."""
    if len(first17) != 17:
        raise InvalidIdentifier("a unified social credit code body has 17 characters")
    try:
        total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, USCC_WEIGHTS))
    except KeyError as exc:
        raise InvalidIdentifier(f"character {exc.args[0]!r} is not allowed in a unified social credit code") from None
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    """The check character (9th) of an organisation code (GB 11714) from its first 8 characters.

    Values: digits 0–9, letters A=10 … Z=35; c = 11 − Σ(value × weight) mod 11, 10 → X, 11 → 0.
    """
    if len(first8) != 8:
        raise InvalidIdentifier("an organisation code body has 8 characters")
    try:
        total = sum(_ORG_CODE_VALUE[ch] * w for ch, w in zip(first8, ORG_CODE_WEIGHTS))
    except KeyError as exc:
        raise InvalidIdentifier(f"character {exc.args[0]!r} is not allowed in an organisation code") from None
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def validate_uscc(value: str) -> str:
    """Return the normalised (upper-case) USCC or raise `InvalidIdentifier`."""
    if not isinstance(value, str):
        raise InvalidIdentifier("a unified social credit code must be a string")
    if not value.isascii():
        raise InvalidIdentifier("a unified social credit code has only ASCII letters and digits")
    code = value.strip().upper()
    if len(code) != 18:
        raise InvalidIdentifier(f"a unified social credit code has 18 characters, got {len(code)}")
    for ch in code:
        if ch not in _USCC_VALUE:
            raise InvalidIdentifier(
                f"character {ch!r} is not allowed in a unified social credit code (I, O, S, V, Z are excluded)"
            )
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise InvalidIdentifier(f"check character of {code} is wrong (expected {expected})")
    if not set(code[2:8]) <= _ASCII_DIGITS:
        raise InvalidIdentifier(
            f"administrative division {code[2:8]} (positions 3-8) of a unified social credit code must be digits"
        )
    org_expected = org_code_check_char(code[8:16])
    if code[16] != org_expected:
        raise InvalidIdentifier(
            f"organisation code {code[8:17]} (positions 9-17) has a wrong check character (expected {org_expected})"
        )
    return code


def id_check_char(first17: str) -> str:
    """The check character (position 18) for the first 17 digits of a resident ID."""
    if len(first17) != 17 or not set(first17) <= _ASCII_DIGITS:
        raise InvalidIdentifier("a resident identity number body has 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS))
    return ID_CHECK[total % 11]


def validate_resident_id(value: str) -> str:
    """Return the normalised resident identity number or raise `InvalidIdentifier`."""
    if not isinstance(value, str):
        raise InvalidIdentifier("a resident identity number must be a string")
    if not value.isascii():
        raise InvalidIdentifier("a resident identity number has only ASCII digits and X")
    code = value.strip().upper()
    if len(code) != 18:
        raise InvalidIdentifier(f"a resident identity number has 18 characters, got {len(code)}")
    body, check = code[:17], code[17]
    if not set(body) <= _ASCII_DIGITS or not (check in _ASCII_DIGITS or check == "X"):
        raise InvalidIdentifier("a resident identity number is 17 digits and a digit or X")
    try:
        born = _dt.date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        raise InvalidIdentifier(f"birth date {body[6:14]} in resident identity number is not a date") from None
    if not ID_EARLIEST_BIRTH <= born <= _dt.date.today():
        raise InvalidIdentifier(
            f"birth date {body[6:14]} in resident identity number is not between 1900-01-01 and today"
        )
    expected = id_check_char(body)
    if check != expected:
        raise InvalidIdentifier(f"check character of resident identity number is wrong (expected {expected})")
    return code


def validate_subject(value: str) -> str:
    """A credit subject's identifier, normalised: a USCC or a resident ID; `InvalidIdentifier`
    (naming both) otherwise."""
    try:
        return validate_uscc(value)
    except InvalidIdentifier:
        pass
    try:
        return validate_resident_id(value)
    except InvalidIdentifier:
        raise InvalidIdentifier(f"subject {value!r} is neither a valid USCC nor a valid resident ID") from None
