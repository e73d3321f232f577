"""The raw schema's decode gives the events Faust's own decode gives, without its registry."""

import asyncio

import faust
import pytest
from faust.types import TP, Message

from streams.worker.schema import Schema


def message(key, value, headers):
    return Message("t", 0, 7, 1.0, 0, headers, key, value, None, tp=TP("t", 0))


CASES = [(b"k", b'{"a": 1}', []), (None, b"v", [("h", b"x")]), (b"k", None, None),
         (None, None, [])]


@pytest.mark.parametrize("key,value,headers", CASES)
def test_same_events_as_faust(key, value, headers):
    app = faust.App("schema-test", key_serializer="raw", value_serializer="raw", Schema=Schema)
    ours = Schema(allow_empty=True).compile(app)
    stock = faust.Schema(allow_empty=True).compile(app)
    got = asyncio.run(ours(message(key, value, headers)))
    want = asyncio.run(stock(message(key, value, headers)))
    assert type(got) is type(want)
    assert (got.key, got.value, got.headers) == (want.key, want.value, want.headers)
    assert got.message.offset == 7


def test_typed_or_serialized_topics_take_faust_path():
    app = faust.App("schema-test2", key_serializer="raw", value_serializer="json", Schema=Schema)
    decode = Schema().compile(app)
    got = asyncio.run(decode(message(b"k", b'{"a": 1}', [])))
    assert got.value == {"a": 1}  # decoded by the json codec, not passed through
