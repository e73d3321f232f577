#!/usr/bin/env bash
# One short script for a lent GPU machine: install the two wheels its image lacks (carried in
# .gpu/wheels), check the deep models on CUDA (state round trip), then run the deep benchmark
# on CUDA (full stream) and on that machine's CPU. Results go to $OUT.
# Prepare .gpu/ here first (the GPU machine reaches no registry), and carry it with the run:
#   mkdir -p .gpu/wheels && echo /.gpu/ >> .git/info/exclude
#   pip download --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#       --platform manylinux_2_17_x86_64 -d .gpu/wheels orjson pydantic-settings
#   cp -r .aimass/movielens-100k .gpu/        # after `aimass data movielens-100k`
set -euo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" .aimass
python3 -m pip install -q --no-index --find-links .gpu/wheels orjson pydantic-settings 2>&1 | tail -2
cp -r .gpu/movielens-100k .aimass/
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 - <<'PY' 2>&1 | tee "$OUT/cuda_check.txt"
import numpy as np, torch
from pathlib import Path
from ops.bench.movielens_stream import click_stream
from learners.deep.shared import SharedDeepCTR
from learners.state import copy_state
exs = click_stream(Path(".aimass"), 6000)
X = [e.features for e in exs]; y = np.array([e.label for e in exs])
m = SharedDeepCTR(device="cuda", switch_after=3000, seed=1)
for i in range(0, 4000, 1000):
    m.progressive_outputs(X[i:i+1000], y[i:i+1000])
again = copy_state(m)  # through the data-only state format (learners/state.py)
a, b = m.predict_outputs(X[4000:5000]), again.predict_outputs(X[4000:5000])
err = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
print("device", m._dev, torch.cuda.get_device_name(), "phase", m.phase, "round-trip max abs diff", err)
assert m._dev == "cuda" and again._dev == "cuda" and err < 1e-3
PY
python3 -m ops.bench.deep --device cuda --json "$OUT/deep-cuda.json" 2>&1 | tail -6
python3 -m ops.bench.deep --device cpu --limit 20000 --json "$OUT/deep-cpu-gpu-host.json" 2>&1 | tail -6
