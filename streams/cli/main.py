"""The `aimass` command: Faust's own command line (so `aimass worker -l info` starts the stream
processor as Faust users expect) with our subcommands added (see :mod:`streams.cli.commands`)."""

from __future__ import annotations

import sys


def main() -> None:
    import faust.cli.faust  # noqa: F401 - Faust's commands first: ours of the same name win

    from streams.cli.commands import register
    from streams.cli.models import register_models
    from streams.cli.tasks import register_tasks
    from streams.settings import Settings
    from streams.worker.app import create_app

    settings = Settings()
    if sys.argv[1:2] == ["worker"]:
        # the worker's topics must exist before Faust subscribes (it does not wait for them)
        from streams.contracts.topics import ensure_topics

        ensure_topics(settings)
    app = create_app(settings)
    register(app, settings)
    register_models(app, settings)  # after Faust's own `models`, which it replaces
    register_tasks(app, settings)
    app.main()


if __name__ == "__main__":
    main()
