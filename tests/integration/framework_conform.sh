#!/usr/bin/env bash
# msp framework conform and diff as a user runs them: exit statuses, one-line errors,
# provenance, every format. Usage: framework_conform.sh MSP SOURCE_DIR
set -uo pipefail
msp=$1
src=$2
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
has() { if grep -qE -- "$2" "$tmp/$1"; then ok; else bad "$1 lacks /$2/: $(head -c 400 "$tmp/$1")"; fi; }
lines() { local n; n=$(wc -l <"$tmp/$1"); if [ "$n" -eq "$2" ]; then ok; else bad "$1 has $n lines, expected $2: $(head -c 400 "$tmp/$1")"; fi; }
empty() { if [ -s "$tmp/$1" ]; then bad "$1 is not empty: $(head -c 200 "$tmp/$1")"; else ok; fi; }

ets=$src/data/framework/profiles/ets.ucl
export SOURCE_DATE_EPOCH=1796688000 # 2026-12-08T00:00:00Z: reports carry a fixed date

for sub in conform diff; do
    run 0 "$msp" framework "$sub" --help; has out "usage: msp framework"
done

# A JUnit file as `ctest --output-junit` writes it: one test passed with cmocka cases, one failed.
cat >"$tmp/junit.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="msp" tests="2" failures="1" disabled="0" skipped="0" hostname="" time="1" timestamp="2026-12-08T00:00:00">
	<testcase name="t_pass" classname="t_pass" time="0.1" status="run">
		<system-out>[ RUN      ] case_ok
[       OK ] case_ok
</system-out>
	</testcase>
	<testcase name="t_fail" classname="t_fail" time="0.1" status="run">
		<failure message="Failed"/>
		<system-out>FAIL: something</system-out>
	</testcase>
</testsuite>
XML

section conform_claims
# A profile whose every met claim names passing evidence: proven, exit 0.
python3 - "$ets" "$tmp/proven.ucl" "$tmp/contra.ucl" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def add(t, ev):
    return re.sub(r'(requirement "[^"]+" \{)', lambda m: m.group(1) + '\n    evidence = [%s];' % ev, t)
open(sys.argv[2], "w").write(add(text, '"t_pass", "t_pass:case_ok"'))
contra = add(text, '"t_pass"').replace('requirement "E.DP.1" {\n    evidence = ["t_pass"];',
                                      'requirement "E.DP.1" {\n    evidence = ["t_fail"];')
open(sys.argv[3], "w").write(contra)
PY
run 0 "$msp" framework conform "$tmp/proven.ucl" --results "$tmp/junit.xml"
has out "^Provenance: msp [0-9]+\.[0-9]+\.[0-9]+, catalog ETSI TS 103 523-1 V1\.1\.1, profile $tmp/proven\.ucl sha256 [0-9a-f]{64}, date 2026-12-08T00:00:00Z$"
has out "^E\.DP\.1 +MM +proven +t_pass passed, t_pass:case_ok passed$"
has out "claims met: [0-9]+ proven, 0 unproven, 0 contradicted$"
sha=$(sha256sum "$tmp/proven.ucl" | cut -d' ' -f1); has out "sha256 $sha,"

# A failed test contradicts the claim; the shipped profile without evidence leaves every claim unproven: exit 1.
run 1 "$msp" framework conform "$tmp/contra.ucl" --results "$tmp/junit.xml"
has out "^E\.DP\.1 +MM +contradicted +t_fail failed$"; has out ", 1 contradicted$"
run 1 "$msp" framework conform ets --results "$tmp/junit.xml"; has out "^E\.DP\.1 +MM +unproven +no evidence$"
# --no-errata: M.AC.1 is met only after its erratum, so as printed it is no claim
run 1 "$msp" framework conform ets --results "$tmp/junit.xml" --no-errata
if grep -q "^M\.AC\.1 " "$tmp/out"; then bad "M.AC.1 claimed with --no-errata"; else ok; fi

for f in md json html; do
    run 1 "$msp" framework conform "$tmp/contra.ucl" --results "$tmp/junit.xml" --format "$f"; cp "$tmp/out" "$tmp/conform.$f"
done
python3 - "$tmp/conform.json" <<'PY' && ok || bad "conform --format json shape"
import json, sys
d = json.load(open(sys.argv[1]))
p = d["provenance"]
assert p["catalog_version"] == "ETSI TS 103 523-1 V1.1.1" and len(p["profile_sha256"]) == 64, p
assert p["date"] == "2026-12-08T00:00:00Z" and p["msp_version"], p
c = {x["ref"]: x for x in d["claims"]}
assert c["E.DP.1"]["status"] == "contradicted" and c["E.DP.1"]["evidence"] == [{"id": "t_fail", "result": "failed"}]
assert c["E.DP.3.1"]["status"] == "proven"
assert d["summary"]["contradicted"] == 1 and d["summary"]["unproven"] == 0, d["summary"]
PY
has conform.html '<a href="#ev-t_fail">t_fail</a> failed'; has conform.html '<tr id="ev-t_fail">'
has conform.html '<a href="#req-E.DP.1">E.DP.1</a>'; has conform.md '^\| E\.DP\.1 \| MM \| \*\*contradicted\*\* \| t\\_fail failed \|$'

