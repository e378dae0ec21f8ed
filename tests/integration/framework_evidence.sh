#!/usr/bin/env bash
# msp's own profiles (tlmsp, msp-ets) against the tests they cite: both listed and clean under `msp framework
# check`, and every evidence entry names a test this build registers (`ctest -N`) and, for TEST:CASE, a cmocka case
# that tests/unit/TEST.c runs (docs/profile-format.md, "Evidence"). A negative control first: the checker must
# refuse a profile citing a test and a case that do not exist.
# Usage: framework_evidence.sh MSP SOURCE_DIR BUILD_DIR CTEST
set -uo pipefail
msp=$1
src=$2
build=$3
ctest=$4
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
has() { if grep -qE -- "$2" "$tmp/$1"; then ok; else bad "$1 lacks /$2/: $(head -c 400 "$tmp/$1")"; fi; }

run 0 "$msp" framework list; has out "^tlmsp$"; has out "^msp-ets$"
for p in tlmsp msp-ets; do
    run 0 "$msp" framework check "$p" --require-series
    if grep -qE ": (error|warning):" "$tmp/out"; then bad "$p: $(grep -E ': (error|warning):' "$tmp/out" | head -3)"; else ok; fi
done

"$ctest" --test-dir "$build" -N >"$tmp/ctest" 2>&1 || bad "ctest -N failed: $(head -c 400 "$tmp/ctest")"
sed -nE 's/^ *Test +#[0-9]+: +([^ ]+).*/\1/p' "$tmp/ctest" >"$tmp/tests"
if [ -s "$tmp/tests" ]; then ok; else bad "ctest -N listed no test"; fi

# check_evidence PROFILE...: one line per entry that names nothing; the count of entries checked on the last line
cat >"$tmp/check.py" <<'PY'
import os, re, sys
src, tests = sys.argv[1], set(open(sys.argv[2]).read().split())
cases = {}
def cases_of(test):
    if test not in cases:
        path = os.path.join(src, "tests", "unit", test + ".c")
        text = open(path).read() if os.path.exists(path) else ""
        cases[test] = set(re.findall(r"cmocka_unit_test\w*\(\s*(\w+)", text))
    return cases[test]
n = bad = 0
for prof in sys.argv[3:]:
    text = open(prof).read()
    for m in re.finditer(r'requirement\s+"([^"]+)"\s*\{(.*?)\n\}', text, re.S):
        ev = re.search(r"evidence\s*=\s*\[(.*?)\]", m.group(2), re.S)
        for e in re.findall(r'"([^"]*)"', ev.group(1)) if ev else []:
            n += 1
            test, _, case = e.partition(":")
            if test not in tests:
                bad += 1
                print(f"{os.path.basename(prof)}:{m.group(1)}: no ctest test {test}")
            elif case and case not in cases_of(test):
                bad += 1
                print(f"{os.path.basename(prof)}:{m.group(1)}: {test} runs no cmocka case {case}")
print(f"{n} entries, {bad} unknown")
sys.exit(1 if bad else 0)
PY
check() { python3 "$tmp/check.py" "$src" "$tmp/tests" "$@" >"$tmp/out" 2>"$tmp/err"; }

# the negative control
cat >"$tmp/bogus.ucl" <<'UCL'
requirement "E.DP.1" {
    evidence = [ "test_framework", "no_such_test", "test_framework:no_such_case", "cli_framework:anything" ];
}
UCL
check "$tmp/bogus.ucl"
if [ $? -eq 1 ]; then ok; else bad "the checker accepted unknown evidence: $(cat "$tmp/out" "$tmp/err")"; fi
has out "E.DP.1: no ctest test no_such_test$"
has out "E.DP.1: test_framework runs no cmocka case no_such_case$"
has out "E.DP.1: cli_framework runs no cmocka case anything$"
has out "^4 entries, 3 unknown$"

for p in tlmsp msp-ets; do
    check "$src/data/framework/profiles/$p.ucl"
    if [ $? -eq 0 ]; then ok; else bad "$p cites what does not exist: $(head -c 2000 "$tmp/out") $(cat "$tmp/err")"; fi
    # a profile's entries were found at all (the pattern still matches the file)
    if grep -qE "^[1-9][0-9]* entries, 0 unknown$" "$tmp/out"; then ok; else bad "$p: $(cat "$tmp/out")"; fi
done

finish framework_evidence
