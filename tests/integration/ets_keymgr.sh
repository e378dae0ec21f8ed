#!/usr/bin/env bash
# msp ets keymgr serve/fetch over mutual TLS on loopback (ets.md 3.4 ETS-KP-1, ETS-KT-1..4, 3.5): keys by groups
# and by fingerprints, fingerprints checked against `openssl pkey`, refused clients (another CA, no certificate: the
# TLS alert itself; a subject outside --allow-subject: 403), 405 for other methods (manager and push consumer),
# rotation keeping old keys findable, expiry (no current key: 404) and retention (found by fingerprint until expiry +
# --retention, then 404 and the file gone), an issued certificate whose visibility information names the returned
# keys, and push.
# Usage: ets_keymgr.sh MSP SOURCE_DIR PROVIDER_MODULE
set -uo pipefail
msp=$1
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
for t in openssl curl; do
    command -v "$t" >/dev/null || { bad "$t is not installed (scripts/deps.sh)"; finish ets_keymgr; exit; }
done

# ca NAME: a P-256 CA; leaf NAME CA CN [SAN]: a certificate issued by CA
ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/$1.key" -out "$tmp/$1.pem" \
        -days 2 -subj "/CN=$1" >/dev/null 2>&1 || bad "openssl req for CA $1"
}
leaf() {
    local ext="$tmp/$1.ext"
    printf 'basicConstraints=CA:FALSE\n' >"$ext"
    [ -n "${4:-}" ] && printf 'subjectAltName=%s\n' "$4" >>"$ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/$1.key" -out "$tmp/$1.csr" \
        -subj "/CN=$3" >/dev/null 2>&1 &&
        openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$2.pem" -CAkey "$tmp/$2.key" -CAcreateserial -days 2 \
            -extfile "$ext" -out "$tmp/$1.pem" >/dev/null 2>&1 || bad "certificate $1"
}
ca ca
ca other
leaf server ca keymgr.test "IP:127.0.0.1,DNS:localhost"
leaf client ca middlebox-1
leaf stranger other intruder
leaf mbox ca mbox-1

# a loopback port nothing listens on (bash alone: no python on a fresh machine)
port() {
    local p
    while :; do
        p=$(port_candidate)
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || break
    done
    echo "$p"
}
# wait_listen PORT: retry with backoff until something accepts on the port
wait_listen() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# fingerprint of a PEM private key: SHA-256 of the key_share bytes (ETS-VI-3), first 10 bytes; the DER public key
# (SubjectPublicKeyInfo) ends with them: 32 raw bytes for X25519, the 65-byte point for P-256
fp_of() {
    local n=32
    [ "$2" = p256 ] && n=65
    openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | tail -c $n | sha256sum | cut -c1-20
}

client=(--cert "$tmp/client.pem" --key "$tmp/client.key" --ca "$tmp/ca.pem")
as_client=(--cert "$tmp/client.pem" --key "$tmp/client.key")
as_mbox=(--cert "$tmp/mbox.pem" --key "$tmp/mbox.key")
keys=/.well-known/enterprise-transport-security/keys

# expect_http STATUS BODY CURL_ARGS...: curl, verifying the server against ca.pem, must get this HTTP status and,
# unless BODY is empty, this one-line body (kept in $tmp/body)
expect_http() {
    local want=$1 text=$2 got
    shift 2
    got=$(curl -sS --max-time 5 --cacert "$tmp/ca.pem" -o "$tmp/body" -w '%{http_code}' "$@" 2>"$tmp/curl.err")
    if [ "$got" = "$want" ] && { [ -z "$text" ] || [ "$(cat "$tmp/body")" = "$text" ]; }; then ok; else
        bad "curl $*: $got '$(head -c 200 "$tmp/body" | tr -c '[:print:]' .)', expected $want '$text';" \
            "$(cat "$tmp/curl.err")"
    fi
}
# wait_until SECONDS CMD...: CMD every 0.1 s until it succeeds (status 0) or SECONDS have passed (status 1)
wait_until() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        "${@:2}" && return 0
        sleep 0.1
    done
    "${@:2}"
}
# more_than N CMD...: whether the number CMD prints is over N
more_than() { [ "$("${@:2}")" -gt "$1" ]; }
# store_sums DIR: names and SHA-256 of the files in DIR (a store or an output directory), to compare
store_sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum); }
P=$(port)
mkdir -p "$tmp/store" "$tmp/k1" "$tmp/k2" "$tmp/k3" "$tmp/pushed"
"$msp" ets keymgr serve --listen "127.0.0.1:$P" --cert "$tmp/server.pem" --key "$tmp/server.key" --ca "$tmp/ca.pem" \
    --store "$tmp/store" --rotate 3 --lifetime 60 --ca-cert "$tmp/ca.pem" --ca-key "$tmp/ca.key" \
    --access "IDS of example.test" 2>"$tmp/serve.log" &
