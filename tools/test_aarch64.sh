#!/usr/bin/env bash
# Cross-compile libdpt for aarch64 (NEON kernels) and run the C test suites under qemu user-mode
# emulation, once with OpenBLAS (arm64 multiarch) and once BLAS-free (own SGEMM, NEON micro-kernel).
# Prints each suite's Check line, one summary line per variant, then one overall line
# "C tests (aarch64 qemu): N checks, F failed, S skipped under emulation (...)". Also builds the
# fully static program (STATIC=1) and checks that it runs under qemu. `make test-aarch64`.
#
#   tools/test_aarch64.sh [--blas openblas|none|both] [-j 1|2] [test_suite ...]
#
# Both variants are built first (make -j2), then with -j 2 (default) their suites run side by side,
# one qemu process per variant. Installs what it needs when run as root on Debian
# (gcc-aarch64-linux-gnu, qemu-user, arm64 libraries through multiarch); exits 77 (skipped) when
# it cannot (not root, or the installation fails). Check's timeouts are scaled by
# CK_TIMEOUT_MULTIPLIER (default 10 here: emulation is slow). DPT_UNDER_QEMU=1 is set for the
# suites: a check that qemu-user itself cannot run is left out of its suite and printed as
# "SKIPPED: suite: check (reason)"; it is counted as skipped, never as passed.
set -u
cd "$(dirname "$0")/.."

blas=both
jobs=2
suites=()
while [ $# -gt 0 ]; do
  case "$1" in
    --blas) blas=$2; shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) suites+=("$1"); shift ;;
  esac
done

CROSS=aarch64-linux-gnu-
ARM_PKGS="libopenblas-dev:arm64 libsndfile1-dev:arm64 libsoxr-dev:arm64 zlib1g-dev:arm64 check:arm64"

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
}

run_variant() { # $1: openblas | none; prints the suites' lines and the variant's summary line
  local build total=0 failed=0 skipped=0 bad="" t out rc line n f e start sk note
  build=$(build_dir "$1")
  for t in "${suites[@]}"; do
    start=$(date +%s)
    out=$(qemu-aarch64 "$build/tests/$t" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -n 1)
    sk=$(printf '%s\n' "$out" | grep -c '^SKIPPED: ')
    note=""; [ "$sk" != 0 ] && note=", $sk skipped under emulation"
    echo "  $t: ${line:-no Check summary (exit $rc)}$note [$(( $(date +%s) - start )) s]"
    printf '%s\n' "$out" | grep '^SKIPPED: ' | sed 's/^/    /'
    skipped=$((skipped + sk))
    if [ -z "$line" ]; then
      printf '%s\n' "$out" | tail -n 20; failed=$((failed + 1)); bad="$bad $t"; continue
    fi
    n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
    e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
    total=$((total + n)); failed=$((failed + f + e))
    if [ "$rc" != 0 ] || [ $((f + e)) != 0 ]; then
      printf '%s\n' "$out" | grep -E ':[FE]:' | head -n 20; bad="$bad $t"
    fi
  done
  echo "C tests (aarch64 qemu, BLAS=$1): $total checks, $failed failed, $skipped skipped${bad:+ (in:$bad)}"
  [ "$failed" = 0 ] && [ -z "$bad" ]
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
t1=$(date +%s)
logs=$(mktemp -d)
pids=()
for v in "${built[@]}"; do
  if [ "$jobs" -gt 1 ]; then
    run_variant "$v" >"$logs/$v" 2>&1 &
    pids+=($!)
  else
    run_variant "$v" >"$logs/$v" 2>&1 || status=1
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
checks=0; fails=0; skips=0
for v in "${built[@]}"; do
  cat "$logs/$v"
  line=$(grep -E '^C tests \(aarch64 qemu, BLAS=' "$logs/$v" | tail -n 1)
  if [[ $line =~ :\ ([0-9]+)\ checks,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped ]]; then
    checks=$((checks + BASH_REMATCH[1])); fails=$((fails + BASH_REMATCH[2])); skips=$((skips + BASH_REMATCH[3]))
  else
    status=1
  fi
done
rm -rf "$logs"

# The fully static program (STATIC=1: BLAS-free, no libsndfile) runs under qemu without any arm64
# library: no program interpreter, model info, and (when the OpenBLAS variant's harness is built
# to decode the bundled clip into 16 kHz samples) a generation from a .npy of samples.
static_build=$(printf 'print-build:\n\t@echo $(BUILD)\n' |
  make -s --no-print-directory CROSS=$CROSS STATIC=1 -f Makefile -f - print-build)
harness="$(build_dir openblas)/tests/harness_audio"
static_msg=""
if ! make -s -j2 CROSS=$CROSS STATIC=1 all >"$static_build.log" 2>&1; then
  tail -n 20 "$static_build.log"; static_msg="build failed"
elif ${CROSS}readelf -l "$static_build/dpt-generate" | grep -q INTERP; then
  static_msg="not static (has a program interpreter)"
elif ! qemu-aarch64 "$static_build/dpt-info" weights/demo-tiny.dpt >/dev/null; then
  static_msg="dpt-info failed under qemu"
elif [ -x "$harness" ]; then
  rm -f "$static_build/check.npz"
  if ! qemu-aarch64 "$harness" load examples/data/speech.flac "$static_build/speech16k.npy" ||
     ! qemu-aarch64 "$static_build/dpt-generate" -q -m weights/demo-tiny.dpt -a "$static_build/speech16k.npy" \
         -c examples/data/shape.npy --cfg-cond audio -o "$static_build/check.npz" ||
     [ ! -s "$static_build/check.npz" ]; then
    static_msg="dpt-generate failed under qemu"
  fi
fi
rm -f "$static_build.log"
if [ -z "$static_msg" ]; then
  echo "static aarch64 dpt-generate ($static_build): $(stat -c %s "$static_build/dpt-generate") bytes," \
       "no interpreter, runs under qemu$([ -x "$harness" ] && echo " (dpt-info, generation from 16 kHz samples)" || echo " (dpt-info only)"): OK"
else
  echo "static aarch64 dpt-generate ($static_build): $static_msg; FAILED"; status=1
fi

vs="${variants[*]}"
echo "C tests (aarch64 qemu): $checks checks, $fails failed, $skips skipped under emulation" \
     "(BLAS=${vs// /+}; build $((t1 - t0)) s, suites + static check $(( $(date +%s) - t1 )) s)$([ $status = 0 ] || echo "; FAILED")"
exit $status
