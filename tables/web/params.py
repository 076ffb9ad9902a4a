"""Query-string parameters of the web API, checked strictly: a typo is a 400, not a default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tables.web.guard import BadRequest

ALWAYS_ALLOWED = frozenset({"token"})


def reject_unknown(query: Mapping[str, str], allowed: Iterable[str]) -> None:
    known = ALWAYS_ALLOWED | set(allowed)
    unknown = sorted(set(query) - known)
    if unknown:
        msg = f"unknown parameter {unknown[0]!r}"
        raise BadRequest(msg, allowed=sorted(set(allowed)))


def whole_number(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer from `low` to `high`; `default` when the parameter is absent."""
    raw = query.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not text.isdigit() or len(text) > 9:
        msg = f"{name}={raw!r} is not a whole number from {low} to {high}"
        raise BadRequest(msg, parameter=name)
    value = int(text)
    if not low <= value <= high:
        msg = f"{name}={value} is out of range: expected {low} to {high}"
        raise BadRequest(msg, parameter=name)
    return value


def choice(query: Mapping[str, str], name: str, options: Iterable[str], default: str) -> str:
    """One of `options`; `default` when the parameter is absent."""
    allowed = list(options)
    value = query.get(name, default)
    if value not in allowed:
        msg = f"{name}={value!r} is not one of {', '.join(allowed)}"
        raise BadRequest(msg, parameter=name, allowed=allowed)
    return value


def epoch_ms(query: Mapping[str, str], name: str) -> int:
    """A required whole number of milliseconds since the epoch (internal requests)."""
    raw = query.get(name, "")
    text = raw[1:] if raw.startswith("-") else raw
    if not text.isdigit() or len(text) > 16:
        msg = f"{name}={raw!r} is not a whole number of milliseconds"
        raise BadRequest(msg, parameter=name)
    return int(raw)
