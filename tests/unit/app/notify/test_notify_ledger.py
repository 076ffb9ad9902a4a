"""The delivery ledger: what a channel delivered survives a restart, a torn line, and stays small."""

from __future__ import annotations

from pathlib import Path

from app.notify.ledger import DeliveryLedger, ledger_path


def test_ids_survive_a_reopen(tmp_path: Path) -> None:
    path = ledger_path(tmp_path, "webhook", "incidents", 3)
    assert path == tmp_path / "webhook" / "incidents-3.ids"
    ledger = DeliveryLedger(path)
    assert "P1:0/0" not in ledger
    ledger.add("P1:0/0")
    ledger.add('odd "id"\nwith a newline/1')
    again = DeliveryLedger(path)
    assert "P1:0/0" in again and 'odd "id"\nwith a newline/1' in again and len(again) == 2


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "l.ids"
    DeliveryLedger(path).add("a/0")
    with path.open("ab") as handle:
        handle.write(b'"b/0')  # a crash in the middle of an append
    ledger = DeliveryLedger(path)
    assert "a/0" in ledger and len(ledger) == 1
    ledger.add("c/0")
    assert "c/0" in DeliveryLedger(path)


def test_only_the_newest_are_kept_and_the_file_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "l.ids"
    ledger = DeliveryLedger(path, keep=3)
    for n in range(8):
        ledger.add(f"i/{n}")
    assert [f"i/{n}" in ledger for n in range(8)] == [False] * 5 + [True] * 3
    assert len(path.read_bytes().splitlines()) <= 6  # rewritten past twice `keep`
    reopened = DeliveryLedger(path, keep=3)
    assert {f"i/{n}" for n in range(5, 8)} == {f"i/{n}" for n in range(8) if f"i/{n}" in reopened}
