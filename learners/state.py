"""Model state as data: a tree of JSON values plus numeric arrays. Reading it never runs code.

:func:`encode` turns an object graph into ``(tree, arrays)``: ``tree`` is plain JSON (it goes
through ``orjson``), ``arrays`` is a list of numeric numpy arrays the tree refers to by index.
:func:`decode` rebuilds the graph. What the reader may rebuild is closed:

- JSON scalars, lists, dicts, tuples, sets, deques, ``defaultdict`` and ``Counter``;
- numeric or boolean numpy arrays and scalars (never ``object`` arrays);
- ``random.Random`` and numpy ``RandomState`` states (their public ``setstate``);
- instances of the classes in :data:`ALLOWED` only: ours (each declares itself with
  :func:`persistent`) and a fixed list of river's. An instance is rebuilt the way ``copy`` does:
  ``cls.__new__(cls)`` and its attributes set, or its own ``from_state`` when the class has one
  (:class:`Persistent`). Nothing named in the data is imported, called or evaluated: a name that
  is not in the allow-list is an error.

Unlike pickle, the data cannot name a function to call: a forged state can at most describe an
object of an allowed class with odd values. (The state on Kafka and disk is also signed, see
:mod:`streams.state.statefile`; this is the second wall.)

>>> import numpy as np
>>> tree, arrays = encode({"w": np.arange(3.0), "n": 2, "tags": ("a", "b"), "nan": float("nan")})
>>> tree["$"], len(arrays)
('dict', 1)
>>> back = decode(tree, arrays)
>>> back["w"].tolist(), back["tags"], back["nan"] != back["nan"]
([0.0, 1.0, 2.0], ('a', 'b'), True)
>>> decode({"$": "obj", "cls": "os:system", "attrs": {}}, [])
Traceback (most recent call last):
...
learners.state.StateError: class 'os:system' is not allowed in a model state
"""

from __future__ import annotations

import collections
import functools
import importlib
import math
import random
from typing import Any

import numpy as np


class StateError(ValueError):
    """A state that cannot be read: unknown class, bad array, malformed tree."""


class Persistent:
    """A class whose state is written by ``to_state`` and read by ``from_state`` (plain values
    and arrays, encoded by this module), instead of its attributes as they are."""

    def to_state(self) -> Any:
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: Any) -> Persistent:
        raise NotImplementedError


class ReadForServing(Persistent):
    """A persistent class a reader that will only score with it (a replica's snapshot,
    :func:`decode` with ``serving=True``) reads with ``from_serving_state``: straight into
    what scoring reads, never building what only learning needs. What it returns refuses to
    learn or be saved (:class:`learners.base.ServingOnly`)."""

    @classmethod
    def from_serving_state(cls, state: Any) -> ReadForServing:
        raise NotImplementedError


#: name ("module:qualname") -> class. Only these can be rebuilt from a state. The builtin
#: types are here as ``defaultdict`` factories (``defaultdict(dict)``).
ALLOWED: dict[str, type] = {f"builtins:{t.__name__}": t
                            for t in (dict, list, set, tuple, int, float, str, bool)}
#: classes rebuilt by calling them with their own ``__reduce__`` arguments (plain data)
_BY_REDUCE: set[str] = set()

# river's classes that our river members hold (checked by learners/checks.py round trips)
_RIVER = (
    "river.linear_model.log_reg:LogisticRegression",
    "river.linear_model.ad_predictor:AdPredictor",
    "river.facto.fm:FMClassifier",
    "river.optim.sgd:SGD",
    "river.optim.losses:Log",
    "river.optim.schedulers:Constant",
    "river.optim.initializers:Zeros",
    "river.optim.initializers:Normal",
    "river.optim.initializers:Constant",
    "river.tree.hoeffding_tree_classifier:HoeffdingTreeClassifier",
    "river.tree.nodes.branch:NumericBinaryBranch",
    "river.tree.nodes.branch:NominalBinaryBranch",
    "river.tree.nodes.branch:NominalMultiwayBranch",
    "river.tree.nodes.branch:NumericMultiwayBranch",
    "river.tree.nodes.htc_nodes:LeafMajorityClass",
    "river.tree.nodes.htc_nodes:LeafNaiveBayes",
    "river.tree.nodes.htc_nodes:LeafNaiveBayesAdaptive",
    "river.tree.splitter.gaussian_splitter:GaussianSplitter",
    "river.tree.splitter.nominal_splitter_classif:NominalSplitterClassif",
    "river.proba.gaussian:Gaussian",
    "river.stats.mean:Mean",
    "river.stats.var:Var",
)
_RIVER_BY_REDUCE = ("river._river_rust.vectordict:VectorDict",)
# our modules whose classes declare themselves with @persistent
_OURS = ("learners.registry", "learners.guard", "learners.progressive", "learners.deep.shared",
         "ensemble", "learners.dedup", "learners.scaling", "streams.training.columns")
_loaded = False


