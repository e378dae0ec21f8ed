#!/usr/bin/env bash
# msp framework as a user runs it: exit statuses, one-line errors, nothing
# half-written, every output format. Usage: cli_framework.sh MSP SOURCE_DIR
set -uo pipefail
msp=$1
src=$2
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
has() { if grep -qE -- "$2" "$tmp/$1"; then ok; else bad "$1 lacks /$2/: $(head -c 400 "$tmp/$1")"; fi; }
hasnt() { if grep -qE -- "$2" "$tmp/$1"; then bad "$1 has /$2/"; else ok; fi; }
lines() { local n; n=$(wc -l <"$tmp/$1"); if [ "$n" -eq "$2" ]; then ok; else bad "$1 has $n lines, expected $2: $(head -c 400 "$tmp/$1")"; fi; }
empty() { if [ -s "$tmp/$1" ]; then bad "$1 is not empty: $(head -c 200 "$tmp/$1")"; else ok; fi; }

ets=$src/data/framework/profiles/ets.ucl

# --help everywhere, --version
run 0 "$msp" --help; has out "framework"
run 0 "$msp" --version; has out "^msp [0-9]+\.[0-9]+\.[0-9]+$"
run 0 "$msp" framework --help; has out "usage: msp framework"
for sub in catalog list new check report compare; do
    run 0 "$msp" framework "$sub" --help; has out "usage: msp framework"
done
run 2 "$msp" nosuch; lines err 1; has err "unknown command 'nosuch'"
run 2 "$msp" framework nosuch; lines err 1
run 2 "$msp" framework report ets --format pdf; lines err 1; has err "--format takes text, md, json or html, not pdf"
run 2 "$msp" framework report ets --bogus; lines err 1; has err "unknown option '--bogus'"
run 2 "$msp" framework report; lines err 1

# the shipped profiles: errata reported, no errors, the seed's verdicts
run 0 "$msp" framework list; has out "^ets$"; has out "^split-proxy$"
run 0 "$msp" framework check ets
has out "^ets:M\.AC\.1: erratum: Met printed N, should be Y"
has out "^ets:M\.AC\.3: erratum: Met printed Y, should be N"
hasnt out ": (error|warning): "
has out "^ets: verdict as printed: not part of the MSP series: 1 MSP-Mandatory requirement is not met \(clause 6.1.1\): M\.AC\.1\.$"
has out "^ets: verdict after errata: may be part of the MSP series: every MSP-Mandatory requirement is met \(clause 6.1.1\)\. 1 erratum decides it: M\.AC\.1\.$"
run 0 "$msp" framework check split-proxy
has out "^split-proxy:E\.DP\.2: erratum: "
has out "^split-proxy: verdict after errata: not part of the MSP series: 11 MSP-Mandatory requirements are not met \(clause 6.1.1\): E.T.1, E.T.1.1, E.T.1.3, E.T.2, E.T.3, E.AC.2, E.AC.3, E.GC.1, E.GC.1.1, M.GC.1, M.GC.1.1. No erratum changes a Mandatory requirement's Met.$"
has out "^split-proxy: verdict as printed: not part of the MSP series: 11 MSP-Mandatory"
hasnt out ": (error|warning): "
run 1 "$msp" framework check split-proxy --require-series
run 0 "$msp" framework check ets split-proxy "$ets"
has out "^$ets:M\.AC\.1: erratum"
# every finding line has the PROFILE:REF: severity: shape
grep -v ": verdict " "$tmp/out" | grep -vqE '^[^:]+:[A-Za-z0-9.-]+: (error|warning|erratum): .+' && bad "malformed finding line" || ok

