"""The pure template engine: the {{name}} syntax, variable checks, SMS encodings and
segments, email blocks to HTML and text, and dates as offices write them."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.engines.templates import (
    Button,
    Column,
    Columns,
    EmailDocument,
    EmailStyle,
    Footer,
    Heading,
    Image,
    Paragraph,
    TemplateError,
    check_blocks,
    check_variables,
    format_date,
    measure,
    placeholders,
    render,
    render_email,
)
from api.engines.templates.sms import GSM7_BASIC


def test_render_fills_placeholders_and_escapes_only_values() -> None:
    source = "<b>{{ patient.first_name }}</b> & {{office.name}}"
    values = {"patient.first_name": "Ana <3", "office.name": "A&B"}
    assert render(source, values) == "<b>Ana <3</b> & A&B"
    from html import escape

    assert render(source, values, escape) == "<b>Ana &lt;3</b> & A&amp;B"


@pytest.mark.parametrize("source", ["Hi {{name", "Hi }} there", "{{ 1 + 2 }}", "{{Patient.X}}"])
def test_broken_syntax_is_an_error(source: str) -> None:
    with pytest.raises(TemplateError):
        placeholders(source)


def test_unknown_variable_names_the_field_and_variable() -> None:
    with pytest.raises(TemplateError) as error:
        render("Hi {{patient.nick}}", {}, field="blocks[0].text")
    [problem] = error.value.problems
    assert (problem.field, problem.variable) == ("blocks[0].text", "patient.nick")


def test_clinical_variables_are_refused_in_sms_only_unless_allowed() -> None:
    fields = [("body", "{{patient.first_name}}: {{balance}} {{treatment.description}}")]
    used, problems = check_variables(fields, channel="sms", allow_clinical_sms=False)
    assert used == {"patient.first_name"}
    assert sorted(p.variable or "" for p in problems) == ["balance", "treatment.description"]
    assert check_variables(fields, channel="email", allow_clinical_sms=False)[1] == []
    assert check_variables(fields, channel="sms", allow_clinical_sms=True)[1] == []


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters count two septets
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 152 + "€" + "a" * 10, "GSM-7", 164, 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),  # "€" is not split: it opens segment 2
        ("é" * 160, "GSM-7", 160, 1),  # é is in the GSM-7 basic table
        ("ê" * 70, "UCS-2", 70, 1),  # ê is not
        ("ê" * 71, "UCS-2", 71, 2),
        ("ê" * 134, "UCS-2", 134, 2),
        ("ê" * 135, "UCS-2", 135, 3),
        ("😁" * 35, "UCS-2", 70, 1),  # outside the BMP: two UTF-16 units
        ("ê" * 66 + "😁" + "ê" * 66, "UCS-2", 134, 3),  # the pair is not split either
    ],
)
def test_sms_encoding_and_segments(text: str, encoding: str, units: int, segments: int) -> None:
    length = measure(text)
    assert (length.encoding, length.units, length.segments) == (encoding, units, segments)


@given(st.text(alphabet=sorted(GSM7_BASIC), max_size=1000))
def test_plain_gsm_text_segments_follow_the_formula(text: str) -> None:
    length = measure(text)
    assert length.encoding == "GSM-7"
    expected = 0 if not text else 1 if len(text) <= 160 else -(-len(text) // 153)
    assert length.segments == expected


def _document(**style: str) -> EmailDocument:
    return EmailDocument(
        subject="Hi {{patient.first_name}}",
        blocks=(
            Heading("heading", "Welcome back"),
            Paragraph("paragraph", "Line one\nLine <two>"),
            Columns(
                "columns",
                (
                    Column((Image("image", "https://x.test/a.png", alt="Logo", width=600),), 50),
                    Column((Button("button", "Book", "{{booking.link}}"),)),
                ),
            ),
        ),
        style=EmailStyle(**style),
    )


def test_email_blocks_render_to_responsive_html_and_text() -> None:
    values = {"patient.first_name": "Ana", "booking.link": "https://book.test/loc_1"}
    footer = Footer(("Main Street Dental", "1 Main St"), "https://api.test/unsub/t")
    email = render_email(_document(), values, footer)
    assert email.subject == "Hi Ana"
    html = email.html
    assert "max-width:600px" in html and 'role="presentation"' in html
    assert html.count("display:inline-block;width:100%;max-width:300px") == 2
    assert "Line one<br>Line &lt;two&gt;" in html
    assert 'href="https://book.test/loc_1"' in html and 'width="300"' in html
    assert 'href="https://api.test/unsub/t"' in html
    assert email.text.startswith("Welcome back\n\nLine one\nLine <two>")
    assert "Book: https://book.test/loc_1" in email.text and "[Logo]" in email.text
    assert email.text.rstrip().endswith("Unsubscribe from these emails: https://api.test/unsub/t")


def test_links_must_be_web_or_mail_links() -> None:
    values = {"patient.first_name": "Ana", "booking.link": "javascript:alert(1)"}
    with pytest.raises(TemplateError) as error:
        render_email(_document(), values)
    assert error.value.problems[0].field == "blocks[2].columns[1].blocks[0].url"


def test_block_checks() -> None:
    document = _document(text_color="red;x")
    problems = check_blocks(document.blocks, document.style)
    assert [p.field for p in problems] == ["style.text_color"]
    wide = (Columns("columns", (Column((), 80), Column((), 40))),)
    assert [p.field for p in check_blocks(wide, EmailStyle())] == ["blocks[0].columns"]
    assert [p.field for p in check_blocks((Heading("heading", "x", 5),), EmailStyle())] == [
        "blocks[0].level"
    ]


def test_dates_as_the_office_writes_them() -> None:
    day = dt.date(2026, 12, 1)
    assert format_date(day, "US") == "December 1, 2026"
    assert format_date(day, "GB") == "1 December 2026"
    assert format_date(day, None) == "December 1, 2026"
