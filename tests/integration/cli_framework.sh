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
has out "^ets: verdict: may be part of the MSP series: every MSP-Mandatory requirement is met"
run 0 "$msp" framework check split-proxy
has out "^split-proxy:E\.DP\.2: erratum: "
has out "^split-proxy: verdict: not part of the MSP series: 11 MSP-Mandatory requirements are not met \(clause 6.1.1\): E.T.1, E.T.1.1, E.T.1.3, E.T.2, E.T.3, E.AC.2, E.AC.3, E.GC.1, E.GC.1.1, M.GC.1, M.GC.1.1.$"
hasnt out ": (error|warning): "
run 1 "$msp" framework check split-proxy --require-series
run 0 "$msp" framework check ets split-proxy "$ets"
has out "^$ets:M\.AC\.1: erratum"
# every finding line has the PROFILE:REF: severity: shape
grep -v ": verdict: " "$tmp/out" | grep -vqE '^[^:]+:[A-Za-z0-9.-]+: (error|warning|erratum): .+' && bad "malformed finding line" || ok

# reports in every format
run 0 "$msp" framework report ets; has out "^Data Protection$"; has out "^M\.AC\.1 .* MM +N->Y$"
has out "^Verdict: may be part of the MSP series"
run 0 "$msp" framework report split-proxy --format md; has out "^\| M\.T\.1\.1 \| Middleboxes \*\*shall\*\* receive"
has out "^## Errata$"
run 0 "$msp" framework report ets --format=html; has out "^<!DOCTYPE html>"; has out "</html>$"
has out "<b>shall</b>"
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

# output that cannot be written is an error, not a silent success
"$msp" framework report ets >/dev/full 2>"$tmp/err"; st=$?
if [ "$st" -eq 1 ]; then ok; else bad "writing to /dev/full exited $st"; fi
has err "cannot write to standard output"

finish cli_framework
