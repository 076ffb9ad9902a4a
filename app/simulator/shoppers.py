"""Shoppers in sessions: each session browses products, adds some to the cart, checks out.

A fixed number of sessions is open at any moment; every event comes from one of them, chosen
at random, so sessions interleave as on a real site. When a session has nothing left to do a
new one starts for a user who has no open session. Every `add_to_cart` follows a view of the
same product in the same session, and every `purchase` follows its `add_to_cart`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from app.simulator.catalog import Catalog

VIEW, ADD_TO_CART, PURCHASE = 0, 1, 2
SESSION_SECONDS = 240.0  # how long a typical session stays open


@dataclass(frozen=True, slots=True)
class ShopperBehaviour:
    """Shopper behaviour: how many products a session views and how often views convert."""

    cart_rate: float = 0.08  # share of views followed by an add_to_cart
    purchase_rate: float = 0.35  # share of carted products bought at checkout
    mean_views: float = 6.0  # product views per session
    category_focus: float = 0.7  # share of a session's views in its favourite category

    def __post_init__(self) -> None:
        for name in ("cart_rate", "purchase_rate", "category_focus"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                msg = f"{name}={getattr(self, name)!r} must be between 0 and 1"
                raise ValueError(msg)
        if self.mean_views < 1.0:
            msg = f"mean_views={self.mean_views!r} must be at least 1"
            raise ValueError(msg)

    @property
    def events_per_session(self) -> float:
        return self.mean_views * (1.0 + self.cart_rate * (1.0 + self.purchase_rate))


DEFAULT_BEHAVIOUR = ShopperBehaviour()


def user_ids(count: int) -> list[str]:
    width = max(4, len(str(count)))
    return [f"U{number:0{width}d}" for number in range(1, count + 1)]


def concurrent_sessions(pace: float, behaviour: ShopperBehaviour, users: int) -> int:
    """Open sessions for a pace (events/s) so that a session lasts about SESSION_SECONDS."""
    wanted = round(pace * SESSION_SECONDS / behaviour.events_per_session) if pace > 0 else users
    return max(1, min(wanted, users // 2 or 1, 5000))


class Session:
    """One visit: who, which session, and the actions still to come (last one next)."""

    __slots__ = ("actions", "session_id", "user", "user_id")

    def __init__(
        self, user: int, user_id: str, session_id: str, actions: list[tuple[int, int]]
    ) -> None:
        self.user = user
        self.user_id = user_id
        self.session_id = session_id
        self.actions = actions


class ShopperPool:
    """The open sessions; `next_action()` is the next thing one of them does."""

    def __init__(
        self,
        catalog: Catalog,
        behaviour: ShopperBehaviour,
        users: list[str],
        open_sessions: int,
        rng: random.Random,
        session_prefix: str,
    ) -> None:
        self._catalog = catalog
        self._behaviour = behaviour
        self._users = users
        self._random = rng.random
        self._prefix = session_prefix
        self._started = 0
        self._idle = list(range(len(users)))  # users with no open session
        self._log_keep_browsing = (
            math.log(1.0 - 1.0 / behaviour.mean_views) if behaviour.mean_views > 1 else None
        )
        self._sessions = [self._open() for _ in range(min(open_sessions, len(users)))]

    def next_action(self) -> tuple[int, str, str, int]:
        """(event type, user id, session id, product index) of the next event."""
        sessions = self._sessions
        slot = int(self._random() * len(sessions))
        session = sessions[slot]
        event_type, product = session.actions.pop()
        if not session.actions:
            self._idle.append(session.user)
            sessions[slot] = self._open()
        return event_type, session.user_id, session.session_id, product

    def _open(self) -> Session:
        idle = self._idle
        pick = int(self._random() * len(idle))
        idle[pick], idle[-1] = idle[-1], idle[pick]
        user = idle.pop()
        self._started += 1
        session_id = f"{self._prefix}{self._started}"
        return Session(user, self._users[user], session_id, self._plan_actions())

    def _plan_actions(self) -> list[tuple[int, int]]:
        rand = self._random
        behaviour = self._behaviour
        catalog = self._catalog
        views = 1
        if self._log_keep_browsing is not None:
            views += int(math.log(1.0 - rand()) / self._log_keep_browsing)
        favourite = catalog.draw_category(rand())
        actions: list[tuple[int, int]] = []
        carted: list[int] = []
        for _ in range(views):
            if rand() < behaviour.category_focus:
                product = catalog.draw_in_category(favourite, rand())
            else:
                product = catalog.draw_product(rand())
            actions.append((VIEW, product))
            if rand() < behaviour.cart_rate:
                actions.append((ADD_TO_CART, product))
                carted.append(product)
        actions.extend((PURCHASE, p) for p in carted if rand() < behaviour.purchase_rate)
        actions.reverse()
        return actions
