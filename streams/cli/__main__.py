"""`python -m streams.cli`: the `aimass` command."""

from streams.cli.main import main

main()
