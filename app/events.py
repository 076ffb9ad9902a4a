"""Input events: the validated shape of one shopper action, and how raw Kafka bytes become one.

A Kafka message holds one JSON event object or a JSON array of them (a batching producer),
optionally after a UTF-8 byte-order mark. Each element is validated on its own: a bad element
becomes a `Rejected` with a stable reason code and goes to the dead-letter topic without its
neighbours. Ids are bounded here, at the edge: at most MAX_ID_LENGTH characters and no control
characters, so no later stage (Kafka message sizes, state keys, the console) meets a hostile one.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import NamedTuple

import orjson

from app.errors import InvalidEventError
from app.event_time import MIN_EVENT_TIME_MS, parse_timestamp_ms
from app.rejections import Reason, Rejected

EVENT_TYPES = ("view", "add_to_cart", "purchase")
TYPE_INDEX = {name: index for index, name in enumerate(EVENT_TYPES)}
_KNOWN_FIELDS = frozenset(
    {"event_id", "user_id", "session_id", "product_id", "product_category", "event_type",
     "timestamp", "price"}
)  # fmt: skip
_REQUIRED_TEXT = ("user_id", "product_id", "event_type")
_OPTIONAL_TEXT = ("event_id", "session_id", "product_category")
MAX_ID_LENGTH = 256  # characters of any id; the web API accepts no longer product_id either
_ID_FIELDS = ("product_id", "user_id", "session_id", "event_id")
# C0 (NUL, ESC, ...), DEL and C1: never in an id; escaped wherever text reaches a terminal.
CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")
_UTF8_BOM = b"\xef\xbb\xbf"  # .NET and Windows tools write it before UTF-8 JSON


class Event(NamedTuple):
    """One valid shopper action. `event_time_ms` is epoch milliseconds, UTC.

    A named tuple rather than a frozen dataclass: one is built per input event, and a
    frozen dataclass's __init__ costs several times more.
    """

    event_id: str
    user_id: str
    session_id: str | None
    product_id: str
    product_category: str | None
    event_type: str
    event_time_ms: int
    price: float | None
    extra: str | None
    kafka_partition: int
    kafka_offset: int

    @property
    def type_index(self) -> int:
        return TYPE_INDEX[self.event_type]

    @property
    def event_time(self) -> datetime:
        return datetime.fromtimestamp(self.event_time_ms / 1000, tz=UTC)


class EventParser:
    """Turns message bytes into events and rejections, with the limits from settings."""

    def __init__(self, max_event_bytes: int, max_clock_skew_s: int) -> None:
        self.max_event_bytes = max_event_bytes
        self.max_clock_skew_ms = max_clock_skew_s * 1000

    def parse_message(
        self, raw: bytes | None, topic: str, partition: int, offset: int, now_ms: int
    ) -> tuple[list[Event], list[Rejected]]:
        """All events of one Kafka message, and whatever in it was not valid."""
        if not raw:
            return [], [Rejected(Reason.EMPTY, "message has no bytes", raw or b"", None)]
        if len(raw) > self.max_event_bytes:
            detail = f"message is {len(raw)} bytes, over MAX_EVENT_BYTES={self.max_event_bytes}"
            return [], [Rejected(Reason.TOO_LARGE, detail, raw, None)]
        try:
            decoded = orjson.loads(raw[3:] if raw.startswith(_UTF8_BOM) else raw)
        except orjson.JSONDecodeError as exc:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return [], [Rejected(Reason.NOT_UTF8, "message is not UTF-8 text", raw, None)]
            return [], [Rejected(Reason.NOT_JSON, f"not JSON: {exc}", raw, None)]
        limit = now_ms + self.max_clock_skew_ms
        if isinstance(decoded, dict):
            try:
                event = self._event(decoded, topic, partition, offset, None, limit)
            except InvalidEventError as exc:
                return [], [Rejected(exc.reason, exc.detail, raw, None)]
            return [event], []
        if isinstance(decoded, list):
            return self._batch(decoded, raw, topic, partition, offset, limit)
        kind = type(decoded).__name__
        return [], [Rejected(Reason.NOT_OBJECT, f"JSON {kind} is not an event object", raw, None)]

    def _batch(
        self, items: list[object], raw: bytes, topic: str, partition: int, offset: int, limit: int
    ) -> tuple[list[Event], list[Rejected]]:
        if not items:
            return [], [Rejected(Reason.EMPTY_BATCH, "JSON array holds no events", raw, None)]
        events: list[Event] = []
        rejected: list[Rejected] = []
        for index, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    kind = type(item).__name__
                    raise InvalidEventError(
                        Reason.NOT_OBJECT, f"JSON {kind} is not an event object"
                    )
                events.append(self._event(item, topic, partition, offset, index, limit))
            except InvalidEventError as exc:
                rejected.append(Rejected(exc.reason, exc.detail, orjson.dumps(item), index))
        return events, rejected

    @staticmethod
    def _event(
        obj: dict[str, object],
        topic: str,
        partition: int,
        offset: int,
        index: int | None,
        limit_ms: int,
    ) -> Event:
        """One event; without an event_id it gets a stable one from topic/partition/offset."""
        # Hot path: one look-up per field and exact type checks; anything unusual is
        # re-examined by _explain_invalid, which raises the precise reason.
        get = obj.get
        user_id, product_id, event_type = get("user_id"), get("product_id"), get("event_type")
        session_id, category, event_id = get("session_id"), get("product_category"), get("event_id")
        if (
            type(user_id) is not str
            or type(product_id) is not str
            or type(event_type) is not str
            or event_type not in TYPE_INDEX
            or not user_id.strip()
            or not product_id.strip()
            or (session_id is not None and type(session_id) is not str)
            or (category is not None and type(category) is not str)
            or (event_id is not None and type(event_id) is not str)
        ):
            raise _explain_invalid(obj)
        if (
            len(product_id) > MAX_ID_LENGTH
            or len(user_id) > MAX_ID_LENGTH
            or (session_id is not None and len(session_id) > MAX_ID_LENGTH)
            or (event_id is not None and len(event_id) > MAX_ID_LENGTH)
            or not product_id.isprintable()
            or not user_id.isprintable()
            or (session_id is not None and not session_id.isprintable())
            or (event_id is not None and not event_id.isprintable())
        ):
            _check_ids(obj)  # raises the precise reason; lets pass ids merely not printable
        stamp = get("timestamp")
        if type(stamp) is int and MIN_EVENT_TIME_MS <= stamp <= limit_ms:
            time_ms = stamp
        else:
            if stamp is None:
                raise InvalidEventError(
                    Reason.MISSING_FIELD, "required field 'timestamp' is missing"
                )
            time_ms = parse_timestamp_ms(stamp)
            if time_ms > limit_ms:
                raise InvalidEventError(
                    Reason.FUTURE_TIMESTAMP, f"timestamp {stamp!r} is beyond MAX_CLOCK_SKEW"
                )
        price = get("price")
        if price is not None:
            if type(price) is not float and type(price) is not int:
                raise InvalidEventError(
                    Reason.BAD_PRICE, f"price {str(price)[:40]!r} is not a number"
                )
            if not math.isfinite(price) or price < 0:
                raise InvalidEventError(Reason.BAD_PRICE, f"price {price!r} is not a number >= 0")
            price = float(price)
        extra = None
        if not obj.keys() <= _KNOWN_FIELDS:
            extra = orjson.dumps({k: v for k, v in obj.items() if k not in _KNOWN_FIELDS}).decode()
        if not event_id:
            event_id = f"{topic}-{partition}-{offset}"
            if index is not None:
                event_id = f"{event_id}-{index}"
        return Event(
            event_id, user_id, session_id, product_id, category, event_type,
            time_ms, price, extra, partition, offset,
        )  # fmt: skip


def _explain_invalid(obj: dict[str, object]) -> InvalidEventError:
    """The precise reason an event failed the hot path's checks."""
    for name in _REQUIRED_TEXT:
        value = obj.get(name)
        if value is None:
            return InvalidEventError(Reason.MISSING_FIELD, f"required field {name!r} is missing")
        if not isinstance(value, str):
            kind = type(value).__name__
            return InvalidEventError(Reason.WRONG_TYPE, f"{name} must be a string, got {kind}")
        if not value.strip():
            return InvalidEventError(Reason.EMPTY_FIELD, f"required field {name!r} is empty")
    for name in _OPTIONAL_TEXT:
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            kind = type(value).__name__
            return InvalidEventError(Reason.WRONG_TYPE, f"{name} must be a string, got {kind}")
    event_type = str(obj.get("event_type"))[:40]
    return InvalidEventError(
        Reason.UNKNOWN_EVENT_TYPE, f"event_type {event_type!r} is not one of {EVENT_TYPES}"
    )


def _check_ids(obj: dict[str, object]) -> None:
    """Refuse an id that is too long or holds a control character, naming field and value."""
    for name in _ID_FIELDS:
        value = obj.get(name)
        if not isinstance(value, str):
            continue
        if len(value) > MAX_ID_LENGTH:
            detail = f"{name} is {len(value)} characters long, over MAX_ID_LENGTH={MAX_ID_LENGTH}"
            raise InvalidEventError(Reason.ID_TOO_LONG, detail)
        found = CONTROL_CHARACTER.search(value)
        if found is not None:
            detail = (
                f"{name} holds control character U+{ord(found.group()):04X} "
                f"at position {found.start()}"
            )
            raise InvalidEventError(Reason.CONTROL_CHARACTER, detail)
