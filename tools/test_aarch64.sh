#!/usr/bin/env bash
# Cross-compile libdpt for aarch64 (NEON kernels) and test it under qemu user-mode emulation:
#  * the C test suites, once with OpenBLAS (arm64 multiarch) and once BLAS-free (own SGEMM, NEON
#    micro-kernel);
#  * the Python parity tests that are affordable under emulation (tiny models: audio front end,
#    HuBERT/wav2vec2 stages, denoiser, style encoder, sampler) against the BLAS-free build, its
#    programs and harnesses run through qemu;
#  * the fully static dpt-generate (STATIC=1): no interpreter, runs.
# Prints each suite's line and ends with one line
#   "aarch64 qemu: C N checks, F failed, S skipped (...) | Python parity ... | static ... | time".
# `make test-aarch64`; part of `make test`.
#
#   tools/test_aarch64.sh [--blas openblas|none|both] [-j 1|2] [--no-python] [test_suite ...]
# test_kernels and test_precision also run as suite@cortex-a76 (QEMU_CPU=cortex-a76: no BF16, no
# I8MM: the bf16 fallback, the SDOT int8 kernel) and suite@cortex-a53 (no dotprod either: the
# portable int8 kernel); the plain runs use QEMU_CPU=max.
#
# Everything is built first (make -j2), then the suites, the Python run and the static check run
# as tasks on -j workers (default 2: about 3 minutes on 2 idle cores). Installs what it needs when run as root on Debian (gcc-aarch64-linux-gnu, qemu-user, arm64
# libraries through multiarch); exits 77 (skipped) when it cannot (not root, or the installation
# fails). Check's timeouts are scaled by CK_TIMEOUT_MULTIPLIER (default 10 here). DPT_UNDER_QEMU=1
# is set: a check that qemu-user itself cannot run is left out of its suite and printed as
# "SKIPPED: suite: check (reason)"; skipped and not-run tests are counted as such, never as passed.
set -u
cd "$(dirname "$0")/.."

blas=both
jobs=2
python=1
suites=()
while [ $# -gt 0 ]; do
  case "$1" in
    --blas) blas=$2; shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    --no-python) python=0; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) suites+=("$1"); shift ;;
  esac
done

CROSS=aarch64-linux-gnu-
ARM_PKGS="libopenblas-dev:arm64 libsndfile1-dev:arm64 libsoxr-dev:arm64 zlib1g-dev:arm64 check:arm64
          libpng-dev:arm64 libjpeg62-turbo-dev:arm64"

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

install_deps() {
  local missing="" p
  command -v dpkg-query >/dev/null || { echo "test_aarch64: not a Debian system; skipped"; exit 77; }
  for p in gcc-aarch64-linux-gnu qemu-user $ARM_PKGS; do have_pkg "$p" || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "test_aarch64: missing packages:$missing (run as root to install them); skipped"
    exit 77
  fi
  echo "test_aarch64: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
    echo "test_aarch64: package installation failed; skipped"; exit 77; }
}

install_deps
command -v "${CROSS}gcc" >/dev/null && command -v qemu-aarch64 >/dev/null || {
  echo "test_aarch64: ${CROSS}gcc or qemu-aarch64 not found; skipped"; exit 77; }

