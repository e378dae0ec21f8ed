#!/usr/bin/env bash
# The rendered Part 1 documents committed with the sources: the four shipped profiles compared (docs/framework/
# compare.html, and the markdown matrix in README.md between its two marker lines) and each profile's Conformance
# Analysis (docs/framework/PROFILE.html).
#   scripts/docs.sh MSP           regenerate them
#   scripts/docs.sh --check MSP   compare them with what MSP renders now (the ctest `framework_docs`); the dates in
#                                 the provenance lines are left out of the comparison. Exit 1 naming what differs.
set -uo pipefail
check=0
if [ "${1:-}" = --check ]; then
    check=1
    shift
fi
if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: scripts/docs.sh [--check] MSP (the msp binary)" >&2
    exit 2
fi
msp=$1
root=$(cd "$(dirname "$0")/.." && pwd)
profiles="ets split-proxy tlmsp msp-ets"
# the date the documents state: the last commit's, so that regenerating unchanged documents changes nothing
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
begin="<!-- msp framework compare $profiles --format md (scripts/docs.sh) -->"
end="<!-- end of msp framework compare -->"

# render NAME CMD...: CMD's output into $tmp/NAME; a failure stops everything, nothing is written
render() {
    local name=$1
    shift
    if ! "$msp" framework "$@" >"$tmp/$name" 2>"$tmp/err"; then
        echo "scripts/docs.sh: msp framework $*: $(head -1 "$tmp/err")" >&2
        exit 2
    fi
}
# shellcheck disable=SC2086
render compare.html compare $profiles --format html
# shellcheck disable=SC2086
render compare.md compare $profiles --format md
for p in $profiles; do
    render "$p.html" report "$p" --format html
done
# README.md with the matrix between the markers
if ! grep -qxF "$begin" "$root/README.md" || ! grep -qxF "$end" "$root/README.md"; then
    echo "scripts/docs.sh: README.md lacks the marker lines around the compare matrix" >&2
    exit 2
fi
awk -v b="$begin" -v e="$end" -v m="$tmp/compare.md" '
    $0 == e { skip = 0 }
    !skip { print }
    $0 == b { skip = 1; print ""; while ((getline l < m) > 0) print l; print "" }
' "$root/README.md" >"$tmp/README.md"

undated() { sed -E 's/, date [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]+Z/, date -/g' "$1"; }
status=0
for f in README.md framework/compare.html framework/ets.html framework/split-proxy.html framework/tlmsp.html \
    framework/msp-ets.html; do
    new=$tmp/$(basename "$f")
    dest=$root/$f
    [ "$f" = README.md ] || dest=$root/docs/$f
    if [ $check -eq 1 ]; then
        if [ ! -f "$dest" ] || ! cmp -s <(undated "$dest") <(undated "$new"); then
            echo "scripts/docs.sh: ${dest#"$root"/} differs from what msp renders now: run scripts/docs.sh $msp" >&2
            status=1
        fi
    else
        cp "$new" "$dest"
    fi
done
exit $status
