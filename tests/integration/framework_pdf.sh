#!/usr/bin/env bash
# The HTML report printed to PDF with headless Chromium, as an auditor files it:
# a sane page count, every requirement and every justification in the text
# (nothing cut), and every word inside the page margins (nothing overflowing).
# Usage: framework_pdf.sh MSP. Needs chromium and poppler-utils (scripts/deps.sh);
# without them it fails under CI=true and skips otherwise.
set -uo pipefail
msp=$1
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"

chromium=$(command -v chromium || command -v chromium-browser || true)
for tool in "$chromium" pdfinfo pdftotext python3; do
    if [ -z "$tool" ] || ! command -v "$tool" >/dev/null; then
        echo "framework_pdf: ${tool:-chromium} is missing (scripts/deps.sh installs chromium, poppler-utils)" >&2
        if [ "${CI:-}" = true ]; then exit 1; fi
        echo "framework_pdf: SKIP"
        exit 0
    fi
done

# pdf NAME: report NAME as HTML, printed to $tmp/NAME.pdf (Chromium's own header and footer off: the test
# looks at what msp wrote). Its own profile directory, so that parallel runs do not share one.
pdf() {
    run 0 "$msp" framework report "$1" --format html
    cp "$tmp/out" "$tmp/$1.html"
    run 0 "$msp" framework report "$1" --format json
    cp "$tmp/out" "$tmp/$1.json"
    timeout 180 "$chromium" --headless --no-sandbox --disable-gpu --no-pdf-header-footer \
        --user-data-dir="$tmp/chromium-$1" --print-to-pdf="$tmp/$1.pdf" "file://$tmp/$1.html" \
        >"$tmp/chromium.log" 2>&1
    if [ -s "$tmp/$1.pdf" ]; then ok; else bad "$1: chromium wrote no PDF: $(tail -c 400 "$tmp/chromium.log")"; fi
}

# check NAME MIN_PAGES MAX_PAGES: the checks, in python3 on pdfinfo's, pdftotext's and the JSON report's output.
check() {
    pdfinfo "$tmp/$1.pdf" >"$tmp/$1.info" 2>&1 || bad "$1: pdfinfo failed"
    pdftotext "$tmp/$1.pdf" "$tmp/$1.txt" 2>/dev/null || bad "$1: pdftotext failed"
    pdftotext -bbox "$tmp/$1.pdf" "$tmp/$1.bbox" 2>/dev/null || bad "$1: pdftotext -bbox failed"
    if python3 - "$tmp/$1" "$2" "$3" <<'EOF'; then ok; else bad "$1: the PDF is not sane (above)"; fi
import json, re, sys
base, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
problems = []
info = open(base + ".info").read()
pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
if not lo <= pages <= hi:
    problems.append(f"{pages} pages, expected {lo} to {hi}")
# Words joined by single spaces: a line or page break is a space. pdftotext joins a word broken at a
# hyphen ("identity-" "dependent" -> "identitydependent"), so hyphens are dropped on both sides.
def norm(s):
    return " ".join(s.replace("-", "").split())
text = norm(open(base + ".txt").read())
report = json.load(open(base + ".json"))
for r in report["requirements"]:
    # The ref in its table and in its analysis section.
    ref = norm(r["ref"]) + " "
    if text.count(ref) < 2:
        problems.append(f"{r['ref']} appears {text.count(ref)} times")
    # Every word of the justification, in order: nothing cut, nothing hidden.
    j = norm(r["justification"])
    if j not in text:
        problems.append(f"{r['ref']}: justification not in the text: {j[:60]}...")
    # The evidence a claim names, whole (our own profiles; Annexes B and C name none).
    if r["evidence"]:
        e = norm("Evidence: " + ", ".join(r["evidence"]))
        if e not in text:
            problems.append(f"{r['ref']}: evidence not in the text: {e[:60]}...")
# Annex B and C number their sections and tables under the annex, our own profiles from 1.
annex = report["annex"] + "." if report["annex"] else ""
for phrase in ("Verdict as printed:", "Verdict after errata:", f"{annex}{'3.' if annex else ''}4.6 ProfileRejected"):
    if phrase not in text:
        problems.append(f"no '{phrase}'")
for n in range(1, 5):
    if f"Table {annex}{n}:" not in text:
        problems.append(f"no Table {annex}{n}")
# Every word inside the page less its 15 mm margins (42.5 pt), with 2 pt to spare.
margin = 42.5 - 2
words = 0
for page in re.finditer(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', open(base + ".bbox").read(), re.S):
    w, h = float(page.group(1)), float(page.group(2))
    for m in re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', page.group(3)):
        x0, y0, x1, y1 = map(float, m.groups()[:4])
        words += 1
        if x0 < margin or x1 > w - margin or y0 < margin or y1 > h - margin:
            problems.append(f"'{m.group(5)}' at x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f} is outside the margins")
if words < 3000:
    problems.append(f"only {words} words")
for p in problems[:20]:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
}

for p in ets split-proxy tlmsp msp-ets; do
    pdf "$p"
    check "$p" 8 40
done

finish framework_pdf
