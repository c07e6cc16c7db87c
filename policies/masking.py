"""Masking transforms (脱敏): what a field's value becomes for an audience that may see it only in part.

A policy names a transform per field per audience class (`[masks.<family>] <field> = { PUBLIC =
"resident_id" }`). Transforms are pure functions of the value; a value that is None stays None,
and a value the transform cannot read is withheld (None), never passed through in clear.

| spec          | example                                   |
|---------------|-------------------------------------------|
| `resident_id` | `150102199003071234` → `1501**********1234` (first 4 and last 4 kept) |
| `uscc`        | `91150102MA0N2X3Y4Z` → `911501**********4Z` |
| `name`        | `张三` → `张*`, `乌云其木格` → `乌****`, `阿依古丽·买买提` → `阿******`, `Zhang San` → `Z********` |
| `phone`       | `13812345678` → `138****5678`              |
| `round:N`     | `12345.67` with N = 1000 → `12000` (half up, to a multiple of N) |
| `redact`      | anything → `***`                          |
| `clear`       | the value as it is (an AUTHORIZED audience otherwise gets the PUBLIC mask) |
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from typing import Any, Callable

from .model import PolicyError

REDACTED = "***"


def _keep_ends(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail:]


def mask_resident_id(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return _keep_ends(value.strip(), 4, 4)


def mask_uscc(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return _keep_ends(value.strip(), 6, 2)


NAME_DOTS = "·•・．‧∙⋅"
"""The middle dot of transliterated names (阿依古丽·买买提) and the look-alikes typed for it."""


def mask_name(value: Any) -> str | None:
    """A natural person's name keeps its first character only, whatever its length or script.

    周五 → 周*, 乌云其木格 → 乌****, 阿依古丽·买买提 → 阿******, Zhang San → Z********: one `*`
    per character after the first, middle dots dropped (they would tell how many parts the name
    has). There is no exception for long names (Mongolian and Uyghur names are often five
    characters or more); a legal person's name is public and is not given this mask.
    """
    if not isinstance(value, str):
        return None
    text = "".join(c for c in value if c not in NAME_DOTS).strip()
    if not text:
        return text
    return text[0] + "*" * (len(text) - 1)


def mask_phone(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return _keep_ends(value.strip(), 3, 4)


def redact(value: Any) -> str:
    return REDACTED


def _rounder(step: decimal.Decimal) -> Callable[[Any], Any]:
    def round_to(value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            return None
        try:
            number = decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            return None
        if not number.is_finite():
            return None
        rounded = (number / step).quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP) * step
        if isinstance(value, int):
            return int(rounded)
        return float(rounded) if isinstance(value, float) else rounded

    return round_to


_FIXED: dict[str, Callable[[Any], Any]] = {
    "resident_id": mask_resident_id,
    "uscc": mask_uscc,
    "name": mask_name,
    "phone": mask_phone,
    "redact": redact,
    "clear": lambda value: value,
}


@dataclass(frozen=True)
class Mask:
    """A named transform, parsed once from its spec (`round:1000`, `name`, ...)."""

    spec: str
    transform: Callable[[Any], Any] = field(compare=False, repr=False)

    def __call__(self, value: Any) -> Any:
        if value is None:
            return None
        return self.transform(value)


def parse_mask(spec: Any, where: str = "mask") -> Mask:
    """The transform a spec names; `PolicyError` for an unknown or malformed one."""
    if not isinstance(spec, str) or not spec:
        raise PolicyError(f"{where}: a mask is a string such as 'resident_id' or 'round:1000'")
    if spec in _FIXED:
        return Mask(spec, _FIXED[spec])
    if spec.startswith("round:"):
        try:
            step = decimal.Decimal(spec.removeprefix("round:"))
        except decimal.InvalidOperation:
            step = decimal.Decimal(0)
        if not step.is_finite() or step <= 0:
            raise PolicyError(f"{where}: {spec!r}: round needs a positive step, e.g. 'round:1000'")
        return Mask(spec, _rounder(step))
    names = ", ".join([*_FIXED, "round:N"])
    raise PolicyError(f"{where}: unknown mask {spec!r} (one of: {names})")


MASK_NAMES: tuple[str, ...] = (*_FIXED, "round:N")
