"""The recommendation API: HTTP handlers, access control, the snapshots it scores with,
its metrics and OpenAPI description."""