[ ${#suites[@]} -eq 0 ] && for f in tests/test_*.c; do suites+=("$(basename "$f" .c)"); done
# The suites of the bf16/f16/int8 kernels run three times: on qemu's "max" CPU (FEAT_BF16, FP16,
# FHM, DotProd, I8MM: DPT_EXPECT_BF16=1 and DPT_EXPECT_INT8=I8MM make the native BFMMLA and I8MM
# kernels required, not skippable), as suite@cortex-a76 (Raspberry Pi 5's core, no FEAT_BF16, no
# I8MM: the emulated bf16 fallback and the SDOT int8 kernel are required) and as suite@cortex-a53
# (Armv8.0, no dotprod: the portable int8 kernel is required).
for t in test_kernels test_precision; do
  [[ " ${suites[*]} " == *" $t "* ]] && suites+=("$t@cortex-a76" "$t@cortex-a53")
done
export CK_FORK=yes CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-10} DPT_UNDER_QEMU=1

blas_opt() { [ "$1" = none ] && echo "BLAS=none"; }

build_dir() { # $1: openblas | none → the Makefile's build directory of that variant
  printf 'print-build:\n\t@echo $(BUILD)\n' |
    make -s --no-print-directory CROSS=$CROSS $(blas_opt "$1") -f Makefile -f - print-build
}

build_variant() { # $1: openblas | none
  local build
  build=$(build_dir "$1")
  mkdir -p "$build"
  if ! make -s -j2 CROSS=$CROSS $(blas_opt "$1") tests-build >"$build/build.log" 2>&1; then
    tail -n 30 "$build/build.log"; echo "C tests (aarch64 qemu, BLAS=$1): build failed"; return 1
  fi
  # the NEON files' calls too (x86's make test-c sees them compiled empty)
  tools/check_kernel_deps.sh "$build" "${CROSS}nm" || {
    echo "C tests (aarch64 qemu, BLAS=$1): kernel call graph check failed"; return 1; }
}

run_suite() { # $1: openblas | none, $2: suite[@cpu]; prints its line and "RESULT checks failed skipped bad"
  local build out rc line n=0 f=0 e=0 start sk note bad=0 suite=${2%@*} cpu=max expect=1 int8=I8MM
  [[ $2 == *@* ]] && cpu=${2#*@}
  # the other CPU models have no FEAT_BF16 (the fallback); int8: cortex-a76 SDOT, cortex-a53 none
  case "$cpu" in
    max) ;;
    cortex-a76) expect=0 int8=SDOT ;;
    *) expect=0 int8=portable ;;
  esac
  build=$(build_dir "$1")
  start=$(date +%s)
  out=$(QEMU_CPU=$cpu DPT_EXPECT_BF16=$expect DPT_EXPECT_INT8=$int8 DPT_EXPECT_F16=1 \
        qemu-aarch64 "$build/tests/$suite" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -n 1)
  sk=$(printf '%s\n' "$out" | grep -c '^SKIPPED: ')
  note=""; [ "$sk" != 0 ] && note=", $sk skipped under emulation"
  echo "  $2: ${line:-no Check summary (exit $rc)}$note [$(( $(date +%s) - start )) s]"
  printf '%s\n' "$out" | grep '^SKIPPED: ' | sed 's/^/    /'
  if [ -z "$line" ]; then
    printf '%s\n' "$out" | tail -n 20; f=1; bad=1
  else
    n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
    e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
    if [ "$rc" != 0 ] || [ $((f + e)) != 0 ]; then
      printf '%s\n' "$out" | grep -E ':[FE]:' | head -n 20; bad=1
    fi
  fi
  echo "RESULT $n $((f + e)) $sk $bad"
  [ "$bad" = 0 ]
}

# Python parity tests under qemu: the harnesses and programs of build $1, run through qemu by
# wrapper scripts in $1's build dir (BUILD/qemu-run, used as DPT_BUILD; its testdata is the native
# build's cache). Tiny models only: the official-size cases and the 61 s long-clip case (about a
# minute under emulation) are left to the native run and reported as not run here.
PY_FILES="tests/python/test_audio_frontend.py tests/python/test_denoiser_parity.py
          tests/python/test_hubert_parity.py tests/python/test_sampler_parity.py
          tests/python/test_flame.py"
