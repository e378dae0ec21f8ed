#!/usr/bin/env bash
# ETS visibility information that does not tell the truth, seen by both ETS-aware parties on loopback: the
# client (`msp ets probe`, Annex B policy --require-visibility) and the middlebox (`msp ets decrypt`,
# "visibility_matches"). Three stock `openssl s_server`s, made ETS by openssl.cnf and the msp-ets provider,
# all with the same static keys, differ only in their certificate:
#   (a) lie:   visibility information naming ANOTHER static key (msp ets cert --static other.pem);
#   (b) none:  no visibility information at all (an Annex A server, or an undisclosed reused key);
#   (c) truth: visibility information naming the X25519 key the server actually uses (control);
# and, for the probe's other refusal, (d) a server without ETS (fresh shares) showing certificate (a).
# The probe must refuse (a), (b) and (d) under --require-visibility and accept (c); the decryptor must decrypt all
# of them (it holds the right keys) and say visibility_matches false for (a) and (b) (no entry at all: an
# empty list, false), true for (c). The connections are captured with dumpcap.
# A missing tool is a failure, not a skip.
# Usage: ets_visibility.sh MSP SOURCE_DIR PROVIDER_MODULE
set -uo pipefail
msp=$1
module=$3
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
cd "$tmp" || exit 1
has() { if grep -qF -- "$2" "$1"; then ok; else bad "$1 lacks '$2': $(head -c 600 "$1")"; fi; }
lacks() { if ! grep -qF -- "$2" "$1"; then ok; else bad "$1 has '$2': $(grep -F -- "$2" "$1" | head -c 600)"; fi; }

for tool in openssl dumpcap; do
    command -v "$tool" >/dev/null 2>&1 || bad "$tool is not installed: this test needs it"
done
[ -x "$msp" ] || bad "msp '$msp' is not an executable"
[ -f "$module" ] || bad "provider module '$module' does not exist"
if [ "$failed" -ne 0 ]; then
    finish ets_visibility
    exit 1
fi

