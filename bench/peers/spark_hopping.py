"""The seed's Spark Structured Streaming job over a topic read from the start; a peer.

    bench/.venv-spark/bin/python bench/peers/spark_hopping.py BOOTSTRAP TOPIC EVENTS CASE

As the original system ran it: local[2], JSON events from Kafka (the connector from Maven
Central via spark.jars.packages), 10-minute windows sliding by 1 minute on event time with a
1-minute watermark, views and purchases per product and window, and the flash-sale filter
(views > 100, purchases < 5), in update mode. The sink is `noop` instead of the console (the
console would print every alert row), and the trigger is availableNow: every record there is,
then stop. Prints `BENCH start` when the query starts and `BENCH result {json}` at its end.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

import pyspark
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

bootstrap, topic, expected, case = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
connector = f"org.apache.spark:spark-sql-kafka-0-10_2.13:{pyspark.__version__}"
spark = (
    SparkSession.builder.master("local[2]").appName("bench-seed-job")
    .config("spark.jars.packages", connector)
    .config("spark.sql.shuffle.partitions", "4")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)  # fmt: skip
spark.sparkContext.setLogLevel("ERROR")
schema = StructType([StructField(name, StringType()) for name in
                     ("user_id", "product_id", "event_type", "timestamp")])  # fmt: skip
value = F.col("value").cast("string")
source = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
          .option("subscribe", topic).option("startingOffsets", "earliest").load())  # fmt: skip
if case == "batch100":
    events = source.select(F.explode(F.from_json(value, ArrayType(schema))).alias("e"))
else:
    events = source.select(F.from_json(value, schema).alias("e"))
events = events.select("e.*").withColumn("ts", F.to_timestamp("timestamp"))
windows = (
    events.withWatermark("ts", "1 minute")
    .groupBy(F.window("ts", "10 minutes", "1 minute"), "product_id")
    .agg(F.sum(F.when(F.col("event_type") == "view", 1).otherwise(0)).alias("views"),
         F.sum(F.when(F.col("event_type") == "purchase", 1).otherwise(0)).alias("purchases"))
)  # fmt: skip
alerts = windows.filter((F.col("views") > 100) & (F.col("purchases") < 5))
with tempfile.TemporaryDirectory(prefix="bench-spark-") as checkpoint:
    print("BENCH start", flush=True)
    began = time.perf_counter()
    query = (alerts.writeStream.outputMode("update").format("noop").trigger(availableNow=True)
             .option("checkpointLocation", checkpoint).start())  # fmt: skip
    query.awaitTermination()
    seconds = time.perf_counter() - began
    read = sum(int(p.get("numInputRows", 0)) for p in query.recentProgress)
spark.stop()
print("BENCH result " + json.dumps({
    "events": expected, "input_rows": read, "seconds": round(seconds, 2),
    "events_per_s": round(expected / seconds), "spark": pyspark.__version__,
}), flush=True)  # fmt: skip
