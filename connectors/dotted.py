"""Dotted paths into JSON documents: `"case.court.name"`, `"items.0.x"`, and the empty path (the root).

A `DottedPath` is parsed once, at configuration time, and then read from many decoded JSON
documents. A segment reads a member of an object; on an array, a segment of digits reads the
element at that index. Reading distinguishes two outcomes a connector treats differently:

- the path leads nowhere (a member is absent, an index is past the end, or a value on the
  way is ``null``): `resolve` returns `MISSING`, which a field mapping reads as "no value";
- the document has the wrong shape (the path goes *into* a string, number or boolean, or
  indexes an object with something that is not one of its members): `ShapeError`, which the
  connector reports as invalid upstream data naming the path.

Member names containing dots cannot be addressed; department APIs seen so far do not use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final


class _Missing:
    """The marker for "the path leads nowhere" (distinct from a JSON ``null`` value)."""

    _instance: "_Missing | None" = None

    def __new__(cls) -> "_Missing":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


class ShapeError(ValueError):
    """The document's shape does not allow the path (e.g. it goes into a string)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path or '(root)'}: {reason}")
        self.path = path
        self.reason = reason


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "a number" if isinstance(value, (int, float)) or type(value).__name__ == "Decimal" else type(value).__name__


@dataclass(frozen=True, slots=True)
class DottedPath:
    """A parsed path; `DottedPath.parse("")` is the document itself."""

    text: str
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> "DottedPath":
        """The path `text`; `ValueError` for empty segments ("a..b", ".a", "a.")."""
        text = text.strip()
        if not text:
            return cls("", ())
        segments = tuple(text.split("."))
        if any(not s.strip() or s != s.strip() for s in segments):
            raise ValueError(f"{text!r} is not a dotted path (segments must be non-empty, without spaces)")
        return cls(text, segments)

    def resolve(self, document: Any) -> Any:
        """The value at this path in `document`, `MISSING`, or `ShapeError` (see the module doc)."""
        value = document
        for depth, segment in enumerate(self.segments):
            if value is None:
                return MISSING
            if isinstance(value, dict):
                if segment not in value:
                    return MISSING
                value = value[segment]
            elif isinstance(value, list):
                if not segment.isdigit():
                    raise ShapeError(self.text, f"{'.'.join(self.segments[:depth]) or 'the document'} is an array, "
                                                f"not an object with {segment!r}")
                index = int(segment)
                if index >= len(value):
                    return MISSING
                value = value[index]
            else:
                where = ".".join(self.segments[:depth]) or "the document"
                raise ShapeError(self.text, f"{where} is {_kind(value)}, not an object or array")
        return value

    def __str__(self) -> str:
        return self.text


def describe(value: Any) -> str:
    """What kind of JSON value `value` is, for error messages ("an object", "a string", ...)."""
    return "null" if value is None else _kind(value)
