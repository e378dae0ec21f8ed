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
# Then the limits: (e) and (f) carry the most visibility information a certificate may (16 entries, MSP_ETS_MAX_VI),
# the 16th naming the key used in (e) only; e.pem and f.pem are of the same length and differ. The probe must read
# and judge the 16 entries of (e), no more. One decrypt run over the whole capture, servers interleaved, must give
# every handshake the visibility of its own server's certificate (the decryptor parses a certificate once, while
# the next connection shows the same one). Last, a probe whose two connections end with key shares of different
# groups ((c) X25519, then (g), the same certificate but P-256 only, behind a proxy alternating between them) must
# say the shares are not comparable.
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

for tool in openssl dumpcap python3; do
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
cp "$tmp/out" p256.txt
run 0 "$msp" ets keygen --group x25519 --out other.pem
cp "$tmp/out" other.txt
fp_used=$(fp x25519.txt)
fp_other=$(fp other.txt)
fp_p256=$(fp p256.txt)
if [ ${#fp_used} -eq 20 ] && [ ${#fp_other} -eq 20 ] && [ ${#fp_p256} -eq 20 ] && [ "$fp_used" != "$fp_other" ]; then
    ok
else
    bad "fingerprints not read: '$fp_used' '$fp_other' '$fp_p256'"
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
# (e) and (f): 16 entries (msp ets cert takes --static 16 times at most), 15 naming the other key; the 16th names
# the key used (e) or the other key (f). An Ed25519 certificate key signs with a fixed length, so the two are of
# the same length; a serial number with a leading zero byte would make one shorter: then it is made again.
openssl genpkey -algorithm ED25519 -out ed.key >/dev/null 2>&1 || bad "genpkey ed25519"
others=()
for _ in $(seq 15); do others+=(--static other.pem); done
run 2 "$msp" ets cert --key ed.key --subject /CN=ets.test --self-signed "${others[@]}" --static other.pem \
    --static x25519.pem --access "one too many" --out 17.pem
has "$tmp/err" "repeated too often: '--static'"
der_len() { openssl x509 -in "$1" -outform DER 2>/dev/null | wc -c; }
cert16() {
    "$msp" ets cert --key ed.key --subject /CN=ets.test --dns ets.test --self-signed --days 2 "${others[@]}" "$@"
}
for _ in 1 2 3 4 5 6 7 8; do
    rm -f e.pem f.pem
    cert16 --static x25519.pem --access "e: sixteen entries" --out e.pem >/dev/null 2>&1
    cert16 --static other.pem --access "f: sixteen entries" --out f.pem >/dev/null 2>&1
    [ -s e.pem ] && [ -s f.pem ] && [ "$(der_len e.pem)" -eq "$(der_len f.pem)" ] && break
done
if [ -s e.pem ] && [ "$(der_len e.pem)" -eq "$(der_len f.pem)" ] && ! cmp -s e.pem f.pem; then ok; else
    bad "e.pem and f.pem: not two different certificates of one length ($(der_len e.pem), $(der_len f.pem))"
fi
run 0 "$msp" ets show e.pem
has "$tmp/out" "visibility 15: fingerprint $fp_other"
has "$tmp/out" "visibility 16: fingerprint $fp_used"
run 0 "$msp" ets show f.pem
has "$tmp/out" "visibility 16: fingerprint $fp_other"
lacks "$tmp/out" "$fp_used"

ets_conf ets.cnf "$tmp/x25519.pem" "$tmp/p256.pem"

# start_server NAME CERT [CONF [KEY [GROUPS]]]: stock openssl s_server (lib.sh) with our openssl.cnf (or CONF),
# cert.key (or KEY) and the groups X25519:P-256 (or GROUPS); sets $port
start_server() {
    local name=$1 cert=$2 conf=${3:-$tmp/ets.cnf} key=${4:-cert.key} groups=${5:-X25519:P-256}
    s_server "$name.log" "$conf" "$groups" -cert "$cert" -key "$key" -www
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
start_server e e.pem "" ed.key || { finish ets_visibility; exit 1; }
port_e=$port
start_server f f.pem "" ed.key || { finish ets_visibility; exit 1; }
port_f=$port
# (g) certificate (c), P-256 only: a client offering an X25519 share first gets a HelloRetryRequest
start_server g c.pem "" cert.key P-256 || { finish ets_visibility; exit 1; }
port_g=$port

# capture FILE FILTER: dumpcap on loopback into FILE, started when it says it is capturing; sets $cap_pid
capture() {
    dumpcap -q -i lo -f "$2" -w "$1" >"$1.log" 2>&1 &
    cap_pid=$!
    pids+=("$cap_pid")
    for _ in $(seq 100); do
        grep -q "Capturing on" "$1.log" 2>/dev/null && break
        sleep 0.1
    done
    grep -q "Capturing on" "$1.log" || bad "dumpcap did not start: $(cat "$1.log")"
}
# ---- the client's view: msp ets probe (2 full handshakes each, not captured: see below) ----
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

# (e) 16 entries, the 16th naming the key used: all 16 read and judged, nothing past them
run 0 "$msp" ets probe "127.0.0.1:$port_e" --servername ets.test --require-visibility
has "$tmp/out" "visibility 1: fingerprint $fp_other (another key: not the key share sent)"
has "$tmp/out" "visibility 15: fingerprint $fp_other (another key: not the key share sent)"
has "$tmp/out" "visibility 16: fingerprint $fp_used (matches the key share sent)"
lacks "$tmp/out" "visibility 17:"
has "$tmp/out" "verdict: ETS server: static key share, disclosed by accurate visibility information"
if [ "$(grep -c ': visibility [0-9]*: fingerprint ' "$tmp/out")" -eq 16 ]; then ok; else
    bad "(e): not 16 entries: $(head -c 600 "$tmp/out")"
fi

# ---- and a stock client with a request, twice per server, captured ----
# The probe's connections are not captured: the probe closes without reading the server's last NewSessionTicket, the
# kernel answers it with a reset, and a server packet that arrives after the reset starts a flow of its own in the
# decryptor ("encrypted record 0 before the ClientHello"; issue 13 fixes that), which made the flow counts flaky.
capture cap.pcapng "tcp port $port_a or tcp port $port_b or tcp port $port_c"
for s in a b c; do
    var=port_$s && p=${!var}
    printf 'GET /%s HTTP/1.0\r\n\r\n' "$s" >req_$s.txt
    for _ in 1 2; do
        (cat req_$s.txt; sleep 0.3) | timeout 10 openssl s_client -connect "127.0.0.1:$p" -servername ets.test \
            -ign_eof >client_$s.out 2>client_$s.err
        has client_$s.out "HTTP/1.0 200 ok"
    done
done
sleep 0.5
kill -INT $cap_pid
wait $cap_pid 2>/dev/null
[ -s cap.pcapng ] && ok || bad "no capture: $(cat cap.pcapng.log)"

# ---- the middlebox's view: msp ets decrypt, each server's connections apart ----
# check_decrypt NAME PORT CONNECTIONS VISIBILITY MATCHES: every connection to that server (2 of s_client) decrypted with the static keys, each handshake with the key share of x25519.pem, that visibility list
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
check_decrypt a "$port_a" 2 "[{\"fingerprint\":\"$fp_other\",\"access\":\"lie: names a key the server does not use\",\"matches\":false}]" false
lacks a.json '"visibility_matches":true'
check_decrypt b "$port_b" 2 "[]" false
lacks b.json '"visibility_matches":true'
check_decrypt c "$port_c" 2 "[{\"fingerprint\":\"$fp_used\",\"access\":\"truth: the X25519 key the server uses\",\"matches\":true}]" true
lacks c.json '"visibility_matches":false'

# ---- one decrypt run over servers interleaved: each handshake with the visibility of its own certificate ----
# The decryptor parses a certificate once while the next connection shows the same one. A second capture, of one
# stock client connection at a time in this order: a certificate after a shorter one (b c, c e, a e, b e) and
# after a longer one (e b, f a), after itself (b b, f f), and (e f, f e) after one of the same length that differs.
order_want=acabbceffefaebc
capture cap2.pcapng "tcp port $port_a or tcp port $port_b or tcp port $port_c or tcp port $port_e or tcp port $port_f"
for ((i = 0; i < ${#order_want}; i++)); do
    s=${order_want:i:1} && var=port_${order_want:i:1} && p=${!var}
    printf 'GET /%s%d HTTP/1.0\r\n\r\n' "$s" "$i" | timeout 10 openssl s_client -connect "127.0.0.1:$p" \
        -servername ets.test -ign_eof -quiet >client2_$i.out 2>client2_$i.err
    has client2_$i.out "HTTP/1.0 200 ok"
done
sleep 0.5
kill -INT $cap_pid
wait $cap_pid 2>/dev/null
run 0 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cap2.pcapng --events all.json
n_all=${#order_want}
has all.json "\"flows\":$n_all,\"decrypted\":$n_all,\"undecryptable\":0"
declare -A server_of vis_of matches_of flow_server
for s in a b c e f; do var=port_$s && server_of[${!var}]=$s; done
vis_of[a]="[{\"fingerprint\":\"$fp_other\",\"access\":\"lie: names a key the server does not use\",\"matches\":false}]"
vis_of[b]="[]"
vis_of[c]="[{\"fingerprint\":\"$fp_used\",\"access\":\"truth: the X25519 key the server uses\",\"matches\":true}]"
# vis16 LETTER FINGERPRINT MATCHES: the list of (e) or (f), 15 entries of the other key and that 16th
vis16() {
    local v="[" k
    for k in $(seq 15); do
        v+="{\"fingerprint\":\"$fp_other\",\"access\":\"$1: sixteen entries\",\"matches\":false},"
    done
    echo "$v{\"fingerprint\":\"$2\",\"access\":\"$1: sixteen entries\",\"matches\":$3}]"
}
vis_of[e]=$(vis16 e "$fp_used" true)
vis_of[f]=$(vis16 f "$fp_other" false)
matches_of=([a]=false [b]=false [c]=true [e]=true [f]=false)
order="" n_right=0
while IFS= read -r line; do
    id=${line#*\"flow\":} && id=${id%%[,\}]*}
    case $line in
    '{"event":"flow",'*)
        p=${line#*\"server\":\"127.0.0.1:} && p=${p%%\"*}
        flow_server[$id]=${server_of[$p]:-unknown}
        ;;
    '{"event":"handshake",'*)
        s=${flow_server[$id]:-unknown}
        order+=$s
        want="\"fingerprint\":\"$fp_used\",\"visibility\":${vis_of[$s]:-},\"visibility_matches\":${matches_of[$s]:-}}"
        if [[ $line == *"$want" ]]; then n_right=$((n_right + 1)); else
            bad "all.json: flow $id to ($s): want the end ...$(tail -c 300 <<<"$want")," \
                "got ...$(tail -c 300 <<<"$line")"
        fi
        ;;
    esac
done <all.json
if [ "$order" = "$order_want" ]; then ok; else bad "all.json: handshakes in the order $order, not $order_want"; fi
if [ "$n_right" -eq "$n_all" ]; then ok; else bad "all.json: $n_right of $n_all handshakes right"; fi

# ---- key shares of different groups: the probe's first connection to (c) (X25519), the second to (g) (P-256,
# after a HelloRetryRequest), through a proxy that alternates; not comparable, so not fresh nor repeated ----
cat >alternate.py <<'PY'
import socket, sys, threading
backends = [int(p) for p in sys.argv[2:]]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    ls.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(3)
ls.listen(4)
print("LISTENING", flush=True)
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
n = 0
while True:
    c, _ = ls.accept()
    s = socket.create_connection(("127.0.0.1", backends[n % len(backends)]))
    n += 1
    for a, b in ((c, s), (s, c)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
PY
for _ in 1 2 3 4 5 6 7 8; do
    port_x=$(port_candidate)
    python3 alternate.py "$port_x" "$port_c" "$port_g" >alternate.log 2>&1 &
    pids+=("$!")
    for _ in $(seq 50); do
        grep -q LISTENING alternate.log && break
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    grep -q LISTENING alternate.log && break
done
grep -q LISTENING alternate.log || bad "the proxy did not start: $(head -c 300 alternate.log)"
run 0 "$msp" ets probe "127.0.0.1:$port_x" --servername ets.test --require-visibility
for want in "connection 1: [A-Z0-9_]*, group x25519, key share fingerprint $fp_used" \
    "connection 2: [A-Z0-9_]*, group secp256r1 \(after HelloRetryRequest\), key share fingerprint $fp_p256"; do
    if grep -qE -- "$want" "$tmp/out"; then ok; else bad "proxy: no line '$want': $(head -c 600 "$tmp/out")"; fi
done
has "$tmp/out" "visibility 1: fingerprint $fp_used (matches the key share sent)"
has "$tmp/out" "key share: not comparable"
has "$tmp/out" "verdict: visibility information matching the key share, which did not repeat (key rotated"
run 0 "$msp" ets probe "127.0.0.1:$port_x" --servername ets.test --require-visibility --format json
has "$tmp/out" '"static_key_share":false,"comparable":false,'

# ---- (h) a visibility information entry that is malformed (a 9-byte fingerprint, from openssl req): the probe
# refuses to judge (exit 1, one error line), the decryptor decrypts and says so on the handshake line
# (visibility_error), where it used to print "visibility":[] exactly as for no entry at all ----
printf '%s\n' '[req]' 'distinguished_name = dn' 'x509_extensions = ext' 'prompt = no' '[dn]' 'CN = ets.test' '[ext]' \
    'subjectAltName = @san' '[san]' 'DNS.1 = ets.test' 'otherName.1 = 0.4.0.3523.3.1;SEQUENCE:short' '[short]' \
    'fingerprint = FORMAT:HEX,OCTETSTRING:65be2a27489585a805' 'access = UTF8:x' >h.cnf
openssl req -x509 -key cert.key -days 2 -config h.cnf -out h.pem >/dev/null 2>&1 || bad "openssl req h.pem"
run 2 "$msp" ets show h.pem
start_server h h.pem || { finish ets_visibility; exit 1; }
port_h=$port
run 1 "$msp" ets probe "127.0.0.1:$port_h" --servername ets.test
has "$tmp/err" "error: the certificate carries a malformed visibility information entry"
capture cap3.pcapng "tcp port $port_h"
printf 'GET /h HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$port_h" -servername ets.test \
    -ign_eof -quiet >client_h.out 2>client_h.err
has client_h.out "HTTP/1.0 200 ok"
sleep 0.5
kill -INT $cap_pid
wait $cap_pid 2>/dev/null
run 0 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cap3.pcapng --events h.json
has h.json "\"fingerprint\":\"$fp_used\",\"visibility\":[],\"visibility_matches\":false,\"visibility_error\":\"the certificate carries a malformed visibility information entry\"}"
has h.json '"flows":1,"decrypted":1,"undecryptable":0'
lacks all.json '"visibility_error"'
# every line, visibility lists and errors included, is valid against docs/ets-events.schema.json
if python3 "$(dirname "$0")/ets_events_check.py" "$2/docs/ets-events.schema.json" --require handshake,flow_end \
    all.json [a-h].json >schema.out 2>&1; then ok; else bad "events against the schema: $(head -c 1500 schema.out)"; fi

finish ets_visibility
