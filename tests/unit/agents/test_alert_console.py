"""The console row of an alert never carries a raw control character to the terminal."""

from __future__ import annotations

from agents.alerts import console_table
from app.windowing.window_alert import WindowAlert


def test_a_terminal_escape_sequence_in_a_product_id_is_printed_escaped() -> None:
    hostile = "p\x1b[31mred\x1b]0;title\x07\x00\x7f\x9b"
    table = console_table(WindowAlert(hostile, 1795766400000, 1795767000000, 150, 0, 0))
    assert not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in table)
    assert "p\\x1b[31mred\\x1b]0;title\\x07\\x00\\x7f\\x9b" in table
    lines = table.split("\n")
    assert len({len(line) for line in lines}) == 1  # the table still lines up


def test_an_ordinary_product_id_is_printed_as_it_is() -> None:
    table = console_table(WindowAlert("p-42", 1795766400000, 1795767000000, 150, 0, 0))
    assert "|p-42      |" in table


def test_bidi_overrides_and_zero_width_characters_are_printed_escaped() -> None:
    """A right-to-left override can make the console show an alert reversed; a zero-width
    space hides that two ids differ. Both are shown as escapes; other letters stay as they are."""
    table = console_table(
        WindowAlert("p\u202eLIVE\u200bé", 1795766400000, 1795767000000, 150, 0, 0)
    )
    assert "\u202e" not in table and "\u200b" not in table
    assert "p\\u202eLIVE\\u200bé" in table
