#!/usr/bin/env bash
# Regenerate the bundled demo model weights/demo-tiny.dpt (also the C tests' fixture):
# a tiny random-initialised model in the official checkpoint format, exported with tools/export.py.
# It shows the pipeline; its output is not trained motion.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
.venv/bin/python tools/reference/make_checkpoints.py --size tiny --seed 1 "$tmp"
.venv/bin/python tools/export.py --dpt "$tmp/denoiser.pt" --style-encoder "$tmp/style_encoder.pt" \
  --stats "$tmp/stats_train.npz" -o weights/demo-tiny.dpt
rm -rf "$tmp"
