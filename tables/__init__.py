"""State the web reads: the window stage's serving partitions, in-memory topic feeds, the
broker probe, throughput, and read models over window state. The HTTP views are in `web/`."""
