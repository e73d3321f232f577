"""Sinks: where the stream lands. ClickHouse (server or chdb) behind one small client."""
