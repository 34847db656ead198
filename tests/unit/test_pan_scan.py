"""tests.pan_scan, the oracle of the PAN-form contract: it must find what it claims to."""

from __future__ import annotations

import json

import pytest

from tests.pan_scan import find_pans, scan_files, scan_text, scan_values, unescape_once

VISA = "4111111111111111"
AMEX = "378282246310005"  # 15 digits
MAESTRO19 = "6759649826438453045"  # 19 digits, Luhn-valid


@pytest.mark.parametrize("form", [
    VISA,
    "4111 1111 1111 1111",
    "4111.1111.1111.1111",
    "4111_1111_1111_1111",
    "4111\t1111\t1111\t1111",
    "4111  1111  1111  1111",
    "4111 - 1111 / 1111\u00a01111",
    "4111\u20131111\u20131111\u20131111",
    "\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11"
    "\uff11",
    "4111\n1111\r\n1111 1111",
])
def test_every_separator_form_of_a_visa_test_card_is_found(form):
    assert find_pans(form) == [VISA]
    assert find_pans(f"card:{form};") == [VISA]


@pytest.mark.parametrize("pan", [AMEX, MAESTRO19, "4222222222222"])
def test_13_15_and_19_digit_cards_are_found(pan):
    assert pan in find_pans(f"x {pan} y")


def test_four_separators_or_a_letter_break_the_chain():
    assert find_pans("4111    1111    1111    1111") == []
    assert find_pans("4111a1111b1111c1111") == []
    assert find_pans("4111,1111,1111,1111") == []


def test_non_luhn_and_short_runs_are_not_pans():
    assert find_pans("4222222222223") == []  # check digit wrong
    assert find_pans("411111111111") == []  # 12 digits
    assert find_pans("2026-01-01 10:00:00 zip 02134 amount 123456.78") == []


def test_every_window_of_a_chain_is_tried():
    # windows semantics: a longer run is judged by each of its 13..19-digit stretches
    assert find_pans("4012888888881881") == ["4012888888881", "4012888888881881",
                                             "2888888881881"]


def test_digit_runs_of_hex_ids_and_uuids_are_not_cards():
    assert find_pans("c0d6fcb36ea0261658611196233c691c") == []
    assert find_pans("c0d6fcb3-6ea0-2616-5861-1196233c691c") == []
    assert find_pans("zz0261658611196233") != []  # 'z' is no hex digit
    assert find_pans("c0d6fcb3-6ea0-2616-5861-119623312345 6789") != []  # no UUID around it


def test_floats_and_epoch_millis_are_numbers_not_cards():
    assert find_pans('{"score":0.4111111111111111,"t":1592741665000,"x":-123.4111111111111}') == []
    assert find_pans("4111111111111111.5") == ["4111111111111111"]  # integer part too long
    assert find_pans("4222222222222") == ["4222222222222"]  # 13 digits starting with 4
    assert "4111111111111111" in find_pans("0.4111 1111 1111 1111")  # not a plain decimal


def test_a_pan_inside_a_longer_digit_run_is_found():
    assert VISA in find_pans("99" + VISA + "7")


def test_escaped_forms_are_found_at_any_depth():
    once = json.dumps("4111\t1111\t1111\t1111")  # "4111\t1111..." with backslash-t
    twice = json.dumps(json.dumps("\uff14111 1111 1111 1111"))
    assert "\\t" in once and find_pans(once) == [VISA]
    assert find_pans(twice) == [VISA]
    assert find_pans("\\u0034\\u0031\\u0031\\u0031" + "111111111111") == [VISA]
    assert find_pans("4111\\x0b1111\\x0b1111\\x0b1111") == [VISA]


def test_unescape_is_lenient_and_joins_surrogate_pairs():
    assert unescape_once("a\\tb\\q\\u12") == "a\tb\\q\\u12"
    assert unescape_once("\\ud835\\udfce") == "\U0001d7ce"


def test_findings_show_place_and_last_four_only(tmp_path):
    log = tmp_path / "job.log"
    log.write_text(f"ok\nleak {VISA} end\n5555 5555\n5555 4444\n", encoding="utf-8")
    found = scan_files([log])
    assert [f.where for f in found] == [f"{log}:2", str(log), str(log)]
    assert [f.masked for f in found] == ["16 digits ending 1111", "13 digits ending 5554",
                                         "16 digits ending 4444"]
    assert scan_text("t", "nothing here") == []
    assert [f.where for f in scan_values("row 0", [("merchant", VISA.encode()),
                                                   ("features", {"x": [VISA]}),
                                                   ("amount", 1.5)])] == [
        "row 0 merchant", "row 0 features"]
