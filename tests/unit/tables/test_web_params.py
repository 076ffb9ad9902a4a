"""Query parameters: strict, with a message that names the parameter and what it accepts."""

from __future__ import annotations

import pytest

from tables.web.guard import BadRequest
from tables.web.params import choice, epoch_ms, reject_unknown, whole_number


def test_whole_numbers_in_range() -> None:
    assert whole_number({}, "limit", 5, 1, 100) == 5
    assert whole_number({"limit": "100"}, "limit", 5, 1, 100) == 100
    for raw in ("0", "101", "-1", "1.5", "1e3", "", " ", "x", "9" * 40, "\x00"):
        with pytest.raises(BadRequest, match="limit="):
            whole_number({"limit": raw}, "limit", 5, 1, 100)


def test_choices_and_unknown_parameters() -> None:
    assert choice({}, "metric", ["views", "purchases"], "views") == "views"
    with pytest.raises(BadRequest, match="not one of views, purchases"):
        choice({"metric": "clicks"}, "metric", ["views", "purchases"], "views")
    reject_unknown({"limit": "1", "token": "t"}, ["limit"])
    with pytest.raises(BadRequest, match="unknown parameter 'lmit'"):
        reject_unknown({"lmit": "1"}, ["limit"])


def test_epoch_milliseconds() -> None:
    assert epoch_ms({"t": "-60000"}, "t") == -60000
    assert epoch_ms({"t": "1795770000000"}, "t") == 1795770000000
    for raw in ("", "abc", "1.0", "-", "1" * 20):
        with pytest.raises(BadRequest):
            epoch_ms({"t": raw}, "t")
