"""The state file: model snapshots and trainer checkpoints as signed, versioned data.

What a worker writes to the ``checkpoints`` and ``model-updates`` topics, and reads back, is::

    magic    8 bytes   b"AIMASS\\x00\\x01"
    version  u16 LE    format version (1)
    hlen     u32 LE    length of the header
    header   hlen      JSON: kind ("checkpoint" | "snapshot"), tenant, model_version,
                       created_at, payload_bytes (uncompressed), arrays: [{dtype, shape,
                       offset, nbytes}] (offsets into the uncompressed payload, after the tree)
    payload  ...       zlib: u32 LE tree length, the tree (JSON, see learners.state), then
                       the arrays' raw bytes (little-endian, C order)
    mac      32 bytes  HMAC-SHA256 over everything before it, with the state key

A reader checks the length, the magic and the MAC (in constant time) before it looks at
anything else; then the version, the header, and the decompressed size against the header's.
Arrays are numeric only (no object dtype). The tree names classes only from a fixed allow-list
and is rebuilt without calling anything it names (:mod:`learners.state`). A message that fails
any check raises :class:`StateRejected` with the reason; callers keep the model they have.

The key comes from ``AIMASS_STATE_KEY`` (the key itself), else ``AIMASS_STATE_KEY_FILE``, else
``<data_dir>/state.key``, made (random, 32 bytes, mode 0600) by the first process that needs
it: a worker and the replicas started from one directory share it; across machines, give them
the same key.

>>> key = b"k" * 32
>>> blob = seal(key, "snapshot", {"tenant": "acme", "model_version": 3}, {"w": [1.5, 2.5]})
>>> meta, obj = unseal(key, blob, "snapshot")
>>> meta["tenant"], obj
('acme', {'w': [1.5, 2.5]})
>>> unseal(b"x" * 32, blob, "snapshot")
Traceback (most recent call last):
...
streams.state.statefile.StateRejected: bad signature: not signed with this key
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import orjson

from learners.state import StateError, decode, encode

MAGIC = b"AIMASS\x00\x01"
VERSION = 1
MAC_BYTES = 32
MAX_HEADER = 1 << 20
MAX_PAYLOAD = 1 << 31  # 2 GiB uncompressed
KINDS = ("checkpoint", "snapshot", "model-spec")
_DTYPES = {np.dtype(t).str for t in ("bool", "int8", "int16", "int32", "int64", "uint8",
                                      "uint16", "uint32", "uint64", "float16", "float32",
                                      "float64")}


class StateRejected(ValueError):
    """A state message this process will not read; ``reason`` says why, ``code`` is one of
    ``signature``, ``legacy``, ``version``, ``format`` (for a metric label)."""

    def __init__(self, reason: str, code: str = "format"):
        super().__init__(reason)
        self.reason, self.code = reason, code


def seal(key: bytes, kind: str, meta: dict, obj) -> bytes:
    """``obj`` (see :mod:`learners.state`) as a signed state file of ``kind``."""
    return seal_tree(key, kind, meta, *encode(obj))


def seal_tree(key: bytes, kind: str, meta: dict, tree, arrays: list[np.ndarray]) -> bytes:
    """An encoded state (:class:`learners.state.Encoder`) as a signed state file."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    tree_json = orjson.dumps(tree)
    parts = [struct.pack("<I", len(tree_json)), tree_json]
    offset = 4 + len(tree_json)
    specs = []
    for a in arrays:
        a = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False)
        raw = a.tobytes()
        specs.append({"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset,
                      "nbytes": len(raw)})
        parts.append(raw)
        offset += len(raw)
    header = orjson.dumps({**meta, "kind": kind, "format": "aimass-state", "arrays": specs,
                           "payload_bytes": offset,
                           "created_at": meta.get("created_at", time.time())})
    body = (MAGIC + struct.pack("<HI", VERSION, len(header)) + header
            + zlib.compress(b"".join(parts), 1))
    return body + hmac.new(key, body, hashlib.sha256).digest()


