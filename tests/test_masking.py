"""Masking transforms: each keeps exactly what it promises and withholds what it cannot read."""

from __future__ import annotations

import decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xinlian.policies import PolicyError
from xinlian.policies.masking import NAME_DOTS, parse_mask


@pytest.mark.parametrize(
    "spec, value, shown",
    [
        ("resident_id", "150102199003071234", "1501**********1234"),
        ("resident_id", "15010219900307123X", "1501**********123X"),
        ("uscc", "91150102MA0N2X3Y4Z", "911501**********4Z"),
        ("name", "张三", "张*"),
        ("name", "欧阳娜娜", "欧***"),
        ("name", "乌云其木格", "乌****"),  # five characters and more are masked too (issue 9)
        ("name", "阿依古丽·买买提", "阿******"),  # the middle dot is dropped, not counted
        ("name", "巴特尔", "巴**"),
        ("name", "周", "周"),
        ("name", "  周五 ", "周*"),
        ("name", "Ayguli Memet", "A***********"),
        ("name", "Zhang San", "Z********"),
        ("phone", "13812345678", "138****5678"),
        ("redact", "anything", "***"),
        ("round:1000", 12345, 12000),
        ("round:1000", 12500, 13000),  # half up
        ("round:10", decimal.Decimal("123.45"), decimal.Decimal("120")),
        ("round:0.1", 3.14159, 3.1),
        ("resident_id", None, None),
        ("round:10", None, None),
    ],
)
def test_transforms(spec: str, value: object, shown: object) -> None:
    assert parse_mask(spec)(value) == shown


@pytest.mark.parametrize("spec, value", [("resident_id", 12345), ("round:10", "not a number"), ("round:10", float("nan")), ("round:10", True)])
def test_a_value_the_transform_cannot_read_is_withheld_not_passed_through(spec: str, value: object) -> None:
    assert parse_mask(spec)(value) is None


@pytest.mark.parametrize("spec", ["", "sha256", "round:", "round:-5", "round:abc", "round:inf", 7])
def test_unknown_or_malformed_specs_are_refused(spec: object) -> None:
    with pytest.raises(PolicyError):
        parse_mask(spec)


@given(st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True))
def test_a_masked_resident_id_reveals_only_its_first_and_last_four(value: str) -> None:
    masked = parse_mask("resident_id")(value)
    assert masked[:4] == value[:4] and masked[-4:] == value[-4:] and set(masked[4:-4]) == {"*"}
    assert len(masked) == len(value)


@given(st.text(min_size=1, max_size=4).filter(lambda t: t.strip() == t and t and not set(t) & set(NAME_DOTS)))
def test_a_short_name_keeps_only_its_first_character(name: str) -> None:
    """(Middle dots are dropped from names: see the name-shape property below.)"""
    masked = parse_mask("name")(name)
    assert masked[0] == name[0] and set(masked[1:]) <= {"*"} and len(masked) == len(name)


HAN = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
LATIN = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyzüéö'-")
DOTS = st.sampled_from(NAME_DOTS)  # the middle dot and the look-alikes transliterations use
PART = st.one_of(st.text(HAN, min_size=1, max_size=8), st.text(LATIN, min_size=1, max_size=10))


@st.composite
def name_shapes(draw: st.DrawFn) -> str:
    """Names as people write them: Han or Latin parts, mixed, joined by middle dots or spaces, 1 to 30 characters."""
    parts = draw(st.lists(PART, min_size=1, max_size=5))
    name = parts[0]
    for part in parts[1:]:
        name += draw(st.one_of(DOTS, st.just(" "), st.just(""))) + part
    return name[:30].strip(" " + NAME_DOTS) or parts[0][0]


@given(name_shapes())
def test_every_name_shape_keeps_only_its_first_character(name: str) -> None:
    assert 1 <= len(name) <= 30
    masked = parse_mask("name")(name)
    letters = "".join(c for c in name if c not in NAME_DOTS).strip()
    assert masked[0] == letters[0]
    assert len(masked) == len(letters)  # the length rule: one * per character after the first, dots dropped
    assert set(masked[1:]) <= {"*"}
    for char in set(name) - {letters[0], "*"}:
        assert char not in masked, (name, masked, char)


@pytest.mark.parametrize("name", ["乌云其木格", "阿依古丽·买买提", "额尔敦巴雅尔", "阿卜杜热合曼·艾则孜·买买提明", "Bayanmunkh Tsogt"])
def test_long_names_of_hohhot_are_masked(name: str) -> None:
    masked = parse_mask("name")(name)
    assert masked == name[0] + "*" * (len(name.replace("·", "")) - 1)
