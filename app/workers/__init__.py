"""`clickstream worker`: several worker processes on one machine, in one consumer group."""
