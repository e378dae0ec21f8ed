#!/usr/bin/env bash
# libmsp exports exactly what include/msp/ declares with MSP_API, every name
# msp_-prefixed: the dynamic symbols of libmsp.so and the global symbols of
# libmsp.a are compared with the declarations in the public headers.
# usage: symbols.sh LIBMSP_SO LIBMSP_A INCLUDE_DIR
set -euo pipefail
so=$1 ar=$2 inc=$3
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The name before the first "(" of every MSP_API declaration.
perl -0777 -ne 's/^#.*$//mg; while (/\bMSP_API\b([^;{]*?)\(/g) { my $d = $1; $d =~ /(\w+)\s*$/ and print "$1\n" }' \
    "$inc"/msp/*.h | sort -u >"$tmp/declared"
[ -s "$tmp/declared" ] || { echo "symbols: no MSP_API declaration in $inc/msp" >&2; exit 1; }

check() { # what file: the defined global symbols of file must be exactly the declared ones
    local what=$1 list=$2
    sort -u "$list" -o "$list"
    if ! grep -q . "$list"; then
        echo "symbols: $what exports nothing" >&2; fail=1; return
    fi
    local extra missing
    extra=$(comm -23 "$list" "$tmp/declared")
    missing=$(comm -13 "$list" "$tmp/declared")
    if [ -n "$extra" ]; then
        echo "symbols: $what exports names no public header declares with MSP_API:" >&2
        sed 's/^/  /' <<<"$extra" >&2; fail=1
    fi
    if [ -n "$missing" ]; then
        echo "symbols: $what lacks names the public headers declare:" >&2
        sed 's/^/  /' <<<"$missing" >&2; fail=1
    fi
    local unprefixed
    unprefixed=$(grep -v '^msp_' "$list" || true)
    if [ -n "$unprefixed" ]; then
        echo "symbols: $what exports names without the msp_ prefix:" >&2
        sed 's/^/  /' <<<"$unprefixed" >&2; fail=1
    fi
}

# Symbols the toolchain adds to every shared object are not ours.
nm -D --defined-only "$so" | awk '$2 ~ /^[TDRBVWiu]$/ {print $3}' \
    | grep -vE '^(_init|_fini|_edata|_end|__bss_start)$' >"$tmp/so" || true
check "$so" "$tmp/so"
nm -g --defined-only "$ar" | awk 'NF == 3 && $2 ~ /^[TDRBVWiu]$/ {print $3}' >"$tmp/a" || true
check "$ar" "$tmp/a"

n=$(wc -l <"$tmp/declared")
[ "$fail" = 0 ] && echo "symbols: $n public functions, exported by both libraries, nothing else"
exit "$fail"
