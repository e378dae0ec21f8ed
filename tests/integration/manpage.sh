#!/usr/bin/env bash
# msp(1) documents every command `msp --help` and `msp ets --help` list, and renders without warnings.
# usage: manpage.sh MSP MANPAGE
set -euo pipefail
msp=$1 page=$2
fail=0
cmds=$("$msp" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
ets=$("$msp" ets --help | awk '/^  [a-z]/ {print $1}')
[ -n "$cmds" ] && [ -n "$ets" ] || { echo "manpage: could not read the command lists from $msp --help" >&2; exit 1; }
for c in $cmds; do
    grep -qE "^\.(B|BR) (.*\b)?$c\b" "$page" || { echo "manpage: $page does not document 'msp $c'" >&2; fail=1; }
done
for c in $ets; do
    grep -qE "^\.B ets $c\$" "$page" || { echo "manpage: $page does not document 'msp ets $c'" >&2; fail=1; }
done
command -v groff >/dev/null || { echo "manpage: groff is missing (scripts/deps.sh installs groff-base)" >&2; exit 1; }
warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1 || true)
[ -z "$warn" ] || { echo "manpage: groff warns: $warn" >&2; fail=1; }
[ "$fail" = 0 ] && echo "manpage: $(wc -w <<<"$cmds $ets") commands documented"
exit "$fail"
