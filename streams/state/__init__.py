"""Model state on Kafka: the signed state file, trainer checkpoints, and the snapshots
serving replicas follow."""
