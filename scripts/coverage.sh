#!/usr/bin/env bash
# Line and branch coverage of src/ by the whole test suite (gcov instrumentation, gcovr from Debian).
# Usage: scripts/coverage.sh [BUILD_DIR]   (default build-cov)
# Writes BUILD_DIR/coverage/index.html (per file, line by line), BUILD_DIR/coverage/summary.json, and prints the
# figures per module (a folder of src/) and per file. Not part of .ci/run: it builds without the sanitizers and
# runs the suite once more.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-cov}
case "$build" in -h | --help)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
bash scripts/deps.sh
for tool in gcovr python3; do
    command -v "$tool" >/dev/null || { echo "coverage: $tool is not installed (scripts/deps.sh)" >&2; exit 2; }
done

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DMSP_COVERAGE=ON >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
find "$build" -name '*.gcda' -delete
# a failing test still leaves its coverage; the figures say what ran, the suite's verdict is scripts/test.sh's
ctest --test-dir "$build" -j"$(nproc)" >"$build/ctest.log" 2>&1 || echo "coverage: some tests failed (see $build/ctest.log)" >&2

out="$build/coverage"
mkdir -p "$out"
gcovr --root . --object-directory "$build" --filter 'src/' --exclude-unreachable-branches --exclude-throw-branches \
    --html-details "$out/index.html" --json-summary "$out/summary.json" --json-summary-pretty >/dev/null
python3 - "$out/summary.json" <<'EOF'
import json, os, sys
files = json.load(open(sys.argv[1]))["files"]
mods = {}
for f in files:
    m = mods.setdefault(os.path.dirname(f["filename"]), [0, 0, 0, 0])
    for i, k in enumerate(("line_covered", "line_total", "branch_covered", "branch_total")):
        m[i] += f[k]
pct = lambda a, b: f"{100.0 * a / b:5.1f}%" if b else "    -"
print(f"{'module':24} {'lines':>16} {'branches':>16}")
tot = [0, 0, 0, 0]
for name, m in sorted(mods.items()):
    tot = [a + b for a, b in zip(tot, m)]
    print(f"{name:24} {pct(m[0], m[1])} {m[0]:>4}/{m[1]:<5} {pct(m[2], m[3])} {m[2]:>4}/{m[3]:<5}")
print(f"{'src/ (all)':24} {pct(tot[0], tot[1])} {tot[0]:>4}/{tot[1]:<5} {pct(tot[2], tot[3])} {tot[2]:>4}/{tot[3]:<5}")
print()
for f in sorted(files, key=lambda f: f["filename"]):
    print(f"{f['filename']:36} lines {pct(f['line_covered'], f['line_total'])}  branches "
          f"{pct(f['branch_covered'], f['branch_total'])}")
EOF
echo "coverage: line by line in $out/index.html"
