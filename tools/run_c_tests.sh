#!/usr/bin/env bash
# Run the Check-based C unit tests found in BUILD/tests and print one summary line.
# Usage: tools/run_c_tests.sh BUILD test_a test_b ...
set -u
build=$1; shift
total=0; failed=0; bad_suites=""
for t in "$@"; do
  out=$(CK_FORK=yes "$build/tests/$t" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -n 1)
  if [ -z "$line" ]; then
    printf '%s\n' "$out" | tail -n 20
    echo "$t: no Check summary (exit $rc)"; failed=$((failed+1)); bad_suites="$bad_suites $t"; continue
  fi
  n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
  f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
  e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
  total=$((total+n)); failed=$((failed+f+e))
  if [ "$rc" != 0 ] || [ $((f+e)) != 0 ]; then
    printf '%s\n' "$out" | grep -vE '^Running suite' | tail -n 30
    bad_suites="$bad_suites $t"
  fi
done
echo "C tests ($build): $total checks, $failed failed${bad_suites:+ (in:$bad_suites)}"
[ "$failed" = 0 ] && [ -z "$bad_suites" ]