# reports in every format
run 0 "$msp" framework report ets; has out "^B\.3\.1 Data Protection$"; has out "^M\.AC\.1 .* MM +N->Y$"
has out "^Verdict after errata: may be part of the MSP series.* 1 erratum decides it: M\.AC\.1\.$"
has out "^Verdict as printed: not part of the MSP series"
# the Conformance Analysis in Annex B's structure: tables and label sections, justifications and their clauses
has out "^B\.3\.1\.1 Overview$"; has out "^Table B\.3: Access Control Profile Requirements$"
has out "^B\.3\.3\.2 MSP-Mandatory Profile Requirements$"; has out "^B\.3\.4\.6 Profile-Rejected Profile Requirements$"
has out "^  M\.AC\.1 \(MM, Met N->Y, corrected by an erratum\)$"
has out "^    Justification: Met: ETS middleboxes take no identity-dependent action"
has out "^    Cites: B\.3\.3\.2, Table B\.3$"
has out "^  There are no Profile Requirements of the type \"Profile-Mandatory\" for Data Protection\.$"
run 0 "$msp" framework report split-proxy; has out "^C\.3\.3\.4 Profile-Optional Profile Requirements$"
has out "^  E\.AC\.5 \(PR->PO, Met N->Y, corrected by an erratum\)$"
run 0 "$msp" framework report split-proxy --format md; has out "^\| M\.T\.1\.1 \| Middleboxes \*\*shall\*\* receive"
has out "^### C\.3\.2\.6 Profile-Rejected Profile Requirements$"; has out "^\*\*Table C\.2: Transparency Profile Requirements\*\*$"
has out "^- \*\*E\.T\.1\*\* \(MM, Met N\): .*\*Cites: "; has out "^\*\*Verdict as printed:\*\* not part"
has out "^## Errata$"
run 0 "$msp" framework report ets --format=html; has out "^<!DOCTYPE html>"; has out "</html>$"
has out "<b>shall</b>"; has out "<caption>Table B\.1: Data Protection Profile Requirements</caption>"
has out '<h3 id="B\.3\.3\.5">B\.3\.3\.5 Profile-Not-Applicable Profile Requirements</h3>'; has out '<span class="cites">Cites: '
# every justification of the profile is in the HTML
run 0 "$msp" framework report ets --format json; cp "$tmp/out" "$tmp/ets.json"
run 0 "$msp" framework report ets --format html; cp "$tmp/out" "$tmp/ets.html"
python3 - "$tmp/ets.json" "$tmp/ets.html" <<'EOF' && ok || bad "a justification is missing from the HTML report"
import html, json, sys
page = html.unescape(open(sys.argv[2]).read())
missing = [r["ref"] for r in json.load(open(sys.argv[1]))["requirements"] if r["justification"] not in page]
if missing:
    print(missing, file=sys.stderr)
    sys.exit(1)
EOF
run 0 "$msp" framework report split-proxy --format json
has out '"msp_series": false'; has out '"unmet_mandatory": \['; has out '"met_as_printed": true'
run 0 "$msp" framework report ets --format json; has out '"msp_series": true'; has out '"profile": "ets"'

# catalog and compare
run 0 "$msp" framework catalog; has out "^E\.DP\.1 +Mandatory +endpoint +Endpoints shall protect"
run 0 "$msp" framework catalog --format json; has out '"ref": "M.GC.3"'
run 0 "$msp" framework catalog --format md; has out "^\| M\.AC\.3 \|"
run 0 "$msp" framework catalog --format html; has out "<td>E.T.5.1.2</td>"
run 0 "$msp" framework compare ets split-proxy; has out "^E\.T\.1 +M +MM Y +MM N !!"
has out "^MSP series +yes +NO"
run 0 "$msp" framework compare ets split-proxy --format md; has out "^\| E\.T\.1 \| M \| MM Y \| \*\*MM N\*\* \|$"
run 0 "$msp" framework compare ets split-proxy --format html; has out 'class="unmet"'
run 0 "$msp" framework compare ets split-proxy --format json; has out '"unmet_mandatory": true'

# new -> check tells what is missing
run 0 "$msp" framework new acme; cp "$tmp/out" "$tmp/acme.ucl"
run 1 "$msp" framework check "$tmp/acme.ucl"
has out "^$tmp/acme\.ucl:E\.DP\.1: error: no label; a Mandatory template requirement is MM$"
has out "^$tmp/acme\.ucl:E\.DP\.2: error: no label; choose PM, PO, PNA or PR"
run 2 "$msp" framework new "Bad Name"; lines err 1

