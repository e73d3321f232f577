"""Joining feedback to its request within the late-click window, and merging the joined
examples of several partitions into request-time order. Kafka-free."""
