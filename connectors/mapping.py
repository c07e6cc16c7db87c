"""Declarative mappings from a department's own layout to the catalogue's record families.

A connector's configuration says, per record family it serves, where the records live (a
table and the column holding the subject key, optionally narrowed by equality filters) and,
per canonical field, where the value comes from and how to convert it:

    [connector.families.registration]
    table = "qy_jbxx"
    key = "tyshxydm"
    where = { sfyx = 1 }                     # optional: column = value, or column = [values]

    [connector.families.registration.fields]
    name = "qymc"                            # a column, converted to the catalogue's type
    status = { column = "djzt", map = { "1" = "存续", "2" = "吊销", "3" = "注销" } }
    established_date = { column = "clrq", date_format = "%Y%m%d" }
    registered_capital = { column = "zczb", scale = 0.0001 }     # yuan → 万元
    data_source_unit = { value = "新城区市场监督管理局" }          # a constant

This module owns parsing and validating that configuration against `schema.catalogue` (an
unknown family, field or option is an error naming it) and converting one raw value or row
into catalogue types (str, datetime.date, decimal.Decimal, int). It knows nothing about SQL:
`FamilyMapping.table`/`key` name where records are; each connector kind decides what that means.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from xinlian.schema.catalogue import FAMILIES, ValueType

Record = dict[str, Any]

TYPE_NAMES: dict[str, ValueType] = {
    "string": ValueType.STRING, "str": ValueType.STRING,
    "date": ValueType.DATE,
    "decimal": ValueType.DECIMAL,
    "int": ValueType.INT, "integer": ValueType.INT,
}
FIELD_OPTIONS = frozenset({"column", "value", "map", "date_format", "scale", "type"})
FAMILY_OPTIONS = frozenset({"table", "schema", "key", "where", "fields"})


class ConnectorConfigError(ValueError):
    """A connector configuration is invalid; the message names the connector and the item."""


class ConversionError(ValueError):
    """A department's value cannot be converted to the field's type (→ `UpstreamInvalid`)."""

    def __init__(self, field: str, source: str | None, reason: str) -> None:
        where = f" (column {source})" if source else ""
        super().__init__(f"{field}{where}: {reason}")
        self.field = field
        self.source = source
        self.reason = reason


def _shown(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, (str, bytes)) and not raw.strip())


def _as_text(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8").strip()
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, decimal.Decimal) and raw == raw.to_integral_value():
        return str(int(raw))
    if isinstance(raw, dt.datetime):
        return raw.isoformat(sep=" ")
    return str(raw).strip()


def to_date(raw: Any, date_format: str | None) -> dt.date:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if isinstance(raw, (str, bytes, int)) and not isinstance(raw, bool):
        text = _as_text(raw)
        try:
            if date_format:
                return dt.datetime.strptime(text, date_format).date()
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            return dt.datetime.fromisoformat(text).date()
        except ValueError:
            expected = f"date format {date_format}" if date_format else "an ISO date (YYYY-MM-DD)"
            raise ValueError(f"{_shown(raw)} is not {expected}") from None
    raise ValueError(f"{_shown(raw)} ({type(raw).__name__}) is not a date")


MAX_EXPONENT = 18  # no amount, count or year of a credit record is anywhere near 10^18


def to_decimal(raw: Any) -> decimal.Decimal:
    if isinstance(raw, bool):
        raise ValueError(f"{_shown(raw)} is not a number")
    try:
        if isinstance(raw, decimal.Decimal):
            value = raw
        elif isinstance(raw, (int, float)):
            value = decimal.Decimal(str(raw))
        elif isinstance(raw, (str, bytes)):
            value = decimal.Decimal(_as_text(raw).replace(",", ""))
        else:
            raise decimal.InvalidOperation
    except (decimal.InvalidOperation, ValueError):
        raise ValueError(f"{_shown(raw)} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{_shown(raw)} is not a finite number")
    if value and not -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT:
        # '1E+300000' is 11 characters but a 300,001-digit integer: refuse before any arithmetic
        raise ValueError(f"{_shown(raw)} is out of range")
    return value


def to_int(raw: Any) -> int:
    value = to_decimal(raw)
    if value != value.to_integral_value():
        raise ValueError(f"{_shown(raw)} is not a whole number")
    return int(value)


def _tidy(value: decimal.Decimal) -> decimal.Decimal:
    """A scaled amount without the trailing zeros scaling adds (50.0000 → 50, 0.1250 → 0.125)."""
    tidy = value.normalize()
    return tidy.quantize(decimal.Decimal(1)) if tidy.as_tuple().exponent > 0 else tidy  # type: ignore[operator]


def to_text(value: Any) -> str:
    """The canonical text of a converted value (for String fields read through another type)."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return _as_text(value)


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Where one canonical field comes from and how its value is converted."""

    name: str
    type: ValueType  # the conversion target: the catalogue's type unless overridden
    target: ValueType  # the catalogue's type (what the record finally carries)
    source: str | None = None  # column (SQL) the raw value is read from; None for a constant
    constant: Any = None
    codes: Mapping[str, Any] | None = None
    date_format: str | None = None
    scale: decimal.Decimal | None = None
    allowed: frozenset[str] | None = None  # the catalogue's allowed values; anything else is refused

    def convert(self, raw: Any) -> Any:
        """The catalogue value for a raw department value; `ConversionError` if impossible."""
        if self.source is None:
            raw = self.constant
        if _blank(raw):
            return None
        try:
            if self.codes is not None:
                code = _as_text(raw)
                if code not in self.codes:
                    raise ValueError(f"unknown code {_shown(code)} (known: {', '.join(sorted(self.codes))})")
                raw = self.codes[code]
            value = self._typed(raw)
        except ValueError as exc:
            raise ConversionError(self.name, self.source, str(exc)) from None
        except ArithmeticError:  # decimal overflow or invalid operation while scaling
            raise ConversionError(self.name, self.source, f"{_shown(raw)} is out of range") from None
        if self.target is ValueType.STRING and self.type is not ValueType.STRING:
            value = to_text(value)
        if self.allowed is not None and value not in self.allowed:
            raise ConversionError(
                self.name, self.source, f"{_shown(value)} is not an allowed value (allowed: {', '.join(sorted(self.allowed))})"
            )
        return value

    def _typed(self, raw: Any) -> Any:
        if self.type is ValueType.STRING:
            return _as_text(raw)
        if self.type is ValueType.DATE:
            return to_date(raw, self.date_format)
        if self.type is ValueType.INT:
            return to_int(raw)
        value = to_decimal(raw)
        return _tidy(value * self.scale) if self.scale is not None else value


@dataclass(frozen=True, slots=True)
class FamilyMapping:
    """Where one record family's records live in a department system, field by field."""

    family: str
    table: str
    key: str
    fields: Mapping[str, FieldMapping]
    schema: str | None = None
    where: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # (column, allowed values), all must hold

    def columns_for(self, fields: Sequence[str]) -> tuple[str, ...]:
        """The source columns needed for `fields`, in order, without duplicates or constants."""
        columns = (self.fields[f].source for f in fields)
        return tuple(dict.fromkeys(c for c in columns if c is not None))

    def record(self, row: Mapping[str, Any], fields: Sequence[str]) -> Record:
        """A record with exactly `fields`, converted from a row keyed by column name."""
        out: Record = {}
        for name in fields:
            spec = self.fields[name]
            out[name] = spec.convert(row[spec.source] if spec.source is not None else None)
        return out


