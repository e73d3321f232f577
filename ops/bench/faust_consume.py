"""The ceiling of any Faust agent here: one worker, the app's own Faust settings, one agent that
takes micro-batches from the ad-requests topic and does nothing with them. Run as a child by
:mod:`ops.bench.kafka`; the settings come from the environment (``AIMASS_*``).

    python -m ops.bench.faust_consume EXPECTED OUT.json
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import orjson


def main(expected: int, out: Path) -> None:
    from streams.contracts.topics import topic_names
    from streams.gcpause import freeze_startup
    from streams.settings import Settings
    from streams.worker.app import _faust_app

    s = Settings()
    app = _faust_app(s)
    topic = app.topic(topic_names(s)["ad-requests"])
    state = {"n": 0, "first": None, "batches": 0}

    @app.agent(topic, name="consume")
    async def consume(stream):
        freeze_startup()  # as the worker's agents do (streams.gcpause)
        async for batch in stream.take_events(max_=s.batch_size, within=s.batch_within):
            if state["first"] is None:
                state["first"] = time.perf_counter()
            state["n"] += len(batch)
            state["batches"] += 1
            if state["n"] >= expected:
                secs = time.perf_counter() - state["first"]
                out.write_bytes(orjson.dumps({"events": state["n"], "seconds": secs,
                                              "batches": state["batches"]}))
                os.kill(os.getpid(), signal.SIGTERM)

    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
