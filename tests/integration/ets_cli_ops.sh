#!/usr/bin/env bash
# `msp ets decrypt` and `msp ets keymgr fetch` as an operator runs them (issue 13, findings 3-5): nothing is
# created before the capture and the keys are known good, an output's error names the output, the run ends with a
# summary line on stderr (a progress line on a terminal), the plaintext capture streams to standard output or a
# FIFO while capturing live (tshark reads it as it comes; a reader that goes away ends the run with one line), and
# rotates by size or capture time into files that are each a capture of their own. The traffic: stock openssl
# s_server made ETS by openssl.cnf and the msp-ets provider, curl as the client, dumpcap on loopback.
# Usage: ets_cli_ops.sh MSP SOURCE_DIR PROVIDER_MODULE
set -uo pipefail
msp=$1
module=$3
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
cd "$tmp" || exit 1
for tool in openssl curl dumpcap tshark script python3; do
    command -v "$tool" >/dev/null || { bad "$tool is not installed (scripts/deps.sh)"; finish ets_cli_ops; exit; }
done
has() { if grep -qF -- "$2" "$1"; then ok; else bad "$1 lacks '$2': $(head -c 600 "$1")"; fi; }
lines() { if [ "$(wc -l <"$1")" -eq "$2" ]; then ok; else bad "$1: $(wc -l <"$1") lines, expected $2: $(cat "$1")"; fi; }
same() { if [ "$1" = "$2" ]; then ok; else bad "'$1', expected '$2'"; fi; }
# wait_until SECONDS CMD...: until CMD succeeds (0) or the time is up (1)
wait_until() {
    for _ in $(seq $(($1 * 10))); do
        "${@:2}" && return 0
        sleep 0.1
    done
    return 1
}
# nothing_made NAME...: none of these paths exists, and no temporary file is left in $tmp
nothing_made() {
    local p left=""
    for p in "$@"; do [ -e "$p" ] && left="$left $p"; done
    left="$left $(ls | grep '\.tmp\.' | tr '\n' ' ')"
    if [ -z "${left// /}" ]; then ok; else bad "left behind:$left"; fi
}

# ---- keys, certificate, an ETS server, a capture ----
run 0 "$msp" ets keygen --group x25519 --out x25519.pem
run 0 "$msp" ets keygen --group p256 --out p256.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
    -subj /CN=msp-test-ca >/dev/null 2>&1 || bad "CA"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key >/dev/null 2>&1
run 0 "$msp" ets cert --static x25519.pem --static p256.pem --access "IDS of msp.test" --key ec.key \
    --subject /CN=ets.test --dns ets.test --ca-cert ca.pem --ca-key ca.key --out ec.pem
ets_conf ets.cnf "$tmp/x25519.pem" "$tmp/p256.pem"
head -c 150000 /dev/urandom >big.bin
printf 'small file\n' >small.txt
# -WWW serves the files of its working folder
s_server www.log "$tmp/ets.cnf" X25519:P-256 -cert ec.pem -key ec.key -WWW
www_port=$port

# get PATH [CURL ARGS...]: one HTTPS request to the server
get() {
    timeout 10 curl -s --cacert ca.pem --resolve "ets.test:$www_port:127.0.0.1" "https://ets.test:$www_port/$1" \
        "${@:2}" -o /dev/null || bad "curl $1 failed"
}
dumpcap -q -i lo -f "tcp port $www_port" -w cap.pcapng >dumpcap.log 2>&1 &
cap_pid=$!
pids+=($cap_pid)
wait_until 10 grep -q "Capturing on" dumpcap.log || bad "dumpcap did not start: $(cat dumpcap.log)"
get big.bin
get big.bin --curves P-256
sleep 1.5 # capture time between the first two connections and the last two, for --rotate by time
get small.txt
get big.bin
sleep 0.5
kill -INT $cap_pid
wait $cap_pid 2>/dev/null

# ---- finding 5: a run ends with one summary line on stderr; --quiet says nothing ----
run 0 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --events all.json
has all.json '"flows":4,"decrypted":4,"undecryptable":0'
lines "$tmp/err" 1
if grep -qE '^msp ets decrypt: 4 flows, 4 decrypted, 0 undecryptable, 45[0-9]\.[0-9] kB plaintext, [0-9.]+ [kM]B captured in [0-9]+\.[0-9]+ s( \([0-9.]+ [kMG]?B/s\))?$' "$tmp/err"; then ok; else
    bad "summary line: $(cat "$tmp/err")"
fi
# undecryptable connections by reason, and the line saying the run failed after it
run 1 "$msp" ets decrypt --key p256.pem --pcap cap.pcapng --events p256.json
lines "$tmp/err" 2
if head -1 "$tmp/err" | grep -qE '^msp ets decrypt: 4 flows, 1 decrypted, 3 undecryptable \(no_static_key 3\), '; then ok
else bad "summary with reasons: $(cat "$tmp/err")"; fi
has "$tmp/err" "3 of 4 connections could not be decrypted"
run 0 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --events all.json --quiet
lines "$tmp/err" 0
# Progress: only when stderr is a terminal (script(1) gives the command one), redrawn with \r and cleared before
# the summary; not on a pipe.
script -qec "'$msp' ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --events tty.json" /dev/null \
    </dev/null >tty.out 2>&1