@dataclass(frozen=True, slots=True)
class SearchField:
    """The family and field a connector's `search` looks in (a plain text column)."""

    family: str
    field: str


# ---- parsing ---------------------------------------------------------------------------


def _fail(where: str, message: str) -> ConnectorConfigError:
    return ConnectorConfigError(f"{where}: {message}")


def _name(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"{what} must be a non-empty string")
    return value.strip()


def parse_field(family: str, name: str, raw: Any, where: str) -> FieldMapping:
    field_spec = FAMILIES[family].field(name)
    target = field_spec.type
    if isinstance(raw, str):
        raw = {"column": raw}
    if not isinstance(raw, dict):
        raise _fail(where, "give a column name or a table {column = ..., ...}")
    unknown = sorted(set(raw) - FIELD_OPTIONS)
    if unknown:
        raise _fail(where, f"unknown option {unknown[0]!r} (options: {', '.join(sorted(FIELD_OPTIONS))})")
    if ("column" in raw) == ("value" in raw):
        raise _fail(where, "give exactly one of 'column' or 'value'")
    source = _name(raw["column"], where, "column") if "column" in raw else None
    kind = target
    if "type" in raw:
        type_name = raw["type"]
        if not isinstance(type_name, str) or type_name.lower() not in TYPE_NAMES:
            raise _fail(where, f"unknown type {type_name!r} (types: string, date, decimal, int)")
        kind = TYPE_NAMES[type_name.lower()]
        if kind is not target and target is not ValueType.STRING:
            raise _fail(where, f"type {type_name!r} cannot feed a {target.value} field")
    codes = raw.get("map")
    if codes is not None and (not isinstance(codes, dict) or not codes):
        raise _fail(where, "map must be a non-empty table {code = value}")
    date_format = raw.get("date_format")
    if date_format is not None and (kind is not ValueType.DATE or not isinstance(date_format, str)):
        raise _fail(where, "date_format applies to date values only and must be a string")
    scale = raw.get("scale")
    if scale is not None:
        if kind is not ValueType.DECIMAL or isinstance(scale, bool) or not isinstance(scale, (int, float, str)):
            raise _fail(where, "scale applies to decimal values only and must be a number")
        try:
            scale = to_decimal(scale)
        except ValueError:
            raise _fail(where, f"scale {scale!r} is not a number") from None
    mapping = FieldMapping(
        name=name, type=kind, target=target, source=source, constant=raw.get("value"),
        codes=dict(codes) if codes else None, date_format=date_format, scale=scale,
        allowed=frozenset(field_spec.allowed) or None,
    )
    if source is None:  # a constant must convert now, not on the first request
        try:
            mapping.convert(None)
        except ConversionError as exc:
            raise _fail(where, f"value: {exc.reason}") from None
    return mapping


