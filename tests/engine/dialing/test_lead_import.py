"""CSV lead import against hostile files: each row imported cleanly or reported with line and reason."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.dialing.leads import (InvalidDialString, LeadImportError, MemorySink, checked_dial_string,
                                  import_leads, neutralise_formula, normalise_number, run_import_cli)


def run(text: str | bytes, **kwargs):
    data = text.encode("utf-8") if isinstance(text, str) else text
    sink = MemorySink()
    report = import_leads(io.BytesIO(data), sink, **kwargs)
    return report, sink.leads


def reasons(report):
    return {p.line: p.reason for p in report.problems}


def test_clean_file_normalises_numbers_and_keeps_custom_fields():
    report, leads = run("name,phone,mobile,plan\nAna,(212) 555-0142,+44 20 7946 0958,gold\n")
    assert report.imported == 1 and report.rejected == 0
    assert leads[0].numbers == ("+12125550142", "+442079460958")
    assert leads[0].fields == {"name": "Ana", "plan": "gold"}


def test_quoted_newlines_keep_line_numbers_of_the_record_start():
    text = ('name,phone,note\n'
            'Ana,2125550142,"first line\nsecond line"\n'
            'Bob,not-a-number,x\n'
            'Cy,2125550143,"a\n\nb"\n'
            'Di,12,y\n')
    report, leads = run(text)
    assert [lead.line for lead in leads] == [2, 5]
    assert leads[0].fields["note"] == "first line\nsecond line"
    problems = reasons(report)
    assert set(problems) == {4, 8}
    assert "not a phone number" in problems[4] and "'n'" in problems[4]
    assert "12" in problems[8]


def test_formula_injection_is_neutralised_in_stored_fields():
    text = 'name,phone,site\n"=HYPERLINK(""http://evil"",""click"")",2125550142,@SUM(A1)\n'
    report, leads = run(text)
    assert leads[0].fields["name"] == "'=HYPERLINK(\"http://evil\",\"click\")"
    assert leads[0].fields["site"] == "'@SUM(A1)"
    assert neutralise_formula("-2+3") == "'-2+3" and neutralise_formula("plain") == "plain"


@pytest.mark.parametrize("raw, fragment", [
    ("2125550142;ATH", "';'"),
    ("2125550142,,5", "','"),
    ("ATDT2125550142", "'A'"),
    ("+1 212 555 0142 W 5", "'W'"),
    ("1-800-FLOWERS", "'F'"),
    ("2125550142\x00", "'\\x00'"),
])
def test_numbers_carrying_dial_modifiers_or_at_commands_are_rejected(raw, fragment):
    report, leads = run(f'name,phone\nAna,"{raw}"\n'.encode("utf-8"))
    assert leads == []
    assert report.rejected == 1
    assert fragment in reasons(report)[2]


def test_duplicates_are_reported_with_the_line_they_repeat():
    report, leads = run("name,phone\nA,2125550142\nB,+1 (212) 555-0142\nC,212.555.0143\n")
    assert [lead.line for lead in leads] == [2, 4]
    assert report.duplicates == 1
    assert "duplicates line 2" in reasons(report)[3]


def test_utf8_bom_and_utf16_are_read():
    report, leads = run("\ufeffnombre,teléfono\nMaría,2125550142\n".encode("utf-8"))
    assert report.encoding == "utf-8-sig" and leads[0].fields == {"nombre": "María"}
    report, leads = run("nombre,teléfono\nMaría,2125550142\n".encode("utf-16"))
    assert report.encoding == "utf-16" and leads[0].fields == {"nombre": "María"}


def test_latin1_file_falls_back_and_says_so():
    report, leads = run("nombre,telefono\nJosé,2125550142\n".encode("latin-1"))
    assert report.encoding == "latin-1"
    assert "not valid UTF-8 (byte 19)" in report.encoding_note
    assert leads[0].fields == {"nombre": "José"}


def test_mapping_selects_columns_and_a_missing_column_is_a_clear_error():
    text = "Customer,Cell,Work,Junk\nAna,2125550142,2125550199,x\n"
    report, leads = run(text, mapping={"Cell": "phone", "Work": "phone", "Customer": "name"})
    assert leads[0].numbers == ("+12125550142", "+12125550199")
    assert leads[0].fields == {"name": "Ana"}
    with pytest.raises(LeadImportError, match="'Mobile'.*not in the file.*'Customer', 'Cell'"):
        run(text, mapping={"Mobile": "phone"})
    with pytest.raises(LeadImportError, match="no phone column"):
        run("name,email\nAna,a@example.com\n")


def test_short_rows_and_oversized_fields_are_reported_not_fatal():
    huge = "x" * 10_000
    text = f"name,phone\nAna\nBob,2125550142\nCy,\"{huge}\"\nDi,2125550143\n"
    report, leads = run(text)
    assert [lead.numbers[0] for lead in leads] == ["+12125550142", "+12125550143"]
    problems = reasons(report)
    assert "has 1 columns" in problems[2]
    assert any("field larger than field limit" in r or "not a phone number" in r for r in problems.values())


def test_a_hundred_thousand_rows_stream_through():
    header = "id,name,phone,alt phone\n"
    body = "".join(f"{i},Name {i},(212) {200 + i // 10000}-{i % 10000:04d},\n" for i in range(100_000))
    body += "100000,Dup,(212) 200-0000,\n"
    report, leads = run(header + body)
    assert report.imported == 100_000
    assert report.rejected == 1 and report.duplicates == 1
    assert leads[-1].numbers == ("+12122099999",)
    assert reasons(report) == {100_002: "phone: +12122000000 duplicates line 2"}


def test_cli_reports_lines_and_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.csv"
    good.write_text("name,phone\nAna,2125550142\n")
    assert run_import_cli([str(good), "--campaign", "spring"]) == 0
    assert "imported 1 of 1 rows" in capsys.readouterr().out
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("name,phone\nAna,2125550142\nBob,555;ATH\n")
    out_csv = tmp_path / "clean.csv"
    assert run_import_cli([str(mixed), "--campaign", "spring", "--output", str(out_csv)]) == 1
    err = capsys.readouterr().err
    assert f"{mixed}:3: " in err and "';'" in err
    assert out_csv.read_text().splitlines() == ["source_line,numbers,name", "2,+12125550142,Ana"]
    assert run_import_cli([str(mixed), "--campaign", "spring", "--map", "Tel=phone"]) == 2
    assert "'Tel'" in capsys.readouterr().err
    assert run_import_cli([str(tmp_path / "missing.csv"), "--campaign", "x"]) == 2


@given(st.text(max_size=40))
def test_dial_strings_are_plus_and_digits_or_refused(text):
    try:
        checked = checked_dial_string(text)
    except InvalidDialString:
        return
    assert re.fullmatch(r"\+[0-9]+", checked)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=30))
def test_normalise_either_returns_a_dial_string_or_a_reason(text):
    try:
        number = normalise_number(text, "US")
    except ValueError as error:
        assert str(error)
        return
    assert checked_dial_string(number) == number