def verify(key: bytes, data: bytes | None, kind: str) -> dict:
    """The header of a state file whose signature, version and kind check out (cheap: no
    decompression), or :class:`StateRejected`."""
    return _checked(key, data, kind)[0]


def unseal(key: bytes, data: bytes | None, kind: str,
           serving: bool = False) -> tuple[dict, object]:
    """(header, object) of a state file, or :class:`StateRejected`. ``serving``: the object
    will only score (:func:`learners.state.decode`)."""
    header, body, start = _checked(key, data, kind)
    size = header.get("payload_bytes")
    if not isinstance(size, int) or not 4 <= size <= MAX_PAYLOAD:
        raise StateRejected("payload size out of range")
    d = zlib.decompressobj()
    try:
        payload = d.decompress(body[start:], size + 1)
    except zlib.error as exc:
        raise StateRejected(f"payload does not decompress: {exc}") from None
    if len(payload) != size:
        raise StateRejected("payload size differs from the header's")
    try:
        tree_len = struct.unpack_from("<I", payload, 0)[0]
        tree = orjson.loads(payload[4:4 + tree_len])
        arrays = [_array(payload, spec) for spec in header.get("arrays", [])]
        return header, decode(tree, arrays, serving)
    except (StateError, ValueError, TypeError, KeyError, struct.error) as exc:
        raise StateRejected(f"malformed state: {exc}") from None


def _checked(key: bytes, data: bytes | None, kind: str) -> tuple[dict, bytes, int]:
    """(header, signed body, offset of the payload)."""
    if not data:
        raise StateRejected("empty")
    if data[:len(MAGIC)] != MAGIC:
        legacy = data[:2] in (b"x\x01", b"x\x9c", b"x^", b"x\xda")
        if legacy:
            raise StateRejected("an old pickled state, which is never read: this tenant starts "
                                "fresh (its next examples train it; replay its history to "
                                "relearn it)", "legacy")
        raise StateRejected("not a state file (bad magic)")
    if len(data) < len(MAGIC) + 6 + MAC_BYTES:
        raise StateRejected("too short to be a state file")
    body, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), mac):
        raise StateRejected("bad signature: not signed with this key", "signature")
    version, hlen = struct.unpack_from("<HI", body, len(MAGIC))
    if version != VERSION:
        raise StateRejected(f"unknown format version {version} (this reader knows {VERSION})",
                            "version")
    start = len(MAGIC) + 6
    if hlen > MAX_HEADER or start + hlen > len(body):
        raise StateRejected("header length out of range")
    try:
        header = orjson.loads(body[start:start + hlen])
    except orjson.JSONDecodeError as exc:
        raise StateRejected(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("kind") != kind:
        raise StateRejected(f"not a {kind} (kind {header.get('kind')!r})"
                            if isinstance(header, dict) else "header is not an object")
    return header, body, start + hlen


def _array(payload: bytes, spec: dict) -> np.ndarray:
    dtype, shape = spec["dtype"], spec["shape"]
    if dtype not in _DTYPES:
        raise StateError(f"array dtype {dtype!r} not allowed")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise StateError("bad array shape")
    dt = np.dtype(dtype)
    nbytes, offset = spec["nbytes"], spec["offset"]
    if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != nbytes or \
            not 0 <= offset <= len(payload) - nbytes:
        raise StateError("array bytes out of range")
    # a copy: the caller may write into it (a model learns in place)
    return np.frombuffer(payload, dtype=dt, count=nbytes // dt.itemsize,
                         offset=offset).reshape(shape).copy()


def load_key(settings) -> bytes:
    """The state key (see the module doc); makes ``<data_dir>/state.key`` if needed."""
    if settings.state_key:
        return settings.state_key.encode()
    path = Path(settings.state_key_file or settings.data_dir / "state.key")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
    for _ in range(50):  # written by a concurrent process a moment ago
        key = path.read_text().strip()
        if key:
            return key.encode()
        time.sleep(0.01)
    raise ValueError(f"{path}: the state key file is empty")