def persistent(cls: type) -> type:
    """Class decorator: allow ``cls`` in states (ours; river's are listed above)."""
    ALLOWED[_name(cls)] = cls
    return cls


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _load() -> None:
    """Import the listed classes (fixed lists in this file, never names from data)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _OURS:
        importlib.import_module(module)
    for name in (*_RIVER, *_RIVER_BY_REDUCE):
        module, _, qual = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), qual)
        except (ImportError, AttributeError):  # another river version: those states refuse
            continue
        ALLOWED[_name(cls)] = cls
        if name in _RIVER_BY_REDUCE:
            _BY_REDUCE.add(_name(cls))


def _allowed(name: str) -> type:
    _load()
    cls = ALLOWED.get(name)
    if cls is None:
        raise StateError(f"class {name!r} is not allowed in a model state")
    return cls


_NUMERIC_KINDS = set("biuf")


# -- encode ----------------------------------------------------------------------------------

class Encoder:
    """Encodes values into one tree's arrays; :meth:`fork` shares what it encoded so far, so
    two states that hold the same models encode them once (a checkpoint and a snapshot)."""

    def __init__(self):
        self.arrays: list[np.ndarray] = []
        self.memo: dict[int, int] = {}  # id(obj) -> reference number
        self.keep: list = []  # keeps memoised objects alive (their ids stay theirs)

    def fork(self) -> Encoder:
        other = Encoder()
        other.arrays, other.memo, other.keep = list(self.arrays), dict(self.memo), list(self.keep)
        return other

    def ref(self, obj) -> dict | None:
        n = self.memo.get(id(obj))
        return None if n is None else {"$": "ref", "n": n}

    def mark(self, obj, node: dict) -> dict:
        self.memo[id(obj)] = n = len(self.memo)
        self.keep.append(obj)
        node["@"] = n
        return node

    def enc(self, obj: Any) -> Any:  # noqa: C901 - one branch per kind of value
        t = obj.__class__
        if obj is None or t is bool or t is int or t is str:
            return obj
        if t is float:
            return obj if math.isfinite(obj) else {"$": "float", "v": repr(obj)}
        if t is list:
            return [self.enc(v) for v in obj]
        r = self.ref(obj)
        if r is not None:
            return r
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in _NUMERIC_KINDS:
                raise StateError(f"array of dtype {obj.dtype} cannot be saved")
            self.arrays.append(np.ascontiguousarray(obj))
            return self.mark(obj, {"$": "array", "i": len(self.arrays) - 1})
        if isinstance(obj, np.generic):
            if obj.dtype.kind not in _NUMERIC_KINDS:
                raise StateError(f"scalar of dtype {obj.dtype} cannot be saved")
            return {"$": "np", "dtype": obj.dtype.str, "v": self.enc(obj.item())}
        if t is tuple:
            return {"$": "tuple", "v": [self.enc(v) for v in obj]}
        if t is set or t is frozenset:
            return {"$": t.__name__, "v": [self.enc(v) for v in obj]}
        if t is collections.deque:
            return self.mark(obj, {"$": "deque", "maxlen": obj.maxlen,
                                   "v": [self.enc(v) for v in obj]})
        if t is dict or t is collections.defaultdict or t is collections.Counter:
            node = self.mark(obj, {"$": {dict: "dict", collections.defaultdict: "defaultdict",
                                         collections.Counter: "counter"}[t]})
            if t is collections.defaultdict:
                node["factory"] = self.enc(obj.default_factory)
            if all(k.__class__ is str for k in obj):
                node["items"] = {k: self.enc(v) for k, v in obj.items()}
            else:
                node["pairs"] = [[self.enc(k), self.enc(v)] for k, v in obj.items()]
            return node
        if t is functools.partial:
            return {"$": "partial", "func": self.enc(obj.func), "args": self.enc(obj.args),
                    "kw": self.enc(obj.keywords)}
        if t is random.Random:
            return {"$": "random", "state": self.enc(obj.getstate())}
        if t is np.random.RandomState:
            return {"$": "randomstate", "state": self.enc(obj.get_state())}
        if isinstance(obj, type):
            _allowed(_name(obj))
            return {"$": "class", "cls": _name(obj)}
        name = _name(t)
        _allowed(name)
        if t.__module__ == "builtins":
            raise StateError(f"a {t.__name__} cannot be saved")
        if name in _BY_REDUCE:
            fn, args = obj.__reduce__()[:2]
            if fn is not t:
                raise StateError(f"{name} does not reduce to its own constructor")
            return self.mark(obj, {"$": "reduce", "cls": name, "args": self.enc(list(args))})
        if isinstance(obj, Persistent):
            return self.mark(obj, {"$": "persistent", "cls": name, "v": self.enc(obj.to_state())})
        node = self.mark(obj, {"$": "obj", "cls": name})
        node["attrs"] = {k: self.enc(v) for k, v in _attrs(obj).items()}
        return node


def _attrs(obj) -> dict:
    out = dict(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        for s in getattr(cls, "__slots__", ()):
            if s not in ("__dict__", "__weakref__") and hasattr(obj, s):
                out[s] = getattr(obj, s)
    return out


def encode(obj: Any) -> tuple[Any, list[np.ndarray]]:
    """``obj`` as (JSON tree, numeric arrays)."""
    e = Encoder()
    tree = e.enc(obj)
    return tree, e.arrays


# -- decode ----------------------------------------------------------------------------------

class _Decoder:
    def __init__(self, arrays: list[np.ndarray], serving: bool = False):
        self.arrays = arrays
        self.serving = serving
        self.memo: dict[int, Any] = {}

    def put(self, node: dict, obj):
        if "@" in node:
            self.memo[node["@"]] = obj
        return obj

    def dec(self, node: Any) -> Any:  # noqa: C901 - one branch per kind of value
        if node is None or isinstance(node, bool | int | float | str):
            return node
        if isinstance(node, list):
            return [self.dec(v) for v in node]
        if not isinstance(node, dict) or not isinstance(node.get("$"), str):
            raise StateError(f"malformed state node: {str(node)[:80]}")
        kind = node["$"]
        if kind == "ref":
            if node.get("n") not in self.memo:
                raise StateError("reference to an object not read yet")
            return self.memo[node["n"]]
        if kind == "float":
            if node.get("v") not in ("nan", "inf", "-inf"):
                raise StateError(f"bad float {node.get('v')!r}")
            return float(node["v"])
        if kind == "array":
            i = node.get("i")
            if not isinstance(i, int) or not 0 <= i < len(self.arrays):
                raise StateError(f"array index {i!r} out of range")
            return self.put(node, self.arrays[i])
        if kind == "np":
            dtype = np.dtype(node["dtype"])
            if dtype.kind not in _NUMERIC_KINDS:
                raise StateError(f"scalar dtype {dtype} not allowed")
            return dtype.type(self.dec(node["v"]))
        if kind == "tuple":
            return tuple(self.dec(v) for v in node["v"])
        if kind in ("set", "frozenset"):
            return (set if kind == "set" else frozenset)(self.dec(v) for v in node["v"])
        if kind == "deque":
            dq = self.put(node, collections.deque(maxlen=node.get("maxlen")))
            dq.extend(self.dec(v) for v in node["v"])
            return dq
        if kind in ("dict", "defaultdict", "counter"):
            if kind == "defaultdict":
                factory = self.dec(node.get("factory"))
                if factory is not None and not callable(factory):
                    raise StateError("defaultdict factory is not callable")
                d = collections.defaultdict(factory)
            else:
                d = collections.Counter() if kind == "counter" else {}
            self.put(node, d)
            if "items" in node:
                for k, v in node["items"].items():
                    d[k] = self.dec(v)
            else:
                for k, v in node.get("pairs", []):
                    d[self._key(self.dec(k))] = self.dec(v)
            return d
        if kind == "partial":
            func = self.dec(node["func"])
            if not callable(func):
                raise StateError("partial of something not callable")
            return functools.partial(func, *self.dec(node["args"]), **self.dec(node["kw"]))
        if kind == "random":
            r = random.Random()
            r.setstate(self._tuples(self.dec(node["state"])))
            return r
        if kind == "randomstate":
            rs = np.random.RandomState()
            rs.set_state(self._tuples(self.dec(node["state"])))
            return rs
        if kind == "class":
            return _allowed(node["cls"])  # a class object (a factory), not an instance
        if kind == "reduce":
            cls = _allowed(node["cls"])
            if node["cls"] not in _BY_REDUCE:
                raise StateError(f"{node['cls']} is not rebuilt from arguments")
            return self.put(node, cls(*self.dec(node["args"])))
        if kind == "persistent":
            cls = _allowed(node["cls"])
            if not issubclass(cls, Persistent):
                raise StateError(f"{node['cls']} has no from_state")
            if self.serving and issubclass(cls, ReadForServing):
                return self.put(node, cls.from_serving_state(self.dec(node["v"])))
            return self.put(node, cls.from_state(self.dec(node["v"])))
        if kind == "obj":
            cls = _allowed(node["cls"])
            if issubclass(cls, Persistent):
                raise StateError(f"{node['cls']} is read by its from_state")
            obj = self.put(node, cls.__new__(cls))
            for k, v in node.get("attrs", {}).items():
                object.__setattr__(obj, k, self.dec(v))
            return obj
        raise StateError(f"unknown state node kind {kind!r}")

    @staticmethod
    def _key(k):
        if isinstance(k, list | dict | set):
            raise StateError("unhashable dict key")
        return k

    @staticmethod
    def _tuples(v):
        """random's states are tuples of tuples; lists from the tree become tuples again."""
        return tuple(_Decoder._tuples(x) if isinstance(x, list | tuple) else x for x in v)


def decode(tree: Any, arrays: list[np.ndarray], serving: bool = False) -> Any:
    """Rebuild what :func:`encode` wrote; raises :class:`StateError` on anything else.
    ``serving``: for scoring only (:class:`ReadForServing` classes read just what it needs)."""
    try:
        return _Decoder(arrays, serving).dec(tree)
    except StateError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"malformed state: {type(exc).__name__}: {exc}") from None


def copy_state(obj: Any) -> Any:
    """A deep copy through the state format (what a round trip through Kafka gives)."""
    tree, arrays = encode(obj)
    return decode(tree, [a.copy() for a in arrays])
