"""The window engine: exact hopping-window counts per product, pure and free of I/O.

- `spec`: window size and step, slice and window arithmetic, the watermark sentinel
- `slices`: one product's counts in one step-long slice, and its key in the store
- `seen_ids`: supplied event ids already counted, so a producer's retry counts once
- `watermarks`: source partitions' watermarks, their stored record, when a silent one stops
  counting
- `alert_rule`: `qualifies`, the alert rule on a window's counts, for the engine and the web
- `window_alert`: the record of a window that met the alert rule
- `batch_groups`: a batch's rows summed per (product, slice, depth), and the crossing replay
- `slice_cache`: a partition's slices and window totals in memory, over its store
- `partition_windows`: the state of one worker partition, applying batches and expiring
"""
