"""A tenant's model set: predict-then-learn over its members and ensembles, metrics,
exactly-once by id, the overfitting guard. Kafka-free."""