PY_SELECT="not official and not long_clip"
run_python() { # $1: openblas | none
  local build w f out line p=0 fl=0 d=0
  build=$(build_dir "$1")
  if [ ! -x .venv/bin/python ]; then
    echo "SKIPPED: Python parity under qemu (no .venv: run make deps)"
    echo "Python parity (aarch64 qemu, BLAS=$1): 0 passed, 0 failed, all not run"
    return 0
  fi
  w="$PWD/$build/qemu-run"
  rm -rf "$w" && mkdir -p "$w/tests" build/testdata && ln -s "$PWD/build/testdata" "$w/testdata"
  for f in "$build"/dpt-* "$build"/tests/harness_*; do
    [ -x "$f" ] && [ -f "$f" ] || continue
    printf '#!/bin/sh\nexec qemu-aarch64 %s "$@"\n' "$PWD/$f" >"$w/${f#"$build"/}"
    chmod +x "$w/${f#"$build"/}"
  done
  # shellcheck disable=SC2086
  out=$(DPT_BUILD="$w" .venv/bin/python -m pytest -q -p no:cacheprovider -k "$PY_SELECT" $PY_FILES 2>&1)
  local rc=$?
  line=$(printf '%s\n' "$out" | grep -E '(passed|failed|error)' | tail -n 1)
  [[ $line =~ ([0-9]+)\ passed ]] && p=${BASH_REMATCH[1]}
  [[ $line =~ ([0-9]+)\ failed ]] && fl=${BASH_REMATCH[1]}
  [[ $line =~ ([0-9]+)\ error ]] && fl=$((fl + BASH_REMATCH[1]))
  [[ $line =~ ([0-9]+)\ deselected ]] && d=${BASH_REMATCH[1]}
  [[ $line =~ ([0-9]+)\ skipped ]] && d=$((d + BASH_REMATCH[1]))
  if [ "$rc" != 0 ]; then
    printf '%s\n' "$out" | grep -E '^(FAILED|ERROR)|Error' | head -n 20
    [ "$fl" = 0 ] && fl=1
  fi
  echo "  pytest ($PY_SELECT): ${line:-no pytest summary (exit $rc)}"
  echo "    SKIPPED: $d Python tests not run under emulation (official sizes, 61 s clip: native run only)"
  echo "Python parity (aarch64 qemu, BLAS=$1): $p passed, $fl failed, $d not run"
  [ "$rc" = 0 ]
}

# The fully static program (STATIC=1: BLAS-free, no libsndfile) runs under qemu without any arm64
# library: no program interpreter, model info, and (when the OpenBLAS variant's harness is built
# to decode the bundled clip into 16 kHz samples) a generation from a .npy of samples.
STATIC_BUILD=$(printf 'print-build:\n\t@echo $(BUILD)\n' |
  make -s --no-print-directory CROSS=$CROSS STATIC=1 -f Makefile -f - print-build)
static_check() {
  local harness msg=""
  harness="$(build_dir openblas)/tests/harness_audio"
  if [ ! -x "$STATIC_BUILD/dpt-generate" ]; then
    msg="not built"
  elif ${CROSS}readelf -l "$STATIC_BUILD/dpt-generate" | grep -q INTERP; then
    msg="not static (has a program interpreter)"
  elif ! qemu-aarch64 "$STATIC_BUILD/dpt-info" weights/demo-tiny.dpt >/dev/null; then
    msg="dpt-info failed under qemu"
  elif [ -x "$harness" ]; then
    rm -f "$STATIC_BUILD/check.npz"
    if ! qemu-aarch64 "$harness" load examples/data/speech.flac "$STATIC_BUILD/speech16k.npy" ||
       ! qemu-aarch64 "$STATIC_BUILD/dpt-generate" -q -m weights/demo-tiny.dpt -a "$STATIC_BUILD/speech16k.npy" \
           -c examples/data/shape.npy --cfg-cond audio -o "$STATIC_BUILD/check.npz" ||
       [ ! -s "$STATIC_BUILD/check.npz" ]; then
      msg="dpt-generate failed under qemu"
    fi
  fi
  if [ -z "$msg" ]; then
    echo "static aarch64 dpt-generate ($STATIC_BUILD): $(stat -c %s "$STATIC_BUILD/dpt-generate") bytes," \
         "no interpreter, runs under qemu$([ -x "$harness" ] && echo " (dpt-info, generation from 16 kHz samples)" || echo " (dpt-info only)"): OK"
  else
    echo "static aarch64 dpt-generate ($STATIC_BUILD): $msg; FAILED"
    return 1
  fi
}

case "$blas" in
  openblas|none) variants=("$blas") ;;
  both) variants=(openblas none) ;;
  *) echo "test_aarch64: --blas openblas|none|both"; exit 2 ;;
