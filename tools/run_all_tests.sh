#!/usr/bin/env bash
# `make test`: C unit tests optimised and under ASan/UBSan, then the Python tests (exporter,
# reference parity). Ends with one summary line.
set -u
cd "$(dirname "$0")/.."
log=$(mktemp -d)
status=0
make -s all >"$log/build" 2>&1 || { cat "$log/build"; echo "SUMMARY: build failed"; exit 1; }

make -s test-c 2>&1 | tee "$log/c"; c_rc=${PIPESTATUS[0]}
make -s test-asan 2>&1 | tee "$log/asan"; a_rc=${PIPESTATUS[0]}
make -s test-python 2>&1 | tee "$log/py"; p_rc=${PIPESTATUS[0]}

c_line=$(grep -E '^C tests \(build\)' "$log/c" | tail -n1)
a_line=$(grep -E '^C tests \(build-asan\)' "$log/asan" | tail -n1)
p_line=$(grep -E '(passed|failed|error)' "$log/py" | tail -n1)
[ "$c_rc" = 0 ] && [ "$a_rc" = 0 ] && [ "$p_rc" = 0 ] || status=1
echo "SUMMARY: ${c_line:-C tests did not run} | ASan/UBSan: ${a_line#C tests (build-asan): } | Python: ${p_line:-did not run} | $([ $status = 0 ] && echo OK || echo FAILED)"
rm -rf "$log"
exit $status