pids+=($!)
if wait_listen "$P"; then ok; else bad "keymgr serve does not listen: $(cat "$tmp/serve.log")"; fi
url="https://127.0.0.1:$P"

# pull by groups: one key per group, files whose public keys have the printed fingerprints
run 0 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --groups x25519,p256 --out-dir "$tmp/k1"
cp "$tmp/out" "$tmp/first"
if [ "$(wc -l <"$tmp/first")" -eq 2 ]; then ok; else bad "two keys expected: $(cat "$tmp/first")"; fi
while read -r group fp _; do
    f="$tmp/k1/$group-$fp.pem"
    if [ -f "$f" ] && [ "$(fp_of "$f" "$group")" = "$fp" ]; then ok; else bad "$group $fp: file or fingerprint"; fi
    if cmp -s "$f" "$tmp/k1/$group.pem"; then ok; else bad "$group.pem is not the newest key"; fi
    if grep -q "new key $group $fp" "$tmp/serve.log"; then ok; else bad "serve did not log $group $fp"; fi
done <"$tmp/first"
fps=$(cut -d' ' -f2 "$tmp/first" | paste -sd,)

# pull by those fingerprints: the same keys
run 0 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --fingerprints "$fps" --out-dir "$tmp/k2"
if [ "$(cut -d' ' -f1,2 "$tmp/out" | sort)" = "$(cut -d' ' -f1,2 "$tmp/first" | sort)" ]; then ok; else
    bad "fingerprint fetch: $(cat "$tmp/out")"