esac

t0=$(date +%s)
status=0
built=()
for v in "${variants[@]}"; do
  if build_variant "$v"; then built+=("$v"); else status=1; fi
done
if ! make -s -j2 CROSS=$CROSS STATIC=1 all >"$STATIC_BUILD.log" 2>&1; then
  tail -n 20 "$STATIC_BUILD.log"
fi
rm -f "$STATIC_BUILD.log"
t1=$(date +%s)

# Tasks (C suites of each variant, the Python parity run, the static check), the slowest first,
# run by a pool of $jobs workers; each writes its own log, read back in a fixed order.
logs=$(mktemp -d)
tasks=()
[ "$python" = 1 ] && [ ${#built[@]} -gt 0 ] && tasks+=("python:${built[-1]}")
for t in test_kernels test_sampler "${suites[@]}"; do
  [[ " ${suites[*]} " == *" $t "* ]] || continue
  for v in "${built[@]}"; do
    [[ " ${tasks[*]} " == *" $v:$t "* ]] || tasks+=("$v:$t")
  done
done
tasks+=("static:")
run_task() { # $1: kind:arg
  case "$1" in
    python:*) run_python "${1#python:}" ;;
    static:) static_check ;;
    *) run_suite "${1%%:*}" "${1#*:}" ;;
  esac
}
running=0
for i in "${!tasks[@]}"; do
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
  run_task "${tasks[$i]}" >"$logs/${tasks[$i]/:/_}" 2>&1 &
  running=$((running + 1))
done
wait
checks=0; fails=0; skips=0; py="not run"; st="not checked"
for v in "${built[@]}"; do
  n=0; f=0; k=0; bad=""
  for t in "${suites[@]}"; do
    grep -v '^RESULT ' "$logs/${v}_$t"
    read -r _ a b c d < <(grep '^RESULT ' "$logs/${v}_$t" || echo "RESULT 0 1 0 1")
    n=$((n + a)); f=$((f + b)); k=$((k + c)); [ "$d" = 1 ] && bad="$bad $t"
  done
  echo "C tests (aarch64 qemu, BLAS=$v): $n checks, $f failed, $k skipped${bad:+ (in:$bad)}"
  checks=$((checks + n)); fails=$((fails + f)); skips=$((skips + k))
  [ "$f" = 0 ] && [ -z "$bad" ] || status=1
done
for f in "$logs"/python_* "$logs/static_"; do
  [ -f "$f" ] || continue
  cat "$f"
  while IFS= read -r line; do
    if [[ $line =~ ^Python\ parity\ \(aarch64\ qemu,\ (BLAS=[a-z]+)\):\ ([0-9]+)\ passed,\ ([0-9]+)\ failed(.*)$ ]]; then
      py="${BASH_REMATCH[2]} passed, ${BASH_REMATCH[3]} failed${BASH_REMATCH[4]} (${BASH_REMATCH[1]})"
      [ "${BASH_REMATCH[3]}" = 0 ] || status=1
    elif [[ $line =~ ^static\ aarch64\ dpt-generate\ .*:\ ([0-9]+)\ bytes,.*OK$ ]]; then
      st="OK (${BASH_REMATCH[1]} bytes)"
    elif [[ $line =~ ^static\ aarch64\ dpt-generate\ .*:\ (.*)\;\ FAILED$ ]]; then
      st="FAILED (${BASH_REMATCH[1]})"; status=1
    fi
  done <"$f"
done
[ "$python" = 1 ] && [ "$py" = "not run" ] && status=1
[[ $st == OK* ]] || status=1
rm -rf "$logs"
[ ${#built[@]} = ${#variants[@]} ] || status=1
vs="${variants[*]}"
echo "aarch64 qemu: C $checks checks, $fails failed, $skips skipped (BLAS=${vs// /+}) | Python parity $py" \
     "| static dpt-generate $st | build $((t1 - t0)) s, tests $(( $(date +%s) - t1 )) s$([ $status = 0 ] || echo " | FAILED")"
exit $status
