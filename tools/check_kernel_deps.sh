#!/usr/bin/env bash
# The call graph between kernels/*.c, from the object files' defined and undefined symbols (nm):
# fails if two kernel files depend on each other (any cycle) or if a kernel file uses a symbol
# defined in lib/ (kernels know no models). Run by `make test-c`.
#   tools/check_kernel_deps.sh BUILD [NM]
set -u
build=${1:?usage: check_kernel_deps.sh BUILD [NM]}
nm=${2:-nm}
cd "$(dirname "$0")/.."
# objects of today's sources only (a stale object of a removed file would add its old edges)
objs() { for c in "$1"/*.c; do o="$build/obj/${c%.c}.o"; [ -f "$o" ] && echo "$o"; done; }
kobj=$(objs kernels)
[ -n "$kobj" ] || { echo "check_kernel_deps: no objects in $build/obj/kernels"; exit 1; }

# "def FILE SYMBOL" and "use FILE SYMBOL" lines for every object of kernels/ and lib/
syms() {
  for o in "$@"; do
    f=$(basename "$(dirname "$o")")/$(basename "$o" .o).c
    "$nm" -g "$o" | awk -v f="$f" '$1 == "U" { print "use", f, $2; next }
                                   NF >= 3 && $2 ~ /^[A-TV-Z]$/ { print "def", f, $3 }'
  done
}
table=$(syms $kobj $(objs lib)) || exit 1

# edges "A B": kernel file A uses a symbol defined in file B (B in kernels/ or lib/)
edges=$(echo "$table" | awk '
  $1 == "def" { owner[$3] = $2; next }
  $1 == "use" { use[++n] = $2 " " $3 }
  END { for (i = 1; i <= n; i++) { split(use[i], u, " ");
          if (u[1] ~ /^kernels\// && (u[2] in owner) && owner[u[2]] != u[1]) print u[1], owner[u[2]], u[2] } }' |
  sort -u)

status=0
lib_uses=$(echo "$edges" | awk '$2 ~ /^lib\// { print "  " $1 " uses " $3 " (" $2 ")" }')
if [ -n "$lib_uses" ]; then
  echo "check_kernel_deps: kernels/ use lib/ symbols:"; echo "$lib_uses"; status=1
fi

# cycles among kernel files: tsort reports them (it prints "tsort: -: input contains a loop")
graph=$(echo "$edges" | awk '$2 ~ /^kernels\// { print $1, $2 }' | sort -u)
if ! out=$(echo "$graph" | tsort 2>&1 >/dev/null) || [ -n "$out" ]; then
  echo "check_kernel_deps: call cycle between kernel files:"
  echo "$out" | sed -n 's/^tsort: /  /p'
  # the mutual pairs, with one symbol each, to say where to cut
  echo "$edges" | awk '$2 ~ /^kernels\// { e[$1 " " $2] = $3 }
    END { for (k in e) { split(k, p, " "); r = p[2] " " p[1]; if ((r in e) && p[1] < p[2])
            print "  " p[1] " -> " p[2] " (" e[k] "), " p[2] " -> " p[1] " (" e[r] ")" } }'
  status=1
fi
n_files=$(echo "$kobj" | wc -w)
n_edges=$(echo "$graph" | grep -c . || true)
[ $status = 0 ] && echo "kernel deps ($build): $n_files files, $n_edges edges, no cycle, no lib/ use"
exit $status
