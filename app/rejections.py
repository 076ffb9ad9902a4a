"""Why an element of an input message is not an event: the dead-letter reason codes, and the
rejected element as it goes to the dead-letter topic."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Why a message element went to the dead-letter topic (the `x-dlq-reason` header)."""

    BAD_PRICE = "bad_price"
    BAD_TIMESTAMP = "bad_timestamp"
    CONTROL_CHARACTER = "control_character"
    EMPTY = "empty"
    EMPTY_BATCH = "empty_batch"
    EMPTY_FIELD = "empty_field"
    FUTURE_TIMESTAMP = "future_timestamp"
    ID_TOO_LONG = "id_too_long"
    MISSING_FIELD = "missing_field"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    NOT_UTF8 = "not_utf8"
    TOO_LARGE = "too_large"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    WRONG_TYPE = "wrong_type"


@dataclass(frozen=True, slots=True)
class Rejected:
    """One element of a message that is not a valid event; `raw` is what goes to the DLQ."""

    reason: str
    detail: str
    raw: bytes
    index: int | None
