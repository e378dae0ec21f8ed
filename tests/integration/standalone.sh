#!/usr/bin/env bash
# A clone tests on its own: nothing the build, tests, benches or fuzzers use reads the spec
# kit beside the checkout (only the Part 1 seed, ../shared/seeds/, may stay outside), every
# vector the unit tests load is in tests/vectors/, described in its README.md and unchanged
# (SHA256SUMS). Usage: standalone.sh SOURCE_DIR
set -uo pipefail
src=$1
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
vec=$src/tests/vectors

# The files the build and the tests use: CMake, C, scripts and data (not Markdown, which may
# name where the vectors came from).
used() {
    find "$src/CMakeLists.txt" "$src/cmake" "$src/src" "$src/tools" "$src/tests" "$src/bench" "$src/fuzz" \
        -type f ! -name '*.md' ! -path "$src/tests/integration/standalone.sh" 2>/dev/null
}
# The kit folder or anything in it, except a comment citing one of the write-ups (name.md).
kit="shared""/spec"
if used | xargs grep -lP "$kit(?!/[\w.-]+\.md)|MSP_SPEC_DIR" >"$tmp/hits"; then
    bad "refers to $kit: $(tr '\n' ' ' <"$tmp/hits")"
else ok; fi
# Any other path out of the checkout into ../shared is the seed's (or a write-up cited in a comment).
if used | xargs grep -nP '\.\./shared(?!/seeds)(?!/spec/[\w.-]+\.md)' >"$tmp/hits"; then
    bad "reaches ../shared beyond the seeds: $(head -c 400 "$tmp/hits")"
else ok; fi

# Every path the unit tests load (vec_load, cap_load: relative to tests/vectors) exists.
grep -ohE '"tlmsp-(handshake|records)/[^"%]*"' "$src"/tests/unit/*.c | tr -d '"' | sort -u >"$tmp/paths"
if [ -s "$tmp/paths" ]; then ok; else bad "no vector path found in tests/unit"; fi
while read -r p; do
    if [ -e "$vec/$p" ]; then ok; else bad "tests/unit loads $p, missing from tests/vectors"; fi
done <"$tmp/paths"

# Every file here is in the README's table, and the copied ones are unchanged.
(cd "$vec" && find . -type f ! -name README.md -printf '%P\n' | sort) >"$tmp/files"
while read -r f; do
    if grep -qF "\`$f\`" "$vec/README.md"; then ok
    else bad "tests/vectors/$f is not described in tests/vectors/README.md"; fi
done <"$tmp/files"
if (cd "$vec" && sha256sum --quiet -c SHA256SUMS) >"$tmp/out" 2>&1; then ok; else bad "SHA256SUMS: $(head -c 400 "$tmp/out")"; fi

finish standalone
