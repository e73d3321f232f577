"""aimass stream processing: settings, event contracts, topics, data replay and the Faust app."""
