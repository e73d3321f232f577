"""Mini-batch deep CTR models (torch) with shared parameters: one embedding table, many heads."""
