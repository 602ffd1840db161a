"""What text from outside may not carry: what lxml refuses, and what a terminal obeys."""

from __future__ import annotations

import pytest

from monitor.text import for_terminal, plain_text, xml_safe, xml_safe_bytes


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "red"),  # colours
        ("a\x1b[2Jb\x1b[10;5Hc", "abc"),  # clear the screen, move the cursor
        ("\x1b]0;new title\x07title", "title"),  # the window's title, ended by BEL
        ("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),  # a hyperlink, ended by ST
        ("a\x9b2Jb", "ab"),  # an 8-bit CSI
        ("\x1b(Bascii", "ascii"),  # a character set chosen
        ("Re\x1bporter", "Reporter"),  # a bare ESC: the letter after it stays
        ("over\rwritten\x08\x7f\x00\x85", "overwritten"),  # carriage return, backspace, DEL, NUL, C1
        ("tab\tand\nline", "tab\tand\nline"),  # kept
        ("Алматы, 阿拉木图, café — “quoted”", "Алматы, 阿拉木图, café — “quoted”"),
    ],
)
def test_for_terminal(text: str, shown: str) -> None:
    assert for_terminal(text) == shown


def test_xml_safe() -> None:
    assert xml_safe("a&#1;b&#x0B;c\x0bd\x01e&#10;f&#xD800;g&#65;h&#99999999;i&amp;#2;") == (
        "abc de&#10;fg&#65;h&#99999999;i&amp;#2;"
    )
    assert xml_safe("a&#1;b\x01c", references=False) == "a&#1;bc"
    assert xml_safe_bytes(b"a&#1;b&#x41;c&#0000;d\x01") == b"ab&#x41;cd\x01"


def test_plain_text_drops_escape_sequences_whole_and_keeps_8_bit_characters() -> None:
    assert plain_text("\x1b]0;pwned\x07Almaty \x1b[31mtroops\x1b[0m\x01 leave\u0085") == "Almaty troops leave\u0085"