# ---- keys and the three certificates ----
# fp KEYGEN_OUTPUT: the fingerprint msp ets keygen printed
fp() { sed -n 's/.*, fingerprint \([0-9a-f]\{20\}\), key_share .*/\1/p' "$1"; }
run 0 "$msp" ets keygen --group x25519 --out x25519.pem
cp "$tmp/out" x25519.txt
run 0 "$msp" ets keygen --group p256 --out p256.pem
run 0 "$msp" ets keygen --group x25519 --out other.pem
cp "$tmp/out" other.txt
fp_used=$(fp x25519.txt)
fp_other=$(fp other.txt)
if [ ${#fp_used} -eq 20 ] && [ ${#fp_other} -eq 20 ] && [ "$fp_used" != "$fp_other" ]; then ok; else
    bad "fingerprints not read: '$fp_used' '$fp_other'"
fi
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out cert.key >/dev/null 2>&1 || bad "genpkey"
cert() {
    run 0 "$msp" ets cert --key cert.key --subject /CN=ets.test --dns ets.test --self-signed --days 2 "$@"
}
cert --static other.pem --access "lie: names a key the server does not use" --out a.pem
openssl req -x509 -key cert.key -subj /CN=ets.test -addext subjectAltName=DNS:ets.test -days 2 -out b.pem \
    >/dev/null 2>&1 || bad "openssl req b.pem"
cert --static x25519.pem --access "truth: the X25519 key the server uses" --out c.pem
# what each certificate carries, read back
run 0 "$msp" ets show a.pem
has "$tmp/out" "$fp_other"
lacks "$tmp/out" "$fp_used"
run 1 "$msp" ets show b.pem # no visibility information
run 0 "$msp" ets show c.pem
has "$tmp/out" "$fp_used"

ets_conf ets.cnf "$tmp/x25519.pem" "$tmp/p256.pem"

mkfifo stdin.fifo
exec 3<>stdin.fifo

# start_server NAME CERT [CONF]: stock openssl s_server with our openssl.cnf (or CONF) on a free loopback port;
# sets $port
start_server() {
    local name=$1 cert=$2 conf=${3:-$tmp/ets.cnf}
    for _ in 1 2 3 4 5 6 7 8; do
        port=$(port_candidate)
        # stdin stays open (s_server would end on EOF): a FIFO this script holds
        OPENSSL_CONF=$conf openssl s_server -accept "127.0.0.1:$port" -tls1_3 -groups X25519:P-256 \
            -cert "$cert" -key cert.key -www >"$name.log" 2>&1 <stdin.fifo &
        pids+=("$!")
        for _ in $(seq 50); do
            grep -q ACCEPT "$name.log" 2>/dev/null && return 0
            grep -qi error "$name.log" 2>/dev/null && break
            sleep 0.1
        done
    done
    bad "s_server $name did not start: $(head -c 300 "$name.log")"
    return 1
}
start_server a a.pem || { finish ets_visibility; exit 1; }
port_a=$port
start_server b b.pem || { finish ets_visibility; exit 1; }
port_b=$port
start_server c c.pem || { finish ets_visibility; exit 1; }
port_c=$port
# (d) no ETS at all (OpenSSL's default configuration: a fresh key share every time), with certificate (a)
: >plain.cnf
start_server d a.pem "$tmp/plain.cnf" || { finish ets_visibility; exit 1; }
port_d=$port

# The capture: dumpcap on loopback, the ports of (a), (b) and (c); it says when it is capturing.
dumpcap -q -i lo -f "tcp port $port_a or tcp port $port_b or tcp port $port_c" -w cap.pcapng >dumpcap.log 2>&1 &
cap_pid=$!
pids+=("$cap_pid")
for _ in $(seq 100); do
    grep -q "Capturing on" dumpcap.log 2>/dev/null && break
    sleep 0.1
done
grep -q "Capturing on" dumpcap.log || bad "dumpcap did not start: $(cat dumpcap.log)"

# ---- the client's view: msp ets probe (2 full handshakes each, captured too) ----
# (a) static share, visibility information naming another key: refused, and each line says why
run 1 "$msp" ets probe "127.0.0.1:$port_a" --servername ets.test --require-visibility
has "$tmp/out" "key share: repeated (static)"
has "$tmp/out" "visibility 1: fingerprint $fp_other (another key: not the key share sent)"
has "$tmp/out" "key share fingerprint $fp_used"
has "$tmp/out" "verdict: ETS server: static key share, but the visibility information does not match it"
has "$tmp/err" "refused by policy: ETS server: static key share, but the visibility information does not match it"
run 1 "$msp" ets probe "127.0.0.1:$port_a" --servername ets.test --require-visibility --format json
has "$tmp/out" "{\"fingerprint\":\"$fp_other\",\"access\":\"lie: names a key the server does not use\",\"matches_key_share\":false}"
lacks "$tmp/out" '"matches_key_share":true'
has "$tmp/out" '"static_key_share":true'
has "$tmp/out" '"verdict":"ETS server: static key share, but the visibility information does not match it"'
run 0 "$msp" ets probe "127.0.0.1:$port_a" --servername ets.test # reported, but without the policy not refused

# (b) static share, no visibility information: refused
run 1 "$msp" ets probe "127.0.0.1:$port_b" --servername ets.test --require-visibility
has "$tmp/out" "key share: repeated (static)"
has "$tmp/out" "key share fingerprint $fp_used"
lacks "$tmp/out" "visibility 1:"
has "$tmp/out" "verdict: static key share without visibility information (ETS Annex A, or an undisclosed reused key)"
has "$tmp/err" "refused by policy: static key share without visibility information"
run 1 "$msp" ets probe "127.0.0.1:$port_b" --servername ets.test --require-visibility --format json
has "$tmp/out" '"visibility":[]'
has "$tmp/out" '"static_key_share":true'

# (c) control: static share disclosed by accurate visibility information: accepted
run 0 "$msp" ets probe "127.0.0.1:$port_c" --servername ets.test --require-visibility
has "$tmp/out" "visibility 1: fingerprint $fp_used (matches the key share sent)"
has "$tmp/out" "verdict: ETS server: static key share, disclosed by accurate visibility information"
run 0 "$msp" ets probe "127.0.0.1:$port_c" --servername ets.test --require-visibility --format json
has "$tmp/out" "{\"fingerprint\":\"$fp_used\",\"access\":\"truth: the X25519 key the server uses\",\"matches_key_share\":true}"
has "$tmp/out" '"static_key_share":true'

# (d) fresh key shares, visibility information that names a key not sent: refused as well
run 1 "$msp" ets probe "127.0.0.1:$port_d" --servername ets.test --require-visibility
has "$tmp/out" "key share: fresh on every connection"
has "$tmp/out" "verdict: visibility information that does not match the key share sent"
run 0 "$msp" ets probe "127.0.0.1:$port_d" --servername ets.test

# ---- and a stock client with a request, once per server ----
for s in a b c; do
    var=port_$s && p=${!var}
    printf 'GET /%s HTTP/1.0\r\n\r\n' "$s" >req_$s.txt
    (cat req_$s.txt; sleep 0.3) | timeout 10 openssl s_client -connect "127.0.0.1:$p" -servername ets.test \
        -ign_eof >client_$s.out 2>client_$s.err
    has client_$s.out "HTTP/1.0 200 ok"
done
sleep 0.5
kill -INT $cap_pid
wait $cap_pid 2>/dev/null
[ -s cap.pcapng ] && ok || bad "no capture: $(cat dumpcap.log)"

# ---- the middlebox's view: msp ets decrypt, each server's connections apart ----
# check_decrypt NAME PORT CONNECTIONS VISIBILITY MATCHES: every connection to that server (2 per probe run, 1 of
# s_client) decrypted with the static keys, each handshake with the key share of x25519.pem, that visibility list
# and that visibility_matches
check_decrypt() {
    local name=$1 p=$2 n=$3 vis=$4 matches=$5
    run 0 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --filter "tcp port $p" \
        --events "$name.json" --out "plain_$name"
    has "$name.json" "\"flows\":$n,\"decrypted\":$n,\"undecryptable\":0"
    local n_hs n_want
    n_hs=$(grep -c '"event":"handshake"' "$name.json")
    n_want=$(grep '"event":"handshake"' "$name.json" | grep -cF -- "\"fingerprint\":\"$fp_used\",\"visibility\":$vis,\"visibility_matches\":$matches}")
    if [ "$n_hs" -eq "$n" ] && [ "$n_want" -eq "$n" ]; then ok; else
        bad "$name: $n_want of $n_hs handshakes (want $n) with visibility $vis, visibility_matches $matches: $(grep '"event":"handshake"' "$name.json" | head -c 900)"
    fi
    if grep -qF "GET /$name HTTP/1.0" plain_$name/*.c2s 2>/dev/null; then ok; else bad "$name: the request is not in the plaintext"; fi
}
check_decrypt a "$port_a" 7 "[{\"fingerprint\":\"$fp_other\",\"access\":\"lie: names a key the server does not use\",\"matches\":false}]" false
lacks a.json '"visibility_matches":true'
check_decrypt b "$port_b" 5 "[]" false
lacks b.json '"visibility_matches":true'
check_decrypt c "$port_c" 5 "[{\"fingerprint\":\"$fp_used\",\"access\":\"truth: the X25519 key the server uses\",\"matches\":true}]" true
lacks c.json '"visibility_matches":false'

finish ets_visibility
