"""The `aimass` command: Faust's command line with our subcommands, and the demo."""
