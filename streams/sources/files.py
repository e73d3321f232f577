"""`aimass train FILE --label COLUMN`: a user's labelled CSV, TSV or Parquet file as training
examples.

Every row becomes a :class:`TrainingExample`: the label column coerced to 0/1 (or, with
``positive``, 1 where it equals that value and 0 elsewhere: ``>50K``, ``UP``), every other
column a feature (missing values dropped). Example ids are the file's content hash plus the row
number, so sending the same file twice names the same examples (learning is idempotent by id).
The examples keep the file's row order, or the order of ``time_column`` (a stable sort; the
column stays a feature). A test share marks rows that every model scores and none learns,
reported apart. ``weight_column`` weighs each row: the weights are relative, divided by their
mean over the file (a survey weight in the hundreds of thousands means what it says beside its
neighbours, and no row outweighs the file), in learning and in every metric; the column is not
a feature. Rows whose label or weight cannot be used (missing, not a number, negative, or over
:data:`~streams.contracts.fields.MAX_WEIGHT` times the mean) are refused before anything is
sent, with their row numbers.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import numpy as np

from learners.dedup import id_hash
from streams.contracts.events import MAX_WEIGHT, InvalidEvent, TrainingExample

TRUE = {"1", "true", "yes", "y", "t", "click", "clicked"}
FALSE = {"0", "false", "no", "n", "f"}


def to_label(v) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v)):
        if v in (0, 1):
            return int(v)
    elif isinstance(v, str):
        s = v.strip().lower()
        if s in TRUE:
            return 1
        if s in FALSE:
            return 0
    raise InvalidEvent("label", f"must be 0/1, true/false or yes/no, got {v!r}")


def read_table(path: Path):
    import pandas as pd

    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith((".csv", ".csv.gz", ".csv.zip", ".tsv", ".tsv.gz")):
        with open(path, "rb") as f:  # compressed by its bytes, whatever its name says
            magic = f.read(2)
        compression = {b"\x1f\x8b": "gzip", b"PK": "zip"}.get(magic, "infer")
        return pd.read_csv(path, sep="\t" if ".tsv" in name else ",", compression=compression)
    raise ValueError(f"{path}: unsupported file type; give a .csv, .csv.gz, .tsv or .parquet file")


def _clean(v):
    if v is None or isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.generic):  # a numpy scalar from pandas
        v = v.item()
    return v if isinstance(v, str | int | float | bool) else str(v)


def positive_label(positive: str):
    """A label mapper: 1 where the value (as text, trimmed) equals ``positive``, else 0; a
    missing value is an error."""
    want = positive.strip()

    def to(v) -> int:
        if v is None:
            raise InvalidEvent("label", "is missing")
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return int(str(v).strip() == want)
    return to


def _weights(col, path: Path, name: str) -> np.ndarray:
    """The column's weights over their mean, or ValueError naming the rows that cannot be."""
    import pandas as pd

    raw = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(raw) | (raw < 0)
    if not bad.any() and raw.mean() > 0:
        w = raw / raw.mean()
        bad = w > MAX_WEIGHT
        if not bad.any():
            return w
    if not bad.any():
        raise ValueError(f"{path}: every weight in column {name!r} is 0")
    raise _refused(path, f"weight in column {name!r} (a number >= 0, at most {MAX_WEIGHT:g} "
                         "times the mean)",
                   [f"row {col.index[j] + 1}: {_clean(col.iloc[j])!r}" for j in np.flatnonzero(bad)])


def _refused(path: Path, what: str, rows: list[str]) -> ValueError:
    """The error that refuses a file whole, naming its first bad rows."""
    more = f" (and {len(rows) - 5} more)" if len(rows) > 5 else ""
    return ValueError(f"{path}: {len(rows)} rows have an unusable {what}; nothing was sent:\n  "
                      + "\n  ".join(rows[:5]) + more)


def is_test(example_id: str, share: float) -> bool:
    """Deterministic, and independent of the holdout's choice: the same row is a test row in
    every run."""
    return share > 0 and id_hash("test/" + example_id) % 1_000_000 < share * 1_000_000


def examples_from_file(path: Path, label: str, tenant: str = "default",
                       now: float | None = None, positive: str | None = None,
                       time_column: str | None = None, test_share: float = 0.0,
                       weight_column: str | None = None) -> list[TrainingExample]:
    """Read the file and build its examples, or raise ValueError naming the bad rows.
    ``test_share``: that share of the rows is marked test (scored, never learned)."""
    if not 0 <= test_share < 1:
        raise ValueError(f"the test share must be in [0, 1), got {test_share}")
    df = read_table(path)
    for role, col in (("label", label), ("time", time_column), ("weight", weight_column)):
        if col is not None and col not in df.columns:
            raise ValueError(f"{path}: no {role} column {col!r}; the columns are "
                             f"{list(df.columns)}")
    if positive is not None and not (df[label].astype(str).str.strip() == positive.strip()).any():
        raise ValueError(f"{path}: no row has {label!r} equal to {positive!r}; its values "
                         f"include {sorted(map(str, df[label].dropna().unique()))[:10]}")
    if time_column is not None:
        df = df.sort_values(time_column, kind="stable", na_position="last")
    weights = None if weight_column is None else _weights(df[weight_column], path, weight_column)
    label_of = to_label if positive is None else positive_label(positive)
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:10]
    stem = path.name.split(".")[0]
    now = time.time() if now is None else now
    feature_cols = [c for c in df.columns if c not in (label, weight_column)]
    out, bad = [], []
    for n, (i, row) in enumerate(zip(df.index.tolist(), df.itertuples(index=False, name=None),
                                     strict=True)):
        rec = dict(zip(df.columns, row, strict=True))
        try:
            y = label_of(_clean(rec[label]))
        except InvalidEvent as exc:
            bad.append(f"row {i + 1}: {exc}")
            continue
        feats = {str(c): v for c in feature_cols if (v := _clean(rec[c])) is not None}
        ex_id = f"{stem}-{digest}-{i}"
        out.append(TrainingExample(id=ex_id, event_time=now, tenant=tenant, features=feats,
                                   label=y, source=f"file:{path.name}"[:64],
                                   test=is_test(ex_id, test_share),
                                   weight=1.0 if weights is None else float(weights[n])))
    if bad:
        raise _refused(path, f"label in column {label!r}", bad)
    return out
