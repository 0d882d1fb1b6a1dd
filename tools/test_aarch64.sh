#!/usr/bin/env bash
# Cross-compile libdpt for aarch64 (NEON kernels) and run the C test suites under qemu user-mode
# emulation, once with OpenBLAS (arm64 multiarch) and once BLAS-free (own SGEMM, NEON micro-kernel).
# Ends with one summary line per variant, as tools/run_c_tests.sh does.
#
#   tools/test_aarch64.sh [--blas openblas|none|both] [test_suite ...]
#
# Installs what it needs when run as root on Debian (gcc-aarch64-linux-gnu, qemu-user, arm64
# libraries through multiarch); otherwise exits 77 (skipped) if the tools are missing.
# Check's timeouts are scaled by CK_TIMEOUT_MULTIPLIER (default 10 here: emulation is slow).
set -u
cd "$(dirname "$0")/.."

blas=both
suites=()
while [ $# -gt 0 ]; do
  case "$1" in
    --blas) blas=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) suites+=("$1"); shift ;;
  esac
done

CROSS=aarch64-linux-gnu-
ARM_PKGS="libopenblas-dev:arm64 libsndfile1-dev:arm64 libsoxr-dev:arm64 zlib1g-dev:arm64 check:arm64"

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

install_deps() {
  local missing="" p
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
    echo "test_aarch64: package installation failed"; exit 1; }
}

install_deps
command -v "${CROSS}gcc" >/dev/null && command -v qemu-aarch64 >/dev/null || {
  echo "test_aarch64: ${CROSS}gcc or qemu-aarch64 not found"; exit 1; }

[ ${#suites[@]} -eq 0 ] && for f in tests/test_*.c; do suites+=("$(basename "$f" .c)"); done
export CK_FORK=yes CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-10}

run_variant() { # $1: openblas | none
  local opt="" build
  [ "$1" = none ] && opt="BLAS=none"
  build=$(make -s --no-print-directory CROSS=$CROSS $opt -f Makefile -f - print-build <<'EOF'
print-build:
	@echo $(BUILD)
EOF
)
  mkdir -p "$build"
  if ! make -s -j2 CROSS=$CROSS $opt tests-build >"$build/build.log" 2>&1; then
    tail -n 30 "$build/build.log"; echo "C tests (aarch64 qemu, BLAS=$1): build failed"; return 1
  fi
  local total=0 failed=0 bad="" t out rc line n f e start
  for t in "${suites[@]}"; do
    start=$(date +%s)
    out=$(qemu-aarch64 "$build/tests/$t" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -n 1)
    echo "  $t: ${line:-no Check summary (exit $rc)} [$(( $(date +%s) - start )) s]"
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
  echo "C tests (aarch64 qemu, BLAS=$1): $total checks, $failed failed${bad:+ (in:$bad)}"
  [ "$failed" = 0 ] && [ -z "$bad" ]
}

status=0
case "$blas" in
  openblas|none) run_variant "$blas" || status=1 ;;
  both) run_variant openblas || status=1; run_variant none || status=1 ;;
  *) echo "test_aarch64: --blas openblas|none|both"; exit 2 ;;
esac
exit $status
