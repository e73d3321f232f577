"""The control plane: what tenants declare (their model graphs) and how it reaches the
workers and replicas."""