# broken profiles: one line each, exit 1; report refuses and writes nothing to stdout
mk() { sed "$1" "$ets" >"$tmp/$2.ucl"; }
mk 's/^requirement "E\.DP\.3\.2" {/requirement "E.DP.3.9" {/' unknown
run 1 "$msp" framework check "$tmp/unknown.ucl"
has out "^$tmp/unknown\.ucl:E\.DP\.3\.9: error: unknown requirement: not in Tables 6\.2-6\.5 \(line [0-9]+\)$"
has out "^$tmp/unknown\.ucl:E\.DP\.3\.2: error: missing"
run 1 "$msp" framework report "$tmp/unknown.ucl"; empty out; has err "unknown requirement"
# compare refuses as report does: a profile with errors on either side, nothing on stdout
run 1 "$msp" framework compare ets "$tmp/unknown.ucl"; empty out; has err "unknown requirement"
run 1 "$msp" framework compare "$tmp/unknown.ucl" split-proxy --format json; empty out; has err "unknown requirement"
awk '/^requirement "E\.T\.3" \{/{skip=1} skip&&/^\}/{skip=0;next} !skip' "$ets" >"$tmp/missing.ucl"
run 1 "$msp" framework check "$tmp/missing.ucl"; has out "^$tmp/missing\.ucl:E\.T\.3: error: missing: "
grep -c ': error: ' "$tmp/out" | grep -qx 1 && ok || bad "missing.ucl: not exactly one error"
{ cat "$ets"; printf 'requirement "E.GC.1" {\n label = "MM"; met = true; text = "x";\n}\n'; } >"$tmp/dup.ucl"
run 1 "$msp" framework check "$tmp/dup.ucl"; has out "^$tmp/dup\.ucl:E\.GC\.1: error: labelled twice \(lines [0-9]+ and [0-9]+\)"
awk '/^requirement "E\.DP\.1" \{/{r=1} r&&/label =/{sub(/"MM"/,"\"PO\"");r=0} 1' "$ets" >"$tmp/wronglabel.ucl"
run 1 "$msp" framework check "$tmp/wronglabel.ucl"
has out "^$tmp/wronglabel\.ucl:E\.DP\.1: error: labelled PO, but it is a Mandatory template requirement: it must be MM"
mk 's/The initiator endpoint shall authenticate or otherwise verify/The initiator endpoint shall authenticate and verify/' pmtext
run 1 "$msp" framework check "$tmp/pmtext.ucl"
has out "^$tmp/pmtext\.ucl:E\.T\.4\.1: error: PM text may differ from the template only by \"may\" -> \"shall\""
printf 'profile {\n  name = "x";\n}\nrequirement "E.DP.1" {\n  label = "MM;\n' >"$tmp/syntax.ucl"
run 2 "$msp" framework check "$tmp/syntax.ucl"; lines err 1; has err "^$tmp/syntax\.ucl:[0-9]+: error: "; empty out
run 2 "$msp" framework report "$tmp/syntax.ucl"; empty out
run 2 "$msp" framework check "$tmp/nonexistent.ucl"; lines err 1; has err "cannot open"
run 2 "$msp" framework check no-such-profile; lines err 1; has err "not a shipped profile"

# a met parent with an unmet Mandatory child contradicts clause 6.1.3 (a satisfied parent stands for its leaves)
mk '/^requirement "E\.AC\.1\.1" {/,/^}/ s/met = true;/met = false;/' metparent
run 1 "$msp" framework check "$tmp/metparent.ucl"
has out "^$tmp/metparent\.ucl:E\.AC\.1: error: met, yet its Mandatory child E\.AC\.1\.1 is not met"
grep -c ': error: ' "$tmp/out" | grep -qx 1 && ok || bad "metparent.ucl: not exactly one error"

# JSON: unsuffixed fields after errata, _as_printed as the tables print them (E.AC.5: printed PR N, is PO Y)
run 0 "$msp" framework report split-proxy --format json; cp "$tmp/out" "$tmp/sp.json"
python3 - "$tmp/sp.json" <<'EOF' && ok || bad "split-proxy JSON fields"
import json, sys
d = json.load(open(sys.argv[1]))
r = {x["ref"]: x for x in d["requirements"]}
e = r["E.AC.5"]
assert (e["label"], e["met"], e["label_as_printed"], e["met_as_printed"]) == ("PO", True, "PR", False), e
m = r["M.AC.2.1"]
assert m["text"].endswith("identity.") and not m["text_as_printed"].endswith("."), m
assert "label_corrected" not in e and "text_corrected" not in e
assert all(x["cites"] for x in d["requirements"])
v = d["verdict"]
assert v["msp_series"] is False and v["msp_series_as_printed"] is False and v["deciding_errata"] == [], v
assert d["annex"] == "C"
EOF
# compare marks a text-only erratum like the others
run 0 "$msp" framework compare split-proxy; has out "^M\.AC\.2\.1 +O +PO Y\* *$"

