"""Credit-subject identifiers: USCC (GB 32100-2015) and resident ID (GB 11643-1999) check characters.

The examples are the ones in DESIGN.md §3; the properties check the check-character rules for
arbitrary bodies and that any single-character substitution is caught.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from xinlian.schema.identifiers import (
    ID_CHECK,
    ID_WEIGHTS,
    ORG_CODE_WEIGHTS,
    USCC_ALPHABET,
    USCC_WEIGHTS,
    InvalidIdentifier,
    id_check_char,
    org_code_check_char,
    uscc_check_char,
    validate_resident_id,
    validate_uscc,
)

VALID_USCCS = ["91110000600037341L", "91310115MA1K3BTP2B", "91350100M000100Y43"]
VALID_IDS = ["110102199101010078", "44011320141005001X"]
ID_CHECK_ALPHABET = "0123456789X"

ORG_CODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"

# Any 17 characters of the USCC alphabet: enough for the GB 32100 check-character equation.
any_uscc_bodies = st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)


@st.composite
def uscc_bodies(draw: st.DrawFn) -> str:
    """17 characters that make a valid USCC once the check char is added: authority and
    category (any), a 6-digit division, an 8-character organisation code body and its
    GB 11714 check character."""
    head = draw(st.text(alphabet=USCC_ALPHABET, min_size=2, max_size=2))
    division = draw(st.text(alphabet=DIGITS, min_size=6, max_size=6))
    org = draw(st.text(alphabet=USCC_ALPHABET, min_size=8, max_size=8))
    return head + division + org + org_code_check_char(org)


def uscc_of(first16: str) -> str:
    """Complete 16 leading characters with the organisation-code and USCC check characters,
    whatever the 16 characters are (so invalid divisions get correct check characters)."""
    body = first16 + org_code_check_char(first16[8:16])
    return body + uscc_check_char(body)


birth_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date.today())


@st.composite
def resident_id_bodies(draw: st.DrawFn) -> str:
    """17 digits: 6-digit area, a real birth date, 3-digit sequence."""
    area = draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
    born = draw(birth_dates)
    sequence = draw(st.text(alphabet="0123456789", min_size=3, max_size=3))
    return f"{area}{born.year:04d}{born.month:02d}{born.day:02d}{sequence}"


def with_id_check(body: str) -> str:
    return body + id_check_char(body)


# --------------------------------------------------------------------------------------------
# Unified social credit code (统一社会信用代码)
# --------------------------------------------------------------------------------------------


def test_uscc_alphabet_has_31_characters_without_i_o_s_v_z() -> None:
    assert len(USCC_ALPHABET) == 31
    assert len(set(USCC_ALPHABET)) == 31
    assert not set("IOSVZ") & set(USCC_ALPHABET)


@pytest.mark.parametrize("code", VALID_USCCS)
def test_design_brief_valid_usccs_are_accepted_unchanged(code: str) -> None:
    assert validate_uscc(code) == code


@pytest.mark.parametrize("code", VALID_USCCS)
def test_check_char_of_design_brief_usccs_is_recomputed(code: str) -> None:
    assert uscc_check_char(code[:17]) == code[17]


def test_uscc_with_wrong_check_char_is_rejected_naming_the_expected_one() -> None:
    with pytest.raises(InvalidIdentifier, match=r"check character.*expected L"):
        validate_uscc("91110000600037341N")


def test_uscc_with_excluded_letters_is_rejected_naming_the_letter() -> None:
    with pytest.raises(InvalidIdentifier, match=r"'I' is not allowed"):
        validate_uscc("9111000060003IOZSV")


@pytest.mark.parametrize("letter", list("IOSVZ"))
def test_each_excluded_letter_is_rejected_even_in_the_check_position(letter: str) -> None:
    with pytest.raises(InvalidIdentifier, match=repr(letter)):
        validate_uscc("91110000600037341" + letter)


@pytest.mark.parametrize("code", VALID_USCCS)
def test_lower_case_uscc_is_normalised_to_upper_case(code: str) -> None:
    assert validate_uscc(code.lower()) == code


def test_mixed_case_uscc_is_normalised_to_upper_case() -> None:
    assert validate_uscc("91310115Ma1k3BtP2b") == "91310115MA1K3BTP2B"


@pytest.mark.parametrize(
    "value",
    ["", "9111000060003734", "91110000600037341", "91110000600037341L0", "91110000600037341LL"],
)
def test_uscc_of_wrong_length_is_rejected_with_the_length(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match=rf"18 characters, got {len(value)}"):
        validate_uscc(value)


def test_uscc_with_inner_space_is_rejected() -> None:
    with pytest.raises(InvalidIdentifier):
        validate_uscc("91110000 600037341L")


@pytest.mark.parametrize(
    "value", [None, 91110000600037341, b"91110000600037341L", ["91110000600037341L"], 9.1]
)
def test_uscc_that_is_not_a_string_is_rejected(value: object) -> None:
    with pytest.raises(InvalidIdentifier, match="must be a string"):
        validate_uscc(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", ["", "9111000060003734", "911100006000373410"])
def test_uscc_check_char_needs_a_17_character_body(body: str) -> None:
    with pytest.raises(InvalidIdentifier, match="17 characters"):
        uscc_check_char(body)


def test_uscc_check_char_rejects_characters_outside_the_alphabet() -> None:
    with pytest.raises(InvalidIdentifier, match="'O'"):
        uscc_check_char("9111000060003734O")


def test_invalid_identifier_is_a_value_error() -> None:
    assert issubclass(InvalidIdentifier, ValueError)


@given(body=uscc_bodies())
@example(body="00000000000000000")  # Σ = 0: the check value is (31 - 0) mod 31 = 0, not 31
@example(body="YY999999YYYYYYYY7")
@settings(max_examples=2000)
def test_any_uscc_body_plus_its_check_char_validates(body: str) -> None:
    code = body + uscc_check_char(body)
    assert validate_uscc(code) == code


@given(body=any_uscc_bodies)
def test_uscc_check_char_satisfies_the_gb32100_equation(body: str) -> None:
    """Σ(value × weight) + check value ≡ 0 (mod 31), with the check value in 0..30."""
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(body, USCC_WEIGHTS))
    check_value = USCC_ALPHABET.index(uscc_check_char(body))
    assert (total + check_value) % 31 == 0


@given(body=uscc_bodies())
def test_every_other_last_char_of_a_uscc_is_rejected(body: str) -> None:
    right = uscc_check_char(body)
    for wrong in USCC_ALPHABET.replace(right, ""):
        with pytest.raises(InvalidIdentifier, match="check character"):
            validate_uscc(body + wrong)


@given(body=uscc_bodies(), position=st.integers(0, 17), data=st.data())
@settings(max_examples=2000)
def test_any_single_substitution_in_a_valid_uscc_is_detected(body: str, position: int, data: st.DataObject) -> None:
    code = body + uscc_check_char(body)
    replacement = data.draw(st.sampled_from(USCC_ALPHABET.replace(code[position], "")))
    changed = code[:position] + replacement + code[position + 1 :]
    with pytest.raises(InvalidIdentifier):
        validate_uscc(changed)


@pytest.mark.parametrize("code", VALID_USCCS)
def test_every_single_substitution_of_the_design_brief_usccs_is_detected(code: str) -> None:
    """Exhaustive: 18 positions × 30 other characters for each example."""
    undetected = []
    for position in range(18):
        for replacement in USCC_ALPHABET.replace(code[position], ""):
            changed = code[:position] + replacement + code[position + 1 :]
            try:
                validate_uscc(changed)
            except InvalidIdentifier:
                continue
            undetected.append(changed)
    assert undetected == []


def test_uscc_weights_make_every_single_substitution_detectable_mod_31() -> None:
    """31 is prime and every weight is nonzero mod 31, so weight × difference ≢ 0 for any
    difference 1..30: a changed character always changes Σ mod 31 (the check char has weight 1)."""
    assert USCC_WEIGHTS == tuple(pow(3, i, 31) for i in range(17))
    for weight in (*USCC_WEIGHTS, 1):
        assert all((weight * difference) % 31 != 0 for difference in range(1, 31))


@given(body=uscc_bodies(), position=st.integers(0, 16))
def test_swapping_two_adjacent_different_uscc_characters_is_detected(body: str, position: int) -> None:
    code = body + uscc_check_char(body)
    assume(code[position] != code[position + 1])
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
    with pytest.raises(InvalidIdentifier):
        validate_uscc(swapped)


# --------------------------------------------------------------------------------------------
# Resident identity number (公民身份号码)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", VALID_IDS)
def test_design_brief_valid_resident_ids_are_accepted_unchanged(number: str) -> None:
    assert validate_resident_id(number) == number


@pytest.mark.parametrize("number", VALID_IDS)
def test_check_char_of_design_brief_resident_ids_is_recomputed(number: str) -> None:
    assert id_check_char(number[:17]) == number[17]


def test_resident_id_with_wrong_check_char_is_rejected_naming_the_expected_one() -> None:
    with pytest.raises(InvalidIdentifier, match=r"check character.*expected 3"):
        validate_resident_id("36042619910102009X")


def test_lower_case_x_check_char_is_normalised_to_upper_case() -> None:
    assert validate_resident_id("44011320141005001x") == "44011320141005001X"


@pytest.mark.parametrize("value", ["", "11010219910101007", "1101021991010100780", "110102910101007"])
def test_resident_id_of_wrong_length_is_rejected_with_the_length(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match=rf"18 characters, got {len(value)}"):
        validate_resident_id(value)


@pytest.mark.parametrize(
    "value", [None, 110102199101010078, b"110102199101010078", ["110102199101010078"], 1.5]
)
def test_resident_id_that_is_not_a_string_is_rejected(value: object) -> None:
    with pytest.raises(InvalidIdentifier, match="must be a string"):
        validate_resident_id(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        "1101021991010100A8",  # letter in the body
        "11010219910101007Y",  # check char other than a digit or X
        "X10102199101010078",  # X allowed only last
        "11010219910101-078",
    ],
)
def test_resident_id_with_non_digit_body_or_bad_check_char_is_rejected(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match="17 digits and a digit or X"):
        validate_resident_id(value)


@pytest.mark.parametrize(
    "birth",
    [
        "19910230",  # 30 February
        "19990229",  # 29 February in a common year
        "19000229",  # 1900 is not a leap year (divisible by 100, not by 400)
        "19911301",  # month 13
        "19910001",  # month 0
        "19910100",  # day 0
        "19910431",  # 31 April
        "00000101",  # year 0
    ],
)
def test_resident_id_with_impossible_birth_date_is_rejected_even_with_correct_check_char(birth: str) -> None:
    number = with_id_check("110102" + birth + "007")
    with pytest.raises(InvalidIdentifier, match=rf"birth date {birth}"):
        validate_resident_id(number)


@pytest.mark.parametrize("birth", ["20000229", "20240229", "19910131", "19911231"])
def test_resident_id_with_real_edge_birth_date_is_accepted(birth: str) -> None:
    number = with_id_check("110102" + birth + "007")
    assert validate_resident_id(number) == number


@pytest.mark.parametrize("body", ["", "1101021991010100", "110102199101010078", "1101021991010100X"])
def test_id_check_char_needs_17_digits(body: str) -> None:
    with pytest.raises(InvalidIdentifier, match="17 digits"):
        id_check_char(body)


@given(body=resident_id_bodies())
@example(body="11010219910101007")
def test_any_resident_id_body_with_a_real_date_plus_its_check_char_validates(body: str) -> None:
    number = with_id_check(body)
    assert validate_resident_id(number) == number


@given(body=resident_id_bodies())
def test_resident_id_check_char_satisfies_the_gb11643_equation(body: str) -> None:
    """Σ(digit × weight) mod 11 indexes `10X98765432`; equivalently Σ + check value ≡ 1 (mod 11)."""
    total = sum(int(d) * w for d, w in zip(body, ID_WEIGHTS))
    check = id_check_char(body)
    check_value = 10 if check == "X" else int(check)
    assert (total + check_value) % 11 == 1


@given(body=resident_id_bodies())
def test_every_other_last_char_of_a_resident_id_is_rejected(body: str) -> None:
    right = id_check_char(body)
    for wrong in ID_CHECK_ALPHABET.replace(right, ""):
        with pytest.raises(InvalidIdentifier, match="check character"):
            validate_resident_id(body + wrong)


@given(body=resident_id_bodies(), position=st.integers(0, 17), data=st.data())
def test_any_single_substitution_in_a_valid_resident_id_is_detected(
    body: str, position: int, data: st.DataObject
) -> None:
    number = with_id_check(body)
    alphabet = ID_CHECK_ALPHABET if position == 17 else "0123456789"
    replacement = data.draw(st.sampled_from(alphabet.replace(number[position], "")))
    changed = number[:position] + replacement + number[position + 1 :]
    with pytest.raises(InvalidIdentifier):
        validate_resident_id(changed)


@pytest.mark.parametrize("number", VALID_IDS)
def test_every_single_substitution_of_the_design_brief_resident_ids_is_detected(number: str) -> None:
    undetected = []
    for position in range(18):
        alphabet = ID_CHECK_ALPHABET if position == 17 else "0123456789"
        for replacement in alphabet.replace(number[position], ""):
            changed = number[:position] + replacement + number[position + 1 :]
            try:
                validate_resident_id(changed)
            except InvalidIdentifier:
                continue
            undetected.append(changed)
    assert undetected == []


def test_resident_id_weights_make_every_single_substitution_detectable_mod_11() -> None:
    """11 is prime, every weight (2^(17-i) mod 11) is nonzero mod 11 and a digit changes by 1..9,
    so Σ mod 11 always changes; the 11 check characters are all distinct."""
    assert ID_WEIGHTS == tuple(pow(2, 17 - i, 11) for i in range(17))
    for weight in ID_WEIGHTS:
        assert all((weight * difference) % 11 != 0 for difference in range(1, 10))
    assert len(set(ID_CHECK)) == 11


@given(body=resident_id_bodies(), position=st.integers(0, 15))
def test_swapping_two_adjacent_different_body_digits_of_a_resident_id_is_detected(body: str, position: int) -> None:
    number = with_id_check(body)
    assume(number[position] != number[position + 1])
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2 :]
    with pytest.raises(InvalidIdentifier):
        validate_resident_id(swapped)


# --------------------------------------------------------------------------------------------
# Regressions: bugs found by review, fixed
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "１１０１０２１９９１０１０１００７8",  # full-width body, ASCII check char
        "\u0661\u0661\u0660102199101010078",  # Arabic-Indic digits in the area code
    ],
)
def test_resident_id_with_non_ascii_digits_is_rejected(value: str) -> None:
    with pytest.raises(InvalidIdentifier):
        validate_resident_id(value)


@pytest.mark.parametrize("value", ["²10102199101010078", "1101021991010100²8"])
def test_resident_id_with_superscript_digit_raises_invalid_identifier(value: str) -> None:
    with pytest.raises(InvalidIdentifier):
        validate_resident_id(value)


# --------------------------------------------------------------------------------------------
# Issue 9: division digits, the embedded organisation code (GB 11714), birth-date range
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "check"), [("MA1K3BTP", "2"), ("60003734", "1"), ("M000100Y", "4")])
def test_design_brief_organisation_codes_have_their_check_character(body: str, check: str) -> None:
    assert org_code_check_char(body) == check


def test_organisation_code_check_value_10_is_x_and_11_is_0() -> None:
    assert org_code_check_char("00000000") == "0"  # Σ = 0: 11 − 0 = 11 → 0
    assert org_code_check_char("00000001") == "9"  # Σ = 2: 11 − 2 = 9
    assert org_code_check_char("00000006") == "X"  # Σ = 12 ≡ 1: 11 − 1 = 10 → X


@given(body=st.text(alphabet=ORG_CODE_ALPHABET, min_size=8, max_size=8))
@settings(max_examples=1000)
def test_organisation_code_check_satisfies_the_gb11714_equation(body: str) -> None:
    """Σ(value × weight) + check value ≡ 0 (mod 11), with X = 10 and 0 standing for 11."""
    total = sum(ORG_CODE_ALPHABET.index(ch) * w for ch, w in zip(body, ORG_CODE_WEIGHTS))
    check = org_code_check_char(body)
    value = 10 if check == "X" else int(check)
    assert (total + value) % 11 == 0


@pytest.mark.parametrize("body", ["", "MA1K3BT", "MA1K3BTP2", "MA1K3BT-", "ma1k3btp"])
def test_organisation_code_check_char_needs_8_upper_case_characters(body: str) -> None:
    with pytest.raises(InvalidIdentifier):
        org_code_check_char(body)


@given(body=uscc_bodies(), position=st.integers(2, 7), letter=st.sampled_from(USCC_ALPHABET[10:]))
@settings(max_examples=2000)
def test_letter_in_the_administrative_division_is_rejected_even_with_both_checks_right(
    body: str, position: int, letter: str
) -> None:
    code = uscc_of(body[:position] + letter + body[position + 1 : 16])
    with pytest.raises(InvalidIdentifier, match="administrative division"):
        validate_uscc(code)


@pytest.mark.parametrize("code", [uscc_of("91AB0000MA1K3BTP"), uscc_of("9131011XMA1K3BTP"), uscc_of("91A10115MA1K3BTP")])
def test_fixed_examples_of_letters_in_the_division_are_rejected(code: str) -> None:
    assert uscc_check_char(code[:17]) == code[17]
    with pytest.raises(InvalidIdentifier, match="positions 3-8"):
        validate_uscc(code)


@given(body=uscc_bodies(), data=st.data())
@settings(max_examples=2000)
def test_wrong_organisation_check_char_is_rejected_even_with_the_uscc_check_right(
    body: str, data: st.DataObject
) -> None:
    """The USCC check char is recomputed after the change, so only GB 11714 can catch it."""
    wrong = data.draw(st.sampled_from([c for c in "0123456789X" if c != body[16]]))
    code = body[:16] + wrong
    code += uscc_check_char(code)
    with pytest.raises(InvalidIdentifier, match=r"organisation code .* wrong check character"):
        validate_uscc(code)


@given(body=uscc_bodies(), position=st.integers(8, 15), data=st.data())
@settings(max_examples=2000)
def test_organisation_code_change_with_recomputed_uscc_check_is_rejected(
    body: str, position: int, data: st.DataObject
) -> None:
    """Changing one organisation-code character and recomputing only the USCC check char
    (a forged code) is caught by the organisation code's own check character."""
    replacement = data.draw(st.sampled_from(USCC_ALPHABET.replace(body[position], "")))
    changed = body[:position] + replacement + body[position + 1 :]
    assume(org_code_check_char(changed[8:16]) != changed[16])  # 8 weights mod 11: a few collide
    code = changed + uscc_check_char(changed)
    with pytest.raises(InvalidIdentifier, match="organisation code"):
        validate_uscc(code)


