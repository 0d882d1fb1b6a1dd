#!/usr/bin/env bash
# `make demo`: animate the bundled speech clip with the bundled (tiny, random-initialised) model.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/demo
mkdir -p "$out"
build/dpt-info weights/demo-tiny.dpt
echo

build/dpt-generate -m weights/demo-tiny.dpt -a examples/data/speech.flac -c examples/data/shape.npy \
  -o "$out/speech.npz" "$@"
.venv/bin/python - "$out/speech.npz" <<'PY'
import sys, numpy as np
z = np.load(sys.argv[1])
print(f"{sys.argv[1]}: " + ", ".join(f"{k} {z[k].shape} {z[k].dtype}" for k in z.files))
PY
echo "(random-initialised demo model: the numbers show the pipeline, not trained motion)"
