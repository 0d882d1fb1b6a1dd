#!/usr/bin/env bash
# `make test-valgrind` (part of make test): one full small generation (the bundled tiny model, the
# bundled clip, all 500 steps, 2 threads) under valgrind memcheck: no invalid access, no use of
# uninitialised values, no definite leak, exit 0; and its output equal to the native run's up to
# float rounding (under valgrind glibc's libm picks its non-FMA variants, so bits may differ).
set -u
cd "$(dirname "$0")/.."
build=${1:-build}
command -v valgrind >/dev/null || { echo "valgrind: not installed (make deps installs it)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
args=(-m weights/demo-tiny.dpt -a examples/data/speech.flac -c examples/data/shape.npy --cfg-cond audio -q --threads 2)
"$build/dpt-generate" "${args[@]}" -o "$tmp/native.npz" || { echo "valgrind: the native run failed"; exit 1; }
valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  --log-file="$tmp/vg.log" "$build/dpt-generate" "${args[@]}" -o "$tmp/vg.npz"
rc=$?
if [ $rc != 0 ]; then
  cat "$tmp/vg.log"; echo "valgrind: memcheck FAILED (exit $rc)"; exit 1
fi
.venv/bin/python - "$tmp/native.npz" "$tmp/vg.npz" <<'PY' || exit 1
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert sorted(a.files) == sorted(b.files), (a.files, b.files)
worst = max(float(np.abs(a[k] - b[k]).max() / max(1e-30, float(np.abs(a[k]).max()))) for k in a.files)
if not worst <= 1e-5:
    sys.exit(f"valgrind: output differs from the native run (max rel {worst:.3g})")
print(f"valgrind: memcheck clean (one 500-step generation, 2 threads), output = native within {worst:.1e} rel")
PY
