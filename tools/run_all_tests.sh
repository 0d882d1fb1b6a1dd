#!/usr/bin/env bash
# `make test`: C unit tests optimised, under ASan/UBSan and under TSan, one generation under valgrind, the fuzz corpora and kept crashers
# replayed under ASan and a short libFuzzer pass over every target (tests/fuzz/), a 100-job soak of batch mode
# (tools/soak.py), then the Python tests (exporter,
# reference parity), then the aarch64 build under qemu (`make test-aarch64`: C tests, the tiny
# Python parity tests, the static program).
# After the Python tests: the dpt Python package (make test-python-pkg: installed into a fresh venv, its tests).
# Ends with one summary line.
# The aarch64 step is skipped (not failed) where it cannot run (not root, packages unavailable),
# unless DPT_REQUIRE_AARCH64=1 (set by CI, .ci/run): then a skip fails the run.
set -u
cd "$(dirname "$0")/.."
log=$(mktemp -d)
status=0
times=""  # seconds per step, printed before the summary (CI's time budget)
make -s all >"$log/build" 2>&1 || { cat "$log/build"; echo "SUMMARY: build failed"; exit 1; }

t0=$SECONDS; make -s test-c 2>&1 | tee "$log/c"; c_rc=${PIPESTATUS[0]}; times="$times c $((SECONDS - t0)) s,"
t0=$SECONDS; make -s test-asan 2>&1 | tee "$log/asan"; a_rc=${PIPESTATUS[0]}; times="$times asan $((SECONDS - t0)) s,"
t0=$SECONDS; make -s test-tsan 2>&1 | tee "$log/tsan"; t_rc=${PIPESTATUS[0]}; times="$times tsan $((SECONDS - t0)) s,"
t0=$SECONDS; make -s test-valgrind 2>&1 | tee "$log/vg"; vg_rc=${PIPESTATUS[0]}; times="$times valgrind $((SECONDS - t0)) s,"
t0=$SECONDS; make -s test-fuzz-regress 2>&1 | tee "$log/fr"; fr_rc=${PIPESTATUS[0]}; times="$times fuzz-regress $((SECONDS - t0)) s,"
t0=$SECONDS; make -s fuzz-short 2>&1 | tee "$log/fz"; fz_rc=${PIPESTATUS[0]}; times="$times fuzz $((SECONDS - t0)) s,"
t0=$SECONDS; make -s soak-short 2>&1 | tee "$log/sk"; sk_rc=${PIPESTATUS[0]}; times="$times soak $((SECONDS - t0)) s,"
t0=$SECONDS; make -s test-python 2>&1 | tee "$log/py"; p_rc=${PIPESTATUS[0]}; times="$times python $((SECONDS - t0)) s,"
t0=$SECONDS; make -s test-python-pkg 2>&1 | tee "$log/pkg"; k_rc=${PIPESTATUS[0]}; times="$times python-pkg $((SECONDS - t0)) s,"
t0=$SECONDS; tools/test_aarch64.sh 2>&1 | tee "$log/arm"; r_rc=${PIPESTATUS[0]}; times="$times aarch64 $((SECONDS - t0)) s,"

c_line=$(grep -E '^C tests \(build\)' "$log/c" | tail -n1)
a_line=$(grep -E '^C tests \(build-asan\)' "$log/asan" | tail -n1)
p_line=$(grep -E '(passed|failed|error)' "$log/py" | tail -n1)
k_line=$(grep -E '(passed|failed|error)' "$log/pkg" | tail -n1)
t_line=$(grep -E '^C tests \(build-tsan\)' "$log/tsan" | tail -n1)
vg_line=$(grep -E '^valgrind: ' "$log/vg" | tail -n1 | sed -E 's/^valgrind: //')
fr_line=$(grep -E '^fuzz regress \(' "$log/fr" | tail -n1 | sed -E 's/^fuzz regress \([^)]*\): //')
sk_line=$(grep -E '^soak: [0-9]+ jobs' "$log/sk" | tail -n1 | sed -E 's/^soak: //')
fz_line=$(grep -E '^fuzz \(' "$log/fz" | tail -n1 | sed -E 's/^fuzz \([^)]*\): //')
if [ "$r_rc" = 77 ]; then
  r_line="skipped ($(grep -E 'skipped' "$log/arm" | tail -n1 | sed -E 's/^test_aarch64: //; s/; skipped$//'))"
  if [ "${DPT_REQUIRE_AARCH64:-0}" = 1 ]; then r_line="$r_line, required (DPT_REQUIRE_AARCH64=1)"; r_rc=1; else r_rc=0; fi
else
  r_line=$(grep -E '^aarch64 qemu: ' "$log/arm" | tail -n1)
  r_line=${r_line#aarch64 qemu: }
fi
[ "$c_rc" = 0 ] && [ "$a_rc" = 0 ] && [ "$t_rc" = 0 ] && [ "$vg_rc" = 0 ] && [ "$fr_rc" = 0 ] && [ "$fz_rc" = 0 ] && [ "$sk_rc" = 0 ] && [ "$p_rc" = 0 ] && [ "$k_rc" = 0 ] && [ "$r_rc" = 0 ] || status=1
echo "times:${times%,}"
echo "SUMMARY: ${c_line:-C tests did not run} | ASan/UBSan: ${a_line#C tests (build-asan): } | TSan: ${t_line#C tests (build-tsan): } | valgrind: ${vg_line:-did not run} | fuzz regress: ${fr_line:-did not run} | fuzz (15 s/target): ${fz_line:-did not run} | soak: ${sk_line:-did not run} | Python: ${p_line:-did not run} | Python package: ${k_line:-did not run} | aarch64 qemu: ${r_line:-did not run} | $([ $status = 0 ] && echo OK || echo FAILED)"
rm -rf "$log"
exit $status
