"""Faust's schema with a decode that does nothing for raw topics: the app's ``Schema`` class
(the ``Schema`` setting).

Every topic of the worker is raw: keys and values stay bytes, and the stages validate them
(:mod:`streams.contracts.events`). Faust's compiled decode (``faust/serializers/schemas.py``,
``Schema.compile``) still runs the key and the value of every message through the serializer
registry (``loads_key``/``loads_value``, the codec lookup, the ``raw`` codec's ``want_bytes``,
``Model._maybe_reconstruct``) and builds the event through ``app.create_event``, which reads
the ``Event`` setting from the settings registry each time. Those steps took 1.6 s of a 23 s
run through Kafka on the MovieLens stream, a fifth of the consumer's delivery. For a schema with
no key or value type whose serializers are ``raw``, :meth:`Schema.compile` returns a decode
that builds the event from the message's bytes as they are (what the stock path returns for
them), the ``Event`` class resolved once. Any other schema takes Faust's own path.

>>> import faust
>>> app = faust.App("doc", key_serializer="raw", value_serializer="raw", Schema=Schema)
>>> Schema(key_serializer="raw", value_serializer="raw").raw(app)
True
>>> Schema(value_type=int).raw(app), Schema(value_serializer="json").raw(app)
(False, False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
from faust.serializers.schemas import _noop_decode_error
from faust.types import AppT, Message


class Schema(faust.Schema):
    def raw(self, app: AppT) -> bool:
        """Do keys and values pass as they are (no type, the ``raw`` codec)?"""
        key = self.key_serializer or app.conf.key_serializer
        value = self.value_serializer or app.conf.value_serializer
        return self.key_type is None and self.value_type is None and key == "raw" == value

    def compile(self, app: AppT, *, on_key_decode_error=_noop_decode_error,
                on_value_decode_error=_noop_decode_error, default_propagate: bool = False):
        if not self.raw(app):
            return super().compile(app, on_key_decode_error=on_key_decode_error,
                                   on_value_decode_error=on_value_decode_error,
                                   default_propagate=default_propagate)
        make = self.event_maker(app)

        async def decode(message: Message, *, propagate: bool = default_propagate) -> Any:
            return make(message)

        return decode

    def event_maker(self, app: AppT) -> Callable[[Message], Any] | None:
        """The event of a message, as the compiled decode builds it (a plain function, for
        :meth:`streams.worker.conductor.Conductor.put_now`); None for a schema not raw."""
        if not self.raw(app):
            return None
        event = app.conf.Event
        return lambda message: event(app, message.key, message.value, message.headers, message)