fi
for f in "$tmp"/k2/*-*.pem; do
    if cmp -s "$f" "$tmp/k1/$(basename "$f")"; then ok; else bad "$(basename "$f") differs"; fi
done
# --out-dir that does not exist yet is made (with the folders above it), for the owner alone; a file in the way is
# an error naming it, status 2
run 0 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --fingerprints "$fps" --out-dir "$tmp/new/keys"
if [ "$(stat -c %a "$tmp/new/keys")" = 700 ] && [ "$(ls "$tmp"/new/keys/*-*.pem | wc -l)" -eq 2 ]; then ok; else
    bad "fetch into a new folder: $(ls -lR "$tmp/new")"
fi
: >"$tmp/in-the-way"
run 2 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --fingerprints "$fps" --out-dir "$tmp/in-the-way/keys"
if [ "$(cat "$tmp/err")" = "msp ets keymgr: fetch: error: cannot create output $tmp/in-the-way/keys: Not a directory" ]
then ok; else bad "fetch into a file: $(cat "$tmp/err")"; fi

# back-pressure: 64 idle connections (KM_MAX_CONNS) fill the manager, which stops accepting and says so; a client
# that comes then waits in the listen backlog and is served once the idle ones reach the 5 s time-out
python3 -c 'import socket, sys, time
s = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(64)]
time.sleep(15)' "$P" &
idle=$!
if wait_until 5 grep -q "64 connections open: not accepting until one ends" "$tmp/serve.log"; then ok; else
    bad "the manager did not pause at 64 connections: $(tail -3 "$tmp/serve.log")"
fi
got=$(curl -sS --max-time 20 --cacert "$tmp/ca.pem" "${as_client[@]}" -o /dev/null -w '%{http_code}' \
    "$url$keys?groups=0x001d" 2>"$tmp/curl.err")
if [ "$got" = 200 ]; then ok; else bad "a client behind 64 idle ones: $got $(cat "$tmp/curl.err")"; fi
kill "$idle" 2>/dev/null
wait "$idle" 2>/dev/null

# an unknown fingerprint: non-zero exit, one line
run 1 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --fingerprints 00112233445566778899 --out-dir "$tmp/k2"
if [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q 404 "$tmp/err"; then ok; else bad "unknown fingerprint: $(cat "$tmp/err")"; fi
run 1 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --fingerprints nothex --out-dir "$tmp/k2"
if grep -q 400 "$tmp/err"; then ok; else bad "malformed fingerprint: $(cat "$tmp/err")"; fi

# clients the manager must refuse: a certificate from another CA, and none at all
run 1 "$msp" ets keymgr fetch --url "$url" --cert "$tmp/stranger.pem" --key "$tmp/stranger.key" --ca "$tmp/ca.pem" \
    --groups x25519 --out-dir "$tmp/k3"
if [ -z "$(ls "$tmp/k3")" ]; then ok; else bad "a stranger got keys"; fi
# A client without a certificate: the server asks for one (CertificateRequest), gets none and ends the TLS 1.3
# handshake with the certificate_required alert, and there is no HTTP answer. The server closes the socket with the
# client's Finished and request unread, so its RST often overtakes the alert: curl then reports the reset (55, or 56
# "reset by peer") instead of the alert (56; 35 if it came during the handshake). Either way curl must have reached
# the TLS server and seen the CertificateRequest, the manager must log exactly this refusal, and the same curl with
# the client's certificate must get 200: a server that is down (7), a timeout (28) or anything else does not pass.
handshake_fails() { grep -c "TLS handshake failed: .*peer did not return a certificate" "$tmp/serve.log"; }
before=$(handshake_fails)
code=$(curl -sS -v --max-time 5 --cacert "$tmp/ca.pem" "$url$keys?groups=0x001d" -o "$tmp/curl.out" -w '%{http_code}' \
    2>"$tmp/curl.err")
rc=$?
why=$(grep '^curl: ' "$tmp/curl.err")
case "$rc:$why" in
35:* | 56:*"alert certificate required"* | 5[56]:*"reset by peer"* | 55:*"getpeername() failed"*) ok ;;
*) bad "a client without a certificate: curl exit $rc, not a refused handshake: $why" ;;
esac
if [ "$code" = 000 ] && [ ! -s "$tmp/curl.out" ] && grep -q "TLS handshake, Request CERT" "$tmp/curl.err"; then ok; else
    bad "a client without a certificate: HTTP '$code', or no CertificateRequest: $(grep -i 'tls\|http' "$tmp/curl.err")"
fi
if wait_until 5 more_than "$before" handshake_fails && [ "$(handshake_fails)" -eq $((before + 1)) ]; then ok; else
    bad "the refused handshake is not logged once: $(tail -3 "$tmp/serve.log")"
fi
expect_http 200 "" "${as_client[@]}" "$url$keys?groups=0x001d"
# ... and since the manager closes with FIN and drains what the client still sends, the alert is what curl sees every
# time (56 after its side of the handshake, 35 during it), never a reset
for try in 1 2 3 4 5; do
    curl -sS --max-time 5 --cacert "$tmp/ca.pem" "$url$keys?groups=0x001d" -o /dev/null 2>"$tmp/curl.err"
    rc=$?
    case "$rc:$(cat "$tmp/curl.err")" in
    35:* | 56:*"alert certificate required"*) ok ;;
    *) bad "refused handshake, try $try: curl exit $rc, not the alert: $(cat "$tmp/curl.err")" ;;
    esac
done
# and the fetch side refuses a server outside its CA
run 1 "$msp" ets keymgr fetch --url "$url" --cert "$tmp/stranger.pem" --key "$tmp/stranger.key" \
    --ca "$tmp/other.pem" --groups x25519 --out-dir "$tmp/k3"

# certificates: certs=0x0403:0x0403 gives a certificate whose visibility information names the returned keys
rm -f "$tmp"/k3/*
run 0 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --groups x25519,p256 --certs 0x0403:0x0403 \
    --context ets.example.test --out-dir "$tmp/k3"
cert="$tmp/k3/cert-0x0403.pem"
if openssl verify -CAfile "$tmp/ca.pem" "$cert" >/dev/null 2>&1; then ok; else bad "issued certificate does not verify"; fi
if openssl x509 -in "$cert" -noout -pubkey | openssl pkey -pubin -noout -text 2>/dev/null | grep -q P-256; then ok; else
    bad "subject key is not P-256"
fi
want=$(grep -v '^certificate' "$tmp/out" | cut -d' ' -f2 | sort | paste -sd' ')
run 0 "$msp" ets show "$cert" --format json
got=$(grep -o '"fingerprint":"[0-9a-f]*"' "$tmp/out" | cut -d'"' -f4 | sort | paste -sd' ')
if [ -n "$want" ] && [ "$got" = "$want" ]; then ok; else bad "certificate fingerprints '$got', keys '$want'"; fi
run 1 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --groups x25519 --certs 0x0403:0x0805 --out-dir "$tmp/k3"
if grep -q "subject scheme not supported" "$tmp/err"; then ok; else bad "unsupported scheme: $(cat "$tmp/err")"; fi
run 1 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --groups x25519 --certs 0x0804:0x0403 --out-dir "$tmp/k3"
if grep -q "issuer scheme" "$tmp/err"; then ok; else bad "issuer scheme of a P-256 CA: $(cat "$tmp/err")"; fi
run 0 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --groups p256 --certs 0x0403:0x0804 --out-dir "$tmp/k3"
if openssl x509 -in "$tmp/k3/cert-0x0804.pem" -noout -text | grep -q "rsaEncryption"; then ok; else bad "RSA subject"; fi

# The server side of the chain: stock openssl s_server whose msp-ets provider reads the fetched x25519.pem and
# p256.pem; msp ets probe sees the fetched key's fingerprint in the key share.
module=$3
ets_conf "$tmp/ets.cnf" "$tmp/k1/x25519.pem" "$tmp/k1/p256.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/web.key" -out "$tmp/web.pem" \
    -days 1 -subj /CN=web.test >/dev/null 2>&1
W=$(port)
OPENSSL_CONF=$tmp/ets.cnf openssl s_server -accept "127.0.0.1:$W" -tls1_3 -groups X25519:P-256 -cert "$tmp/web.pem" \
    -key "$tmp/web.key" -www </dev/null >"$tmp/web.log" 2>&1 &
pids+=($!)
wait_listen "$W" || bad "s_server with the fetched keys does not listen: $(cat "$tmp/web.log")"
fp_x_first=$(awk '$1 == "x25519" {print $2}' "$tmp/first")
run 0 "$msp" ets probe "127.0.0.1:$W" --groups X25519 --format json
if grep -q "\"fingerprint\":\"$fp_x_first\"" "$tmp/out" && grep -q '"static_key_share":true' "$tmp/out"; then ok; else
    bad "the server does not use the fetched key $fp_x_first: $(cat "$tmp/out")"
fi
# ... and a middlebox holding the same fetched keys decrypts a stock client's connections live. Not the probe's: it
# closes without reading the last NewSessionTicket, and a server packet after its reset starts a phantom flow in the
# decryptor (issue 13), which made this count flaky.
"$msp" ets decrypt --interface lo --filter "tcp port $W" --key-dir "$tmp/k1" --events "$tmp/live.json" \
    2>"$tmp/live.err" &
live=$!
for _ in $(seq 100); do
    grep -q "capturing on lo" "$tmp/live.err" 2>/dev/null && break
    sleep 0.1
done
for _ in 1 2; do
    (printf 'GET / HTTP/1.0\r\n\r\n'; sleep 0.3) | timeout 10 openssl s_client -connect "127.0.0.1:$W" -groups X25519 \
        -ign_eof >"$tmp/web.out" 2>&1
    if grep -q "HTTP/1.0 200 ok" "$tmp/web.out"; then ok; else bad "s_client to the ETS server: $(tail -c 300 "$tmp/web.out")"; fi
done
sleep 0.5
kill -INT $live
if wait $live && grep -q '"flows":2,"decrypted":2,"undecryptable":0' "$tmp/live.json"; then ok; else
    bad "the middlebox with the fetched keys: $(tail -1 "$tmp/live.json") $(cat "$tmp/live.err")"
fi

# rotation (--rotate 3): a new key per group; the old ones are still found by fingerprint
sleep 4
run 0 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --groups x25519,p256 --out-dir "$tmp/k1"
# the running server picked up the rotated key on its next handshake (the provider re-reads a changed file)
fp_x_new=$(awk '$1 == "x25519" {print $2}' "$tmp/out")
run 0 "$msp" ets probe "127.0.0.1:$W" --groups X25519 --format json
if grep -q "\"fingerprint\":\"$fp_x_new\"" "$tmp/out"; then ok; else
    bad "after rotation the server does not use $fp_x_new: $(cat "$tmp/out")"
fi
run 0 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --groups x25519,p256 --out-dir "$tmp/k1"
if [ -z "$(comm -12 <(cut -d' ' -f2 "$tmp/out" | sort) <(cut -d' ' -f2 "$tmp/first" | sort))" ]; then ok; else
    bad "no new keys after rotation: $(cat "$tmp/out")"
fi
run 0 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --fingerprints "$fps" --out-dir "$tmp/k2"
if [ "$(wc -l <"$tmp/out")" -eq 2 ]; then ok; else bad "old keys lost after rotation: $(cat "$tmp/out")"; fi
if [ "$(ls "$tmp"/store/*.pem | wc -l)" -ge 4 ]; then ok; else bad "store: $(ls "$tmp/store")"; fi

# push (ETS-KT-2): the consumer listens, the manager PUTs after each rotation
Q=$(port)
"$msp" ets keymgr fetch --listen "127.0.0.1:$Q" --cert "$tmp/server.pem" --key "$tmp/server.key" --ca "$tmp/ca.pem" \
    --out-dir "$tmp/pushed" >"$tmp/pushed.out" 2>"$tmp/pushed.log" &
pids+=($!)
wait_listen "$Q" || bad "fetch --listen does not listen"
R=$(port)
mkdir -p "$tmp/store2"
"$msp" ets keymgr serve --listen "127.0.0.1:$R" --cert "$tmp/server.pem" --key "$tmp/server.key" --ca "$tmp/ca.pem" \
    --store "$tmp/store2" --groups x25519 --push "https://127.0.0.1:$Q" 2>"$tmp/serve2.log" &
pids+=($!)
for _ in $(seq 1 50); do [ -f "$tmp/pushed/x25519.pem" ] && break; sleep 0.1; done
if [ -f "$tmp/pushed/x25519.pem" ]; then ok; else bad "nothing pushed: $(cat "$tmp/serve2.log" "$tmp/pushed.log")"; fi
read -r g f _ <"$tmp/pushed.out"
if [ "$g" = x25519 ] && [ "$(fp_of "$tmp/pushed/x25519.pem" x25519)" = "$f" ]; then ok; else bad "pushed key: $g $f"; fi

# Three more servers, started together so that the seconds of the expiry and retention checks are spent on the
# others: C for expiry and retention, B with --allow-subject, D a push consumer with --allow-subject.
# C (--rotate 8 --lifetime 2 --retention 10): K0 is valid [T0, T0+2); from T0+2 until the rotation at T0+8 no key is
# current; K0 is retired at T0+2 + 10 = T0+12, file and all: after the second rotation, before the third. (Windows of
# several seconds: a loaded machine takes seconds between two checks.)
C=$(port)
mkdir -p "$tmp/storeC" "$tmp/kc"
"$msp" ets keymgr serve --listen "127.0.0.1:$C" --cert "$tmp/server.pem" --key "$tmp/server.key" --ca "$tmp/ca.pem" \
    --store "$tmp/storeC" --groups x25519 --rotate 8 --lifetime 2 --retention 10 2>"$tmp/serveC.log" &
pids+=($!)
B=$(port)
mkdir -p "$tmp/storeB" "$tmp/kb"
"$msp" ets keymgr serve --listen "127.0.0.1:$B" --cert "$tmp/server.pem" --key "$tmp/server.key" --ca "$tmp/ca.pem" \
    --store "$tmp/storeB" --groups x25519 --allow-subject 'CN=mbox-*' 2>"$tmp/serveB.log" &
pids+=($!)
D=$(port)
mkdir -p "$tmp/pushedD"
"$msp" ets keymgr fetch --listen "127.0.0.1:$D" --cert "$tmp/server.pem" --key "$tmp/server.key" --ca "$tmp/ca.pem" \
    --out-dir "$tmp/pushedD" --allow-subject 'CN=keymgr.test' >"$tmp/pushedD.out" 2>"$tmp/pushedD.log" &
pids+=($!)
# (it binds before making its first key, so wait for the line it logs after)
if wait_until 10 grep -q "listening on" "$tmp/serveC.log"; then ok; else
    bad "keymgr serve (expiry) does not listen: $(cat "$tmp/serveC.log")"
fi
if wait_listen "$B"; then ok; else bad "keymgr serve --allow-subject does not listen: $(cat "$tmp/serveB.log")"; fi
if wait_listen "$D"; then ok; else bad "fetch --listen --allow-subject does not listen: $(cat "$tmp/pushedD.log")"; fi
urlB="https://127.0.0.1:$B"
urlC="https://127.0.0.1:$C"
urlD="https://127.0.0.1:$D/enterprise-transport-security/keys"
as_mgr=(--cert "$tmp/server.pem" --key "$tmp/server.key")
new_keys() { grep -c "new key x25519" "$tmp/serveC.log"; }
fp0=$(sed -n 's/.*new key x25519 \([0-9a-f]*\) .*/\1/p' "$tmp/serveC.log" | head -1)
na0=$(sed -n 's/^msp-ets-not-after: //p' "$tmp/storeC/x25519-$fp0.pem" 2>/dev/null)
nb0=$(sed -n 's/^msp-ets-not-before: //p' "$tmp/storeC/x25519-$fp0.pem" 2>/dev/null)
if [ -n "$fp0" ] && [ -n "$na0" ] && [ "$((na0 - nb0))" -eq 2 ]; then ok; else bad "store file of K0 $fp0: $nb0 $na0"; fi

