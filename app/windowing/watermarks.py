"""Source partitions' watermarks: where they are stored and when a silent one stops counting."""

from __future__ import annotations

from app.windowing.slices import SEP

# Each source partition's watermark, stored beside the slices so that a restarted worker
# serves and expires windows as before without waiting for every source to report again.
# No product key starts with SEP (product ids are never empty).
WATERMARKS_KEY = f"{SEP}source-watermarks".encode()
SOURCE_IDLE_S = 600.0