if grep -qaE $'\rmsp ets decrypt: [0-9.]+ [kM]?B of [0-9.]+ [kM]B \\([0-9]+ %\\)' tty.out &&
    grep -qaF $'\r\e[Kmsp ets decrypt: 4 flows, 4 decrypted' tty.out; then ok; else
    bad "no progress line cleared before the summary on a terminal: $(od -c tty.out | head -8)"
fi
script -qec "'$msp' ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --events tty.json --quiet" /dev/null \
    </dev/null >ttyq.out 2>&1
if ! grep -qa "msp ets decrypt" ttyq.out; then ok; else bad "--quiet on a terminal: $(cat -v ttyq.out)"; fi
run 0 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --events all.json
if ! grep -q $'\r' "$tmp/err"; then ok; else bad "progress on a pipe: $(cat -v "$tmp/err")"; fi

# ---- finding 3: input checked before any output is created; an output's error names the output ----
outs=(--events ev.json --out plain --keylog-out k.log --out-pcap p.pcap)
: >empty.pcap
run 2 "$msp" ets decrypt --key x25519.pem --pcap empty.pcap "${outs[@]}"
same "$(cat "$tmp/err")" "msp ets decrypt: error: capture empty.pcap: the file is empty"
nothing_made ev.json plain k.log p.pcap
echo "not a capture at all, but long enough to have a header" >junk.pcap
run 2 "$msp" ets decrypt --key x25519.pem --pcap junk.pcap "${outs[@]}"
lines "$tmp/err" 1
nothing_made ev.json plain k.log p.pcap
run 2 "$msp" ets decrypt --key x25519.pem --pcap missing.pcap "${outs[@]}"
nothing_made ev.json plain k.log p.pcap
# keys are checked first too
run 2 "$msp" ets decrypt --key ca.pem --pcap cap.pcapng "${outs[@]}"
nothing_made ev.json plain k.log p.pcap
# an output that cannot be created: named, and the outputs made before it are taken back
run 2 "$msp" ets decrypt --key x25519.pem --pcap cap.pcapng --events ev.json --out plain --out-pcap nodir/p.pcap
same "$(cat "$tmp/err")" "msp ets decrypt: cannot create output nodir/p.pcap: No such file or directory"
nothing_made ev.json plain
run 2 "$msp" ets decrypt --key x25519.pem --pcap cap.pcapng --events nodir/ev.json
same "$(cat "$tmp/err")" "msp ets decrypt: cannot create output nodir/ev.json: No such file or directory"
: >afile
run 2 "$msp" ets decrypt --key x25519.pem --pcap cap.pcapng --events ev.json --out afile/plain
same "$(cat "$tmp/err")" "msp ets decrypt: cannot create output afile/plain: Not a directory"
nothing_made ev.json
# an events file that was there is not removed (only emptied: it was opened for writing)
echo old >ev.json
run 2 "$msp" ets decrypt --key x25519.pem --pcap cap.pcapng --events ev.json --out-pcap nodir/p.pcap
if [ -e ev.json ]; then ok; else bad "an existing events file was removed"; fi
rm -f ev.json
# --out makes the folders it needs
run 0 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --events ev.json --out deep/er/plain
if [ "$(ls deep/er/plain | wc -l)" -eq 8 ]; then ok; else bad "--out deep/er/plain: $(ls -R deep)"; fi

# ---- streams: --out-pcap - and a FIFO ----
run 2 "$msp" ets decrypt --key x25519.pem --pcap cap.pcapng --out-pcap -
lines "$tmp/err" 1
has "$tmp/err" "--events FILE"
if [ ! -s "$tmp/out" ]; then ok; else bad "--out-pcap - without --events wrote to stdout"; fi
run 2 "$msp" ets decrypt --key x25519.pem --pcap cap.pcapng --out-pcap - --events -
# nor onto a terminal
script -qec "'$msp' ets decrypt --key x25519.pem --pcap cap.pcapng --out-pcap - --events tty.json" /dev/null \
    </dev/null >ttyp.out 2>&1
same "$?:$(tr -d '\r' <ttyp.out)" "2:msp ets decrypt: error: --out-pcap -: standard output is a terminal (pipe it into a reader: | tshark -r -)"
# standard output to a reader: tshark dissects the plaintext HTTP as it comes
"$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --events st.json --out-pcap - 2>st.err |
    tshark -r - -Y http.request -T fields -e http.request.uri >st.uris 2>/dev/null