# Expiry: once K0's not_after has passed, and before the next rotation, no key is current: a groups fetch gets 404
# (fetch: exit 1, one line, nothing written) while K0 is still found by fingerprint
wait_until 5 more_than "$((na0 - 1))" date +%s
if [ "$(new_keys)" -eq 1 ]; then ok; else bad "rotated before the expiry check could run (machine too slow?)"; fi
run 1 "$msp" ets keymgr fetch --url "$urlC" "${client[@]}" --groups x25519 --out-dir "$tmp/kc"
if [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "answered 404: " "$tmp/err" && [ ! -s "$tmp/out" ] &&
    [ -z "$(ls -A "$tmp/kc")" ]; then ok; else bad "expired key served as current: $(cat "$tmp/out" "$tmp/err")"; fi
expect_http 404 "the key of the requested groups has expired; the next rotation makes a new one" "${as_client[@]}" "$urlC$keys?groups=0x001d"
run 0 "$msp" ets keymgr fetch --url "$urlC" "${client[@]}" --fingerprints "$fp0" --out-dir "$tmp/kc"
if [ "$(cut -d' ' -f1,2 "$tmp/out")" = "x25519 $fp0" ] && [ -f "$tmp/kc/x25519-$fp0.pem" ]; then ok; else
    bad "expired key not found by fingerprint: $(cat "$tmp/out" "$tmp/err")"
fi
if [ "$(new_keys)" -eq 1 ]; then ok; else bad "rotated during the expiry check: its 404 proves nothing"; fi

# --allow-subject: a client certificate chaining to --ca whose RFC 2253 subject does not match the pattern gets 403,
# one line from fetch, nothing written; a matching one gets its key
run 1 "$msp" ets keymgr fetch --url "$urlB" "${client[@]}" --groups x25519 --out-dir "$tmp/kb"
want="msp ets keymgr: fetch: error: the key manager answered 403: client certificate subject not allowed"
if [ "$(cat "$tmp/err")" = "$want" ] && [ ! -s "$tmp/out" ] && [ -z "$(ls -A "$tmp/kb")" ]; then ok; else
    bad "--allow-subject: $(cat "$tmp/err" "$tmp/out"); written: $(ls -A "$tmp/kb")"
fi
expect_http 403 "client certificate subject not allowed" "${as_client[@]}" "$urlB$keys?groups=0x001d"
if grep -qF "\"CN=middlebox-1\" GET $keys?groups=0x001d 403 " "$tmp/serveB.log"; then ok; else
    bad "403 not logged: $(cat "$tmp/serveB.log")"
fi
run 0 "$msp" ets keymgr fetch --url "$urlB" --cert "$tmp/mbox.pem" --key "$tmp/mbox.key" --ca "$tmp/ca.pem" \
    --groups x25519 --out-dir "$tmp/kb"
read -r g f _ <"$tmp/out"
if [ "$g" = x25519 ] && [ "$(fp_of "$tmp/kb/x25519-$f.pem" x25519)" = "$f" ]; then ok; else
    bad "CN=mbox-1: $(cat "$tmp/out")"
fi

# Retention: the rotation at T0+8 makes K1; K0, expired, is kept by its purge (file, and found by fingerprint)
if wait_until 12 more_than 1 new_keys; then ok; else bad "no rotation: $(cat "$tmp/serveC.log")"; fi
fp1=$(sed -n 's/.*new key x25519 \([0-9a-f]*\) .*/\1/p' "$tmp/serveC.log" | sed -n 2p)
run 0 "$msp" ets keymgr fetch --url "$urlC" "${client[@]}" --fingerprints "$fp0" --out-dir "$tmp/kc"
if [ "$(cut -d' ' -f1,2 "$tmp/out")" = "x25519 $fp0" ] && [ -f "$tmp/storeC/x25519-$fp0.pem" ] &&
    [ "$(new_keys)" -eq 2 ]; then ok; else
    bad "K0 $fp0 dropped before expiry + retention: $(cat "$tmp/out" "$tmp/err" "$tmp/serveC.log")"
fi

# 405: the manager's keys path takes GET only. PUT (with a valid package as body), DELETE and POST are refused and
# change nothing in the store; the path is checked first (404)
expect_http 200 "" "${as_mbox[@]}" "$urlB$keys?groups=0x001d"
cp "$tmp/body" "$tmp/pkg.der"
sums=$(store_sums "$tmp/storeB")
expect_http 405 "GET only" "${as_mbox[@]}" -X PUT -H "Content-Type: application/pkcs8" --data-binary "@$tmp/pkg.der" \
    "$urlB$keys"
expect_http 405 "GET only" "${as_mbox[@]}" -X DELETE "$urlB$keys?fingerprints=$f"
expect_http 405 "GET only" "${as_mbox[@]}" -X POST "$urlB$keys?groups=0x001d"
# with a body too, and HEAD: 405 with Allow: GET and no body
expect_http 405 "GET only" "${as_mbox[@]}" -X POST --data-binary "@$tmp/pkg.der" "$urlB$keys"
got=$(curl -sS --max-time 5 --cacert "$tmp/ca.pem" "${as_mbox[@]}" --head -o "$tmp/head" \
    -w '%{http_code} %{size_download}' "$urlB$keys?groups=0x001d" 2>"$tmp/curl.err")
if [ "$got" = "405 0" ] && grep -q '^Allow: GET' "$tmp/head"; then ok; else
    bad "HEAD: $got $(cat "$tmp/head" "$tmp/curl.err")"
fi
expect_http 404 "unknown path" "${as_mbox[@]}" -X PUT -H "Content-Type: application/pkcs8" \
    --data-binary "@$tmp/pkg.der" "$urlB/enterprise-transport-security/keys"
if grep -qF "\"CN=mbox-1\" PUT $keys 405 9" "$tmp/serveB.log" &&
    grep -qF "\"CN=mbox-1\" DELETE $keys?fingerprints=$f 405 9" "$tmp/serveB.log"; then ok; else
    bad "405 not logged: $(cat "$tmp/serveB.log")"
fi
if [ -n "$sums" ] && [ "$(store_sums "$tmp/storeB")" = "$sums" ]; then ok; else
    bad "the store changed on a refused request"
fi

# The push consumer (fetch --listen) takes PUT only, from a subject its --allow-subject admits: GET and DELETE get
# 405, a PUT from another subject 403, and none of them writes anything; the manager's certificate PUTs: 204
expect_http 403 "client certificate subject not allowed" "${as_client[@]}" -X PUT \
    -H "Content-Type: application/pkcs8" --data-binary "@$tmp/pkg.der" "$urlD"
expect_http 405 "PUT only" "${as_mgr[@]}" "$urlD"
expect_http 405 "PUT only" "${as_mgr[@]}" -X DELETE "$urlD"
if [ -z "$(ls -A "$tmp/pushedD")" ] && [ ! -s "$tmp/pushedD.out" ]; then ok; else
    bad "the consumer wrote on a refused request: $(ls -A "$tmp/pushedD")"
fi
expect_http 204 "" "${as_mgr[@]}" -X PUT -H "Content-Type: application/pkcs8" --data-binary "@$tmp/pkg.der" "$urlD"
if [ "$(fp_of "$tmp/pushedD/x25519.pem" x25519)" = "$f" ] && [ -f "$tmp/pushedD/x25519-$f.pem" ]; then ok; else
    bad "the consumer did not write the key $f: $(ls -A "$tmp/pushedD")"
fi

# ... and K0 is retired at not_after + retention (T0+12, after the second key, before the third), not at a rotation:
# 404, the store file gone; K1, expired by then as well, is still within its retention
if wait_until 12 grep -q "retired key x25519 $fp0" "$tmp/serveC.log"; then ok; else
    bad "K0 $fp0 never retired: $(cat "$tmp/serveC.log")"
fi
if [ "$(awk -v r="retired key x25519 $fp0" '/new key/ {n++} index($0, r) {print n; exit}' "$tmp/serveC.log")" = 2 ]; then
    ok
else bad "K0 retired at the wrong rotation: $(cat "$tmp/serveC.log")"; fi
run 1 "$msp" ets keymgr fetch --url "$urlC" "${client[@]}" --fingerprints "$fp0" --out-dir "$tmp/kc"
want="msp ets keymgr: fetch: error: the key manager answered 404: no key on record with these fingerprints"
if [ "$(cat "$tmp/err")" = "$want" ] && [ ! -s "$tmp/out" ]; then ok; else
    bad "K0 after retention: $(cat "$tmp/out" "$tmp/err")"
fi
expect_http 404 "no key on record with these fingerprints" "${as_client[@]}" "$urlC$keys?fingerprints=$fp0"
if [ ! -e "$tmp/storeC/x25519-$fp0.pem" ] && [ -f "$tmp/storeC/x25519-$fp1.pem" ]; then ok; else
    bad "store after retention: $(ls "$tmp/storeC")"
fi
run 0 "$msp" ets keymgr fetch --url "$urlC" "${client[@]}" --fingerprints "$fp1" --out-dir "$tmp/kc"

# usage errors: one line, status 2
run 2 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --out-dir "$tmp/k1"
run 2 "$msp" ets keymgr serve --listen 127.0.0.1:1 --cert "$tmp/nope.pem" --key "$tmp/server.key" --ca "$tmp/ca.pem" \
    --store "$tmp/store"
if [ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok; else bad "usage error not one line: $(cat "$tmp/err")"; fi
run 0 "$msp" ets keymgr --help

finish ets_keymgr
