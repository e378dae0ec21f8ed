#!/usr/bin/env bash
# The README's ETS walk-through, run as written (only the two paths at its top are pointed at the binaries
# under test), with its results checked. Usage: ets_readme.sh MSP SOURCE_DIR PROVIDER_MODULE
set -uo pipefail
msp=$1
src=$2
module=$3
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
trap 'pkill -f "s_server -accept 127.0.0.1:8443" 2>/dev/null; cleanup' EXIT

sed -n '/^<!-- ets-walkthrough -->$/,/^<!-- \/ets-walkthrough -->$/p' "$src/README.md" |
    sed -e '1,/^```sh$/d' -e '/^```$/,$d' >"$tmp/walk.sh"
if [ "$(grep -c . "$tmp/walk.sh")" -gt 20 ]; then ok; else bad "no walk-through found in README.md"; fi
sed -i -e "s|^msp=.*|msp=$msp|" -e "s|^module=.*|module=$module|" "$tmp/walk.sh"
(cd "$tmp" && bash -e "$tmp/walk.sh") >"$tmp/out" 2>"$tmp/err"
status=$?
if [ $status -eq 0 ]; then ok; else bad "the walk-through failed ($status): $(tail -5 "$tmp/err")"; fi
for want in 'visibility 1: fingerprint' 'verdict: ETS server: static key share, disclosed by accurate visibility' \
    '"event":"handshake"' '"visibility_matches":true' 'HTTP/1.0 200 ok'; do
    if grep -qF -- "$want" "$tmp/out"; then ok; else bad "walk-through output lacks '$want'"; fi
done
# both tshark commands show the request: through the key log, and in the plaintext capture as it is
if [ "$(grep -c 'GET / HTTP/1.1' "$tmp/out")" -ge 2 ]; then ok; else
    bad "tshark did not show the request twice: $(grep -c 'GET / HTTP/1.1' "$tmp/out")"
fi
finish ets_readme
