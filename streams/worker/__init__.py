"""The stream worker: the Faust app, its runtime and one module per stage (ingest, score,
join, train), each a thin layer over Kafka-free logic elsewhere."""
