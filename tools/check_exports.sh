#!/usr/bin/env bash
# The shared library exports exactly the functions include/dpt.h declares: every declared function
# is defined and exported, and nothing internal leaks (the library is built -fvisibility=hidden).
# Usage: tools/check_exports.sh BUILD/libdpt.so include/dpt.h   (part of make test-c)
set -u
so=$1; header=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# declared: identifiers followed by '(' at the start of a declaration (return type before them),
# comments, typedefs of function pointers and static inline wrappers (compiled into the caller:
# *_params_default, *_get_info, the deprecated aliases) left out
sed -e 's://.*$::' "$header" | perl -0pe 's:/\*.*?\*/::gs; s/static\s+inline[^{;]*\{[^{}]*\}//gs' |
  grep -v '^\s*#' | grep -v 'typedef' | tr '\n' ' ' | tr ';' '\n' |
  grep -oE '\b(dpt_[a-z0-9_]+)\s*\(' | grep -vE '^\s*$' | sed -E 's/\s*\($//' | sort -u > "$tmp/declared"
nm -D --defined-only "$so" | awk '$2 ~ /^[TtWiV]$/ {print $3}' | grep -vE '^(_init|_fini)$' | sort -u > "$tmp/exported"
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
n=$(wc -l < "$tmp/exported")
if [ -n "$missing$extra" ]; then
  [ -n "$missing" ] && echo "exports: declared in $header but not exported by $so:" $missing
  [ -n "$extra" ] && echo "exports: exported by $so but not declared in $header:" $extra
  exit 1
fi
echo "exports ($so): $n functions, exactly those of $header"
