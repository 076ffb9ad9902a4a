"""Hopping-window arithmetic in event time: epoch-aligned windows, steps and the watermark.

A window starts at k * step and covers [start, start + size). An event at time t belongs to
the size/step windows whose start lies in (t - size, t]. State is kept per step-long *slice*
(bucket): a window's counts are the sum of the size/step slices it spans. A window is closed
once the watermark passes its end (watermark > end); later events no longer change it.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_WATERMARK = -(2**62)


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Window length and hop, in milliseconds."""

    size_ms: int
    step_ms: int

    @classmethod
    def from_seconds(cls, size_s: int, step_s: int) -> WindowSpec:
        """The spec of WINDOW_SIZE and WINDOW_STEP, given in seconds."""
        return cls(size_s * 1000, step_s * 1000)

    @property
    def per_event(self) -> int:
        """How many windows contain any one instant."""
        return self.size_ms // self.step_ms

    def slice_start(self, t_ms: int) -> int:
        """Start of the step-long slice holding t (also the newest window containing t)."""
        return t_ms - t_ms % self.step_ms

    def window_starts(self, t_ms: int) -> range:
        """Starts of every window containing t, oldest first."""
        newest = self.slice_start(t_ms)
        return range(newest - (self.per_event - 1) * self.step_ms, newest + 1, self.step_ms)

    def first_open_start(self, watermark_ms: int) -> int:
        """Start of the oldest window still open under this watermark (end >= watermark)."""
        lowest = watermark_ms - self.size_ms
        return -((-lowest) // self.step_ms) * self.step_ms  # ceil to a step

    def open_depth(self, t_ms: int, watermark_ms: int) -> int:
        """How many older windows beyond the newest one an event at t still counts toward.

        `per_event - 1` means every window containing t is open; -1 means none is: the
        event is late. Depth d means the windows starting at slice_start(t) - i * step for
        i in 0..d.
        """
        newest = self.slice_start(t_ms)
        if watermark_ms == NO_WATERMARK:
            return self.per_event - 1
        oldest_open = self.first_open_start(watermark_ms)
        if oldest_open > newest:
            return -1
        return min(self.per_event - 1, (newest - oldest_open) // self.step_ms)