# --format on check: text (the lines above), json, sarif; refused where it means nothing
run 0 "$msp" framework check ets split-proxy --format json; cp "$tmp/out" "$tmp/check.json"
python3 - "$tmp/check.json" <<'EOF' && ok || bad "check --format json shape"
import json, sys
d = json.load(open(sys.argv[1]))
assert [p["source"] for p in d["profiles"]] == ["ets", "split-proxy"]
ets = d["profiles"][0]
assert ets["errors"] == 0 and ets["errata"] == 7, ets["errata"]
tm5 = [x for x in ets["findings"] if x["rule"] == "citation"]
assert len(tm5) == 1 and tm5[0]["ref"] == "B.3.2.6" and "ETS.TM.5" in tm5[0]["message"], tm5
assert ets["verdict"]["msp_series"] is True and ets["verdict"]["msp_series_as_printed"] is False
assert ets["verdict"]["deciding_errata"] == ["M.AC.1"]
f = [x for x in ets["findings"] if x["ref"] == "M.AC.1"][0]
assert f["severity"] == "erratum" and f["rule"] == "erratum" and f["line"] > 0, f
EOF
run 1 "$msp" framework check ets "$tmp/pmtext.ucl" --format sarif; cp "$tmp/out" "$tmp/check.sarif"
python3 - "$tmp/check.sarif" "$tmp/pmtext.ucl" <<'EOF' && ok || bad "check --format sarif is not a SARIF 2.1.0 log"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == "2.1.0" and d["$schema"].endswith("sarif-2.1.0.json")
assert len(d["runs"]) == 1
run = d["runs"][0]
driver = run["tool"]["driver"]
assert driver["name"] and driver["rules"]
ids = [r["id"] for r in driver["rules"]]
assert len(set(ids)) == len(ids) and all(r["shortDescription"]["text"] for r in driver["rules"])
assert run["results"]
for r in run["results"]:
    assert r["ruleId"] in ids and ids[r["ruleIndex"]] == r["ruleId"]
    assert r["level"] in ("error", "warning", "note")
    assert r["message"]["text"]
    loc = r["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"]
    assert loc["region"]["startLine"] >= 1
err = [r for r in run["results"] if r["level"] == "error"]
assert len(err) == 1 and err[0]["ruleId"] == "text", err
loc = err[0]["locations"][0]["physicalLocation"]
assert loc["artifactLocation"]["uri"] == "file://" + sys.argv[2], loc
lines = open(sys.argv[2]).read().split("\n")
assert lines[loc["region"]["startLine"] - 1].startswith('requirement "E.T.4.1"'), loc
assert any(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "data/framework/profiles/ets.ucl"
           for r in run["results"])
EOF
run 2 "$msp" framework check ets --format md; lines err 1; has err "--format takes text, json or sarif, not md"; empty out
run 2 "$msp" framework report ets --format sarif; lines err 1; has err "--format takes text, md, json or html, not sarif"
run 2 "$msp" framework list --format json; lines err 1; has err "list takes no --format"
run 2 "$msp" framework new acme --format md; lines err 1; has err "new takes no --format"

# an empty file (or one with only comments) is one line, exit 2
: >"$tmp/empty.ucl"
run 2 "$msp" framework check "$tmp/empty.ucl"; lines err 1; empty out
has err "^$tmp/empty\.ucl:1: error: empty profile: no profile, requirement or erratum block$"
printf '# nothing yet\n\n' >"$tmp/comment.ucl"
run 2 "$msp" framework check "$tmp/comment.ucl" --format sarif; lines err 1; empty out
run 2 "$msp" framework report "$tmp/empty.ucl"; lines err 1; empty out

# spacing changes in a copied text: a warning, not an error (the words are what clause 6.1.2.3 rules on)
mk 's/text = "Endpoints shall protect confidentiality of sensitive data that they send.";/text = "Endpoints shall protect  confidentiality of sensitive data that they send.";/' spacing
run 0 "$msp" framework check "$tmp/spacing.ucl"
has out "^$tmp/spacing\.ucl:E\.DP\.1: warning: text differs from the template in spacing only \(before word 4 the template has a space, the profile several spaces\)"
hasnt out ": error: "

