"""Operations: starting services on loopback, Prometheus/Grafana provisioning, benchmarks."""
