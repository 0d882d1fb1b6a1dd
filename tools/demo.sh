#!/usr/bin/env bash
# `make demo`: animate the bundled speech clip with the bundled (tiny, random-initialised) model,
# using all three programs: a first pass without style, a style vector taken from that motion,
# then two stylised samples with a plot.
set -euo pipefail
cd "$(dirname "$0")/.."
model=weights/demo-tiny.dpt
audio=examples/data/speech.flac
shape=examples/data/shape.npy
out=build/demo
mkdir -p "$out"
build/dpt-info "$model"
echo
echo "1) audio only (null style):"
build/dpt-generate -m "$model" -a "$audio" -c "$shape" --cfg-cond audio -o "$out/plain.npz"
echo "2) style vector from that motion clip:"
build/dpt-style -m "$model" -c "$out/plain.npz" -o "$out/style.npy"
echo "3) two stylised samples with a plot:"
build/dpt-generate -m "$model" -a "$audio" -c "$shape" -s "$out/style.npy" -n 2 \
  -o "$out/speech.npz" --plot "$out/speech.svg" "$@"
.venv/bin/python - "$out"/speech_000.npz "$out"/speech_001.npz <<'PY'
import sys, numpy as np
for f in sys.argv[1:]:
    z = np.load(f)
    print(f"{f}: " + ", ".join(f"{k} {z[k].shape} {z[k].dtype}" for k in z.files))
PY
echo "plot: $out/speech.svg (open it in a browser)"
echo "(random-initialised demo model: the numbers show the pipeline, not trained motion)"
