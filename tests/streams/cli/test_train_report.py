"""`aimass train --wait`'s figures, from a model set as the worker checkpoints it: the table,
the JSON (each model's loss along the stream included) and the plot."""

from __future__ import annotations

from streams.cli import train_report as tr
from streams.settings import Settings
from streams.sources.files import examples_from_file
from streams.training.trainer import make_trainer
from tests.helpers import PHISHING


def test_the_report_carries_each_models_curve_and_the_plot_draws_them(tmp_path):
    exs = examples_from_file(PHISHING, "is_phishing", "sec", now=1.0)
    ms = make_trainer(Settings(models="ftrl,forest", ensembles="stacking")).model_set("sec")
    for i in range(0, len(exs), 200):
        ms.process(exs[i:i + 200])
    doc = tr.report(ms, "sec", len(exs))
    models = {m["name"]: m for m in doc["models"]}
    assert set(models) == {"ftrl", "forest", "ensemble_stacking"}
    for m in models.values():
        assert [n for n, _ in m["curve"]][-1] == m["examples"]  # every example learned
        assert m["examples"] + m["holdout_examples"] == 1250
        assert all(v > 0 for _, v in m["curve"])
    assert "ensemble_stacking" in tr.render(doc)
    tr.plot(doc, tmp_path / "out" / "curves.png")
    png = (tmp_path / "out" / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
