"""The `aimass` command: Faust's own command line (so `aimass worker -l info` starts the stream
processor as Faust users expect) with our subcommands added (see :mod:`streams.commands`)."""

from __future__ import annotations


def main() -> None:
    from .app import create_app
    from .commands import register
    from .settings import Settings

    settings = Settings()
    app = create_app(settings)
    register(app, settings)
    app.main()


if __name__ == "__main__":
    main()
