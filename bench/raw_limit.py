"""The raw limit in a process of its own, so that its CPU and memory are its alone.

    python -m bench.raw_limit BOOTSTRAP TOPIC

aiokafka + orjson + a dict of the 10 hopping windows of every event (`bench.streaming`'s
baseline), over the whole topic once. Prints `BENCH start` and `BENCH result {json}`.
"""

from __future__ import annotations

import asyncio
import sys

import orjson

from bench.streaming import consume_and_count

if __name__ == "__main__":
    bootstrap, topic = sys.argv[1], sys.argv[2]
    print("BENCH start", flush=True)
    figures = asyncio.run(consume_and_count(bootstrap, topic))
    print("BENCH result " + orjson.dumps(figures).decode(), flush=True)