section conform_bad_input
# Bad input: one line on stderr, exit 2, nothing on stdout.
run 2 "$msp" framework conform ets; lines err 1; has err "conform takes one PROFILE and --results FILE"; empty out
run 2 "$msp" framework conform ets --results; lines err 1; has err "--results needs a FILE"
run 2 "$msp" framework conform ets --results "$tmp/none.xml"; lines err 1; has err "cannot open"; empty out
printf '<testsuite>\n<testcase name="a">\n</testsuite>\n' >"$tmp/broken.xml"
run 2 "$msp" framework conform ets --results "$tmp/broken.xml"; lines err 1; has err "broken\.xml:[0-9]+: .*not well-formed XML"; empty out
echo '<html/>' >"$tmp/html.xml"
run 2 "$msp" framework conform ets --results "$tmp/html.xml"; lines err 1; has err "not JUnit"; empty out
printf '<!DOCTYPE t [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<testsuite><testcase name="a"><system-out>&e;</system-out></testcase></testsuite>\n' >"$tmp/dtd.xml"
run 2 "$msp" framework conform ets --results "$tmp/dtd.xml"; lines err 1; has err "DOCTYPE"; empty out
head -c 70000000 /dev/zero >"$tmp/huge.xml"
run 2 "$msp" framework conform ets --results "$tmp/huge.xml"; lines err 1; has err "larger than"; empty out
run 2 "$msp" framework conform ets --results "$tmp/junit.xml" --format sarif; lines err 1

section diff
# diff: 0 when the same, 1 with the changes, 2 on bad input
run 0 "$msp" framework diff ets "$ets"; has out "^0 changes$"; has out "^old: msp .*sha256 [0-9a-f]{64}, date 2026-12-08T00:00:00Z$"
sed -e 's/^    label = "PR";$/    label = "PO";/' "$ets" >"$tmp/relabel.ucl"
n=$(grep -c '^    label = "PR";$' "$ets")
run 1 "$msp" framework diff ets "$tmp/relabel.ucl"; has out "^$n changes$"; has out "^E\.DP\.2: label:$"; has out "^  \+ PO$"
run 1 "$msp" framework diff ets "$tmp/contra.ucl" --format json; cp "$tmp/out" "$tmp/diff.json"
python3 - "$tmp/diff.json" <<'PY' && ok || bad "diff --format json shape"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["old"]["provenance"]["profile"] == "ets"
ch = [c for c in d["changes"] if c["ref"] == "E.DP.1"]
assert ch == [{"ref": "E.DP.1", "field": "evidence", "old": None, "new": "t_fail"}], ch
assert d["count"] == len(d["changes"])
PY
run 1 "$msp" framework diff ets "$tmp/relabel.ucl" --format md; has out '^\| E\.DP\.2 \| label \| PR \| PO \|$'
run 2 "$msp" framework diff ets; lines err 1; has err "diff takes two profiles"
run 2 "$msp" framework diff ets nosuch; lines err 1; has err "not a shipped profile"
run 2 "$msp" framework diff ets ets --format html; lines err 1; has err "--format takes text, md or json, not html"

section provenance
# Provenance in report and compare, every format
for f in text md html; do
    run 0 "$msp" framework report ets --format "$f"; has out "catalog ETSI TS 103 523-1 V1\.1\.1, profile ets sha256 [0-9a-f]{64}, date 2026-12-08T00:00:00Z"
    run 0 "$msp" framework compare ets split-proxy --format "$f"; has out "profile split-proxy sha256 [0-9a-f]{64}"
done
run 0 "$msp" framework report ets --format json; has out '"profile_sha256": "[0-9a-f]{64}"'
run 0 "$msp" framework compare ets --format json; has out '"profile_sha256": "[0-9a-f]{64}"'

section citations
# check: the ETS.TM.5 Annex B cites is a finding; an undeclared id in a justification is an error
run 0 "$msp" framework check ets; has out "^ets:B\.3\.2\.6: erratum: the printed text cites ETS\.TM\.5, which the profile does not define"
sed -e '0,/^    justification = "/s//    justification = "(ETS.TM.9) /' "$ets" >"$tmp/tm9.ucl"
run 1 "$msp" framework check "$tmp/tm9.ucl"; has out "^$tmp/tm9\.ucl:E\.DP\.1: error: the justification cites ETS\.TM\.9, which the profile does not define"

finish framework_conform
