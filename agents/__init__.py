"""Stream processors: the ingest, window and alert-sink stages, each an aiokafka consumer group
inside the worker, and the stall watchdog."""
