#!/usr/bin/env bash
# `make demo`: animate the bundled speech clip with the bundled (tiny, random-initialised) model,
# using all the programs: a first pass without style, a style vector taken from that motion,
# two stylised samples with a plot, then a video of a STAND-IN head (not FLAME: FLAME is
# licence-gated) moving with one sample, with the speech.
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
echo "4) a stand-in head (NOT FLAME) in FLAME's file format, and the video of one sample:"
.venv/bin/python tools/make_standin_head.py -o "$out/standin-head.pkl" --uv "$out/standin-uv.npz"
.venv/bin/python tools/export.py --flame "$out/standin-head.pkl" --uv "$out/standin-uv.npz" \
  --flame-source "stand-in head (not FLAME): tools/make_standin_head.py" -o "$out/standin-head.dpt"
rm -f "$out/standin-head.pkl" "$out/standin-uv.npz"   # the .dpt holds what is used
# --no-head: the random model's global head rotations are not trained motion (tens of degrees
# of tilt); the video shows the jaw and the expressions facing the camera.
build/dpt-generate -m "$model" -a "$audio" -c "$shape" -s "$out/style.npy" --no-head \
  --flame "$out/standin-head.dpt" -o "$out/speech.mp4" "$@"
echo "video: $out/speech.mp4 (the stand-in head, with the speech)"
echo "(random-initialised demo model: the numbers show the pipeline, not trained motion)"
echo
echo "With the real FLAME 2020 model (register at https://flame.is.tue.mpg.de, download"
echo "generic_model.pkl; upstream's models/data/uv_coords.npz for textures):"
echo "  .venv/bin/python tools/export.py --flame generic_model.pkl [--uv uv_coords.npz] -o weights/FLAME.dpt"
echo "  build/dpt-generate -m MODEL.dpt -a SPEECH -c SHAPE --flame weights/FLAME.dpt -o clip.mp4"
echo "  build/dpt-mesh -f weights/FLAME.dpt -c $out/speech_000.npz --video clip.mp4 -a $audio"