@pytest.mark.parametrize(
    "code",
    ["91110000600037342L", "91310115MA1K3BTP3B", "91350100M000100Y53"],
)
def test_design_brief_usccs_with_wrong_organisation_check_char_are_rejected(code: str) -> None:
    fixed = code[:17] + uscc_check_char(code[:17])
    with pytest.raises(InvalidIdentifier):
        validate_uscc(fixed)


def test_thousands_of_generated_codes_valid_and_single_mutations_invalid() -> None:
    """Deterministic bulk check, independent of hypothesis: 5,000 valid codes of several
    registration authorities, each mutated once at a random position (all rejected)."""
    import random

    rng = random.Random(9)
    for _ in range(5000):
        head = rng.choice("159Y") + rng.choice(USCC_ALPHABET)
        division = "".join(rng.choice(DIGITS) for _ in range(6))
        org = "".join(rng.choice(USCC_ALPHABET) for _ in range(8))
        code = uscc_of(head + division + org)
        assert validate_uscc(code) == code
        position = rng.randrange(18)
        replacement = rng.choice(USCC_ALPHABET.replace(code[position], ""))
        with pytest.raises(InvalidIdentifier):
            validate_uscc(code[:position] + replacement + code[position + 1 :])


@pytest.mark.parametrize("birth", ["00010101", "18000101", "18991231", "09991231"])
def test_resident_id_born_before_1900_is_rejected(birth: str) -> None:
    number = with_id_check("150102" + birth + "007")
    with pytest.raises(InvalidIdentifier, match=rf"birth date {birth}.*between 1900-01-01 and today"):
        validate_resident_id(number)


def test_resident_id_born_in_the_future_is_rejected_but_today_and_1900_are_accepted() -> None:
    today = dt.date.today()
    tomorrow = today + dt.timedelta(days=1)
    with pytest.raises(InvalidIdentifier, match="between 1900-01-01 and today"):
        validate_resident_id(with_id_check(f"150102{tomorrow:%Y%m%d}007"))
    for born in (today, dt.date(1900, 1, 1)):
        number = with_id_check(f"150102{born:%Y%m%d}007")
        assert validate_resident_id(number) == number


@given(born=st.one_of(
    st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(1899, 12, 31)),
    st.dates(min_value=dt.date.today() + dt.timedelta(days=1), max_value=dt.date(9999, 12, 31)),
))
@settings(max_examples=1000)
def test_resident_id_with_out_of_range_birth_date_and_right_check_char_is_rejected(born: dt.date) -> None:
    number = with_id_check(f"150102{born.year:04d}{born.month:02d}{born.day:02d}007")
    with pytest.raises(InvalidIdentifier, match="birth date"):
        validate_resident_id(number)