def parse_filters(raw: Any, where: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """`{name = value or [values]}` equality filters (a family's `where`, a REST `expect`)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise _fail(where, "where must be a table {column = value or [values]}")
    out = []
    for column, value in raw.items():
        values = tuple(value) if isinstance(value, list) else (value,)
        if not values or any(isinstance(v, (dict, list)) for v in values):
            raise _fail(f"{where}.{column}", "a filter value is a string, number, boolean or date, or a list of them")
        out.append((column, values))
    return tuple(out)


def parse_family(family: str, raw: Any, where: str) -> FamilyMapping:
    if family not in FAMILIES:
        raise _fail(where, f"unknown record family {family!r} (families: {', '.join(FAMILIES)})")
    if not isinstance(raw, dict):
        raise _fail(where, "a family mapping is a table with table, key and fields")
    unknown = sorted(set(raw) - FAMILY_OPTIONS)
    if unknown:
        raise _fail(where, f"unknown option {unknown[0]!r} (options: {', '.join(sorted(FAMILY_OPTIONS))})")
    fields_raw = raw.get("fields")
    if not isinstance(fields_raw, dict) or not fields_raw:
        raise _fail(where, "fields must map at least one catalogue field")
    known = FAMILIES[family].field_names
    fields: dict[str, FieldMapping] = {}
    for name, spec in fields_raw.items():
        if name not in known:
            raise _fail(f"{where}.fields", f"unknown field {name!r} of {family} (fields: {', '.join(known)})")
        fields[name] = parse_field(family, name, spec, f"{where}.fields.{name}")
    schema = raw.get("schema")
    return FamilyMapping(
        family=family,
        table=_name(raw.get("table"), where, "table"),
        key=_name(raw.get("key"), where, "key"),
        fields=fields,
        schema=_name(schema, where, "schema") if schema is not None else None,
        where=parse_filters(raw.get("where"), f"{where}.where"),
    )


def parse_families(raw: Any, where: str) -> dict[str, FamilyMapping]:
    """Every `[connector.families.<family>]` table of one connector, validated."""
    if not isinstance(raw, dict) or not raw:
        raise _fail(where, "families must map at least one record family")
    return {family: parse_family(family, spec, f"{where}.{family}") for family, spec in raw.items()}


def parse_search(raw: Any, families: Mapping[str, FamilyMapping], where: str) -> SearchField | None:
    """The optional `search = {family = ..., field = ...}`: a mapped, unconverted text column."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"family", "field"}:
        raise _fail(where, "search is a table {family = ..., field = ...}")
    family, field = raw["family"], raw["field"]
    if family not in families:
        raise _fail(where, f"family {family!r} is not mapped by this connector")
    spec = families[family].fields.get(field)
    if spec is None:
        raise _fail(where, f"field {field!r} of {family} is not mapped by this connector")
    if spec.source is None or spec.codes is not None or spec.type is not ValueType.STRING:
        raise _fail(where, f"search field {field!r} must be a plain text column")
    return SearchField(family, field)
