#!/usr/bin/env bash
# Fuzzing (tests/fuzz/). Two modes:
#   tools/fuzz.sh BUILD SECONDS TARGET...        run each libFuzzer target for SECONDS (make fuzz,
#                                                make fuzz-short); new inputs go to BUILD/corpus/T,
#                                                crashers to BUILD/crashes/T-*; one line per target
#   tools/fuzz.sh --replay BUILD TARGET...        run the committed corpora and kept crashers
#                                                (tests/fuzz/corpus/T, tests/fuzz/regress/T) once
#                                                through the driver build (make test-fuzz-regress)
# Exit status non-zero when any target crashed.
set -u
cd "$(dirname "$0")/.."
if [ "${1:-}" = --replay ]; then
  build=$2; shift 2
  status=0; n=0
  for t in "$@"; do
    inputs=(tests/fuzz/corpus/$t)
    [ -d tests/fuzz/regress/$t ] && inputs+=(tests/fuzz/regress/$t)
    [ "$t" = dpt ] && inputs+=(weights/demo-tiny.dpt)
    out=$("$build/fuzz/fuzz_$t" "${inputs[@]}" 2>&1); rc=$?
    c=$(sed -nE 's/.*: ([0-9]+) inputs run$/\1/p' <<<"$out" | tail -n1)
    if [ $rc != 0 ] || [ -z "$c" ]; then
      printf '%s\n' "$out" | tail -n 30; echo "fuzz regress $t: FAILED (exit $rc)"; status=1
    else
      n=$((n + c))
    fi
  done
  echo "fuzz regress ($build): $n inputs over $# targets, $([ $status = 0 ] && echo OK || echo FAILED)"
  exit $status
fi
build=$1; secs=$2; shift 2
status=0; total=0
mkdir -p "$build/crashes"
for t in "$@"; do
  mkdir -p "$build/corpus/$t"
  dict=(); [ -f tests/fuzz/$t.dict ] && dict=(-dict=tests/fuzz/$t.dict)
  maxlen=65536; [ "$t" = args ] && maxlen=4096
  log="$build/fuzz-$t.log"
  nice -n "${FUZZ_NICE:-10}" "$build/fuzz/fuzz_$t" "$build/corpus/$t" tests/fuzz/corpus/$t "${dict[@]}" \
    -max_total_time="$secs" -max_len=$maxlen -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -print_final_stats=1 -close_fd_mask=1 -artifact_prefix="$build/crashes/$t-" >"$log" 2>&1
  rc=$?
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n1)
  execs=${execs:-0}; total=$((total + execs))
  if [ $rc != 0 ]; then
    status=1
    grep -E 'ERROR|SUMMARY|Test unit written|out-of-memory|timeout' "$log" | head -n 8
    echo "fuzz $t: CRASH after $execs executions (log $log, input in $build/crashes/)"
  else
    echo "fuzz $t: $execs executions in ${secs} s, 0 crashes"
  fi
  printf '%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$execs" "$rc" >> "$build/fuzz-stats.tsv"
done
echo "fuzz ($build): $total executions over $# targets, $([ $status = 0 ] && echo 'no crashes' || echo CRASHES)"
exit $status