# --no-errata: the profile as printed. ETS's M.AC.3 (PNA, printed Y) then breaks a rule, so do the split proxy's
# rows; with M.AC.3 printed N, ETS as printed is well formed but, through M.AC.1, out of the series
run 1 "$msp" framework check ets --no-errata; has out "^ets:M\.AC\.3: error: PNA is not claimed as met"; hasnt out ": erratum: "
hasnt out "verdict"
run 1 "$msp" framework check split-proxy --no-errata; has out "^split-proxy:E\.DP\.2: error: PR is never met"
awk '/^requirement "/ { ref = $2 } ref == "\"M.AC.3\"" && /^    met = true;/ { print "    met = false;"; next }
ref == "\"M.AC.3\"" && /^    erratum \{/ { skip = 1 } skip { if (/^    \}/) skip = 0; next } { print }' "$ets" >"$tmp/ets-mac3.ucl"
run 0 "$msp" framework check "$tmp/ets-mac3.ucl" --require-series
has out "^$tmp/ets-mac3\.ucl: verdict after errata: may be part of the MSP series: .* 1 erratum decides it: M\.AC\.1\.$"
run 1 "$msp" framework check "$tmp/ets-mac3.ucl" --require-series --no-errata; hasnt out ": (error|erratum): "
has out "^$tmp/ets-mac3\.ucl: verdict as printed \(errata ignored\): not part of the MSP series: 1 MSP-Mandatory requirement is not met \(clause 6\.1\.1\): M\.AC\.1\.$"
lines out 1
run 0 "$msp" framework report "$tmp/ets-mac3.ucl" --no-errata; has out "^Verdict as printed \(errata ignored\): not part"
hasnt out "^Errata"; hasnt out "after errata"; has out "^M\.AC\.1 .* MM +N$"
run 2 "$msp" framework catalog --no-errata; lines err 1

# errata that flip all 11 unmet MM rows: --require-series passes on them, and says so; --no-errata refuses
flip='^(E\.T\.1|E\.T\.1\.1|E\.T\.1\.3|E\.T\.2|E\.T\.3|E\.AC\.2|E\.AC\.3|E\.GC\.1|E\.GC\.1\.1|M\.GC\.1|M\.GC\.1\.1)$'
awk -v flip="$flip" '
/^requirement "/ { ref = $2; gsub(/"/, "", ref) }
/^}/ && ref ~ flip { print "    erratum {\n        met = true;\n        why = \"generous\";\n    }"; ref = "" }
{ print }' "$src/data/framework/profiles/split-proxy.ucl" >"$tmp/flipped.ucl"
run 0 "$msp" framework check "$tmp/flipped.ucl" --require-series
has out "^$tmp/flipped\.ucl: verdict as printed: not part of the MSP series: 11 "
has out "^$tmp/flipped\.ucl: verdict after errata: may be part of the MSP series: .* 11 errata decide it: E\.T\.1, .*, M\.GC\.1\.1\.$"
run 1 "$msp" framework check "$tmp/flipped.ucl" --require-series --no-errata

# output that cannot be written is an error, not a silent success
"$msp" framework report ets >/dev/full 2>"$tmp/err"; st=$?
if [ "$st" -eq 1 ]; then ok; else bad "writing to /dev/full exited $st"; fi
has err "cannot write to standard output"

# The evidence a claim names is in every report, beside its justification (none in Annexes B and C)
run 0 "$msp" framework report tlmsp; has out "^    Evidence: test_tlmsp_tamper:test_matrix, test_tlmsp_container:test_tamper_each_field$"
run 0 "$msp" framework report tlmsp --format md; has out "\\*Cites: [^*]*\\* Evidence: test\\\\_tlmsp\\\\_tamper:test\\\\_matrix"
run 0 "$msp" framework report tlmsp --format html; has out "<span class=\"evidence\">Evidence: test_tlmsp_tamper:test_matrix"
run 0 "$msp" framework report tlmsp --format json; has out '"evidence": \[$'
run 0 "$msp" framework report ets; if grep -q "Evidence:" "$tmp/out"; then bad "ets names evidence"; else ok; fi

finish cli_framework
