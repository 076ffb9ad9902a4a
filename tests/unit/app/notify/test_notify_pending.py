"""How far the notifier may commit: up to the first record some channel still owes."""

from __future__ import annotations

from app.notify.pending import InFlight


def test_commits_stop_at_the_first_record_still_owed() -> None:
    flight = InFlight()
    assert flight.committable("p0") is None
    flight.admit("p0", 10, ["webhook", "email"])
    flight.admit("p0", 11, [])  # an update: owed by nobody
    flight.admit("p0", 12, ["webhook", "email"])
    flight.moved("p0", 14)  # past a transaction marker
    assert flight.owed() == 2 and flight.committable("p0") == 10
    flight.settle("p0", 10, "webhook")
    flight.settle("p0", 12, "webhook")
    flight.settle("p0", 12, "email")
    assert flight.committable("p0") == 10  # the mail server still owes 10
    flight.settle("p0", 10, "email")
    assert flight.owed() == 0 and flight.committable("p0") == 14


def test_partitions_are_independent_and_forgotten_when_revoked() -> None:
    flight = InFlight()
    flight.admit("p0", 5, ["webhook"])
    flight.moved("p0", 6)
    flight.moved("p1", 40)
    assert flight.committable("p1") == 40
    flight.forget(["p0"])
    flight.settle("p0", 5, "webhook")  # a late settle of a revoked record changes nothing
    assert flight.committable("p0") is None and flight.owed() == 0