same "$(sort st.uris | tr '\n' ' ')" "/big.bin /big.bin /big.bin /small.txt "
# A reader already gone (the read end of the pipe closed): one line naming the stream, status 1, no death by
# SIGPIPE (the child gets the default SIGPIPE disposition from python).
# closed_stdout OUT ARGS...: msp ARGS with a standard output nobody reads; OUT gets the status, then stderr
closed_stdout() {
    python3 - "$msp" "${@:2}" <<'EOF' >"$1" 2>&1
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE)
print(p.returncode)
sys.stdout.write(p.stderr.decode())
EOF
}
closed_stdout epipe.out ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --events epipe.json --out-pcap -
lines epipe.out 3 # the status, the summary of what was read, why the run ended
same "$(sed -n '1p;3p' epipe.out)" "1
msp ets decrypt: the reader of standard output went away (Broken pipe)"
# the same for the events on standard output
closed_stdout epipe2.out ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng
same "$(sed -n '1p;3p' epipe2.out)" "1
msp ets decrypt: cannot write output standard output: Broken pipe"
# Live: msp captures on lo into a FIFO tshark reads; tshark sees a request while msp is still capturing.
mkfifo live.fifo
tshark -l -r live.fifo -Y http.request -T fields -e http.request.uri >live.uris 2>tshark.err &
tshark_pid=$!
pids+=($tshark_pid)
"$msp" ets decrypt --interface lo --filter "tcp port $www_port" --key x25519.pem --key p256.pem --events live.json \
    --out-pcap live.fifo 2>live.err &
live_pid=$!
pids+=($live_pid)
wait_until 10 grep -q "capturing on lo" live.err || bad "live decrypt did not start: $(cat live.err)"
get small.txt
if wait_until 10 grep -q /small.txt live.uris && kill -0 $live_pid 2>/dev/null; then ok; else
    bad "tshark did not see the request while msp was capturing: $(cat live.uris tshark.err live.err)"
fi
kill -INT $live_pid
wait $live_pid
same $? 0
wait $tshark_pid
has live.json '"flows":1,"decrypted":1'
has live.err "msp ets decrypt: 1 flow, 1 decrypted, 0 undecryptable"
if [ -p live.fifo ]; then ok; else bad "the FIFO was replaced"; fi

# ---- --rotate ----
for spec in 100 100m 1k 0s -5s 1.5G 10x; do
    run 2 "$msp" ets decrypt --key x25519.pem --pcap cap.pcapng --events r.json --out-pcap r.pcap --rotate "$spec"
done
run 2 "$msp" ets decrypt --key x25519.pem --pcap cap.pcapng --events r.json --rotate 100k
run 2 "$msp" ets decrypt --key x25519.pem --pcap cap.pcapng --events r.json --out-pcap - --rotate 100k
run 2 "$msp" ets decrypt --key x25519.pem --pcap cap.pcapng --events r.json --out-pcap live.fifo --rotate 10s
nothing_made r.json r.pcap r.pcap.0
# check_pieces NAME BYTES: NAME.0, NAME.1, ... are each a capture tshark reads on its own, at most BYTES each when
# BYTES > 0, no segment in them follows one not captured (every flow still open begins again with a handshake),
# and together they hold the plaintext of the unrotated capture
check_pieces() {
    local f n=0 total=0 lost
    for f in "$1".*; do
        n=$((n + 1))
        [ "$2" -eq 0 ] || [ "$(stat -c %s "$f")" -le "$2" ] || bad "$f is $(stat -c %s "$f") bytes"
        # one tshark per piece: each packet's payload length and whether it follows a segment not captured
        tshark -r "$f" -T fields -e tcp.len -e tcp.analysis.lost_segment >piece.txt 2>/dev/null || bad "tshark -r $f"
        lost=$(awk '$2 != "" {n++} END {print n + 0}' piece.txt)
        [ "$lost" -eq 0 ] || bad "$f: $lost segments after a gap"
        total=$((total + $(awk '{s += $1} END {print s + 0}' piece.txt)))
    done
    [ "$n" -ge 2 ] && ok || bad "$1: $n pieces"
    same "$total" "$(tshark -r whole.pcap -T fields -e tcp.len | awk '{s += $1} END {print s + 0}')"
    [ ! -e "$1" ] && ok || bad "$1 itself was written"
}
run 0 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --events r.json --out-pcap whole.pcap
run 0 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --events r.json --out-pcap size.pcap \
    --rotate 100k
check_pieces size.pcap 100000
if [ "$(ls size.pcap.* | wc -l)" -ge 5 ]; then ok; else bad "450 kB in 100 kB pieces: $(ls size.pcap.*)"; fi
# by capture time: the capture has 1.5 s without traffic, so 1 s pieces are at least two
run 0 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --events r.json --out-pcap time.pcap \
    --rotate 1s
check_pieces time.pcap 0
# HTTP across pieces: tshark, given every piece, dissects all four requests
same "$(for f in size.pcap.*; do tshark -r "$f" -Y http.request -T fields -e http.request.uri; done | sort | tr '\n' ' ')" \
    "/big.bin /big.bin /big.bin /small.txt "

finish ets_cli_ops
