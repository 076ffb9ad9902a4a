"""What a backtest replays: the window shape, the lateness, and the alert thresholds to try."""

from __future__ import annotations

from dataclasses import dataclass

from app.settings import Settings


@dataclass(frozen=True, slots=True)
class WindowRule:
    """Hopping windows in event time, in milliseconds: [k*step, k*step + size), watermark
    per source partition = newest event time seen there (in offset order) - lateness."""

    size_ms: int
    step_ms: int
    lateness_ms: int

    def __post_init__(self) -> None:
        if self.step_ms <= 0 or self.size_ms <= 0 or self.size_ms % self.step_ms:
            msg = f"window size {self.size_ms} ms must be a positive multiple of {self.step_ms} ms"
            raise ValueError(msg)
        if self.lateness_ms < 0:
            msg = f"lateness {self.lateness_ms} ms must be >= 0"
            raise ValueError(msg)

    @property
    def per_event(self) -> int:
        """How many windows contain any one instant (size / step)."""
        return self.size_ms // self.step_ms

    @classmethod
    def from_settings(cls, settings: Settings) -> WindowRule:
        return cls(
            settings.window_size * 1000,
            settings.window_step * 1000,
            settings.allowed_lateness * 1000,
        )


@dataclass(frozen=True, slots=True, order=True)
class Thresholds:
    """A window alerts at its first view, in processing order, with views > `views` while its
    purchases are < `purchases`."""

    views: int
    purchases: int

    def __post_init__(self) -> None:
        if self.views < 0 or self.purchases < 1:
            msg = f"thresholds views={self.views} (>= 0), purchases={self.purchases} (>= 1)"
            raise ValueError(msg)

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(settings.views_threshold, settings.purchases_threshold)
