#!/usr/bin/env bash
# CMS-wrapped key packages (ets.md 3.4 ETS-KP-2) between msp ets keymgr serve and fetch on loopback: the answer to
# Accept application/pkcs7-mime (and the spec example's application/cms) opened by OpenSSL's own `openssl cms`
# (decrypt as the client, verify against the CA) is the plain package byte for byte; fetch --cms and
# --trust-signer (CA or the pinned manager certificate) write keys that then decrypt a capture of a stock openssl
# s_server made ETS with them; refused, with one line, exit 1 and nothing written: an untrusted signer, a plain
# answer to --cms (serve's --require-cms answering 406 to plain requests); a CMS-wrapped push (--require-cms) to a
# fetch --listen --cms consumer, which refuses a plain PUT with 415.
# Usage: ets_keymgr_cms.sh MSP SOURCE_DIR PROVIDER_MODULE
set -uo pipefail
msp=$1
module=$3
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
for t in openssl curl dumpcap; do
    command -v "$t" >/dev/null || { bad "$t is not installed (scripts/deps.sh)"; finish ets_keymgr_cms; exit; }
done
cd "$tmp" || exit 1
has() { if grep -qF -- "$2" "$1"; then ok; else bad "$1 lacks '$2': $(head -c 400 "$1")"; fi; }
empty_dir() { if [ -z "$(ls -A "$1")" ]; then ok; else bad "$1 is not empty: $(ls "$1")"; fi; }

# ca NAME; leaf NAME CA CN [SAN]: P-256 (KEYALG=rsa: RSA 2048, KEYALG=ed25519)
ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.pem" -days 2 \
        -subj "/CN=$1" >/dev/null 2>&1 || bad "CA $1"
}
leaf() {
    local newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
    [ "${KEYALG:-}" = rsa ] && newkey=(-newkey rsa:2048)
    [ "${KEYALG:-}" = ed25519 ] && newkey=(-newkey ed25519)
    printf 'basicConstraints=CA:FALSE\n%s\n' "${4:+subjectAltName=$4}" >"$1.ext"
    openssl req "${newkey[@]}" -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$3" >/dev/null 2>&1 &&
        openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 -extfile "$1.ext" \
            -out "$1.pem" >/dev/null 2>&1 || bad "certificate $1"
}
ca ca
ca other
leaf server ca keymgr.test "IP:127.0.0.1,DNS:localhost"
leaf client ca middlebox-1
KEYALG=rsa leaf rsaclient ca middlebox-rsa
KEYALG=ed25519 leaf edclient ca middlebox-ed
leaf mbox ca mbox-1 "IP:127.0.0.1" # also a push consumer: the manager checks its address
client=(--cert client.pem --key client.key --ca ca.pem)
keys=/.well-known/enterprise-transport-security/keys

P=$(free_port)
mkdir -p store k1 k2 k3 k4 k5 pushed
"$msp" ets keymgr serve --listen "127.0.0.1:$P" --cert server.pem --key server.key --ca ca.pem --store store \
    --rotate 3600 2>serve.log &
serve_pid=$!
pids+=($serve_pid)
wait_listen "$P" $serve_pid "keymgr serve" serve.log
url="https://127.0.0.1:$P"

# ---- what the manager sends, read by OpenSSL's own CMS: the plain package, signed by the manager, to the client ----
get() { # get ACCEPT OUT CERT: the body to OUT, the Content-Type printed
    curl -sS --max-time 5 --cacert ca.pem --cert "$3.pem" --key "$3.key" -H "Accept: $1" -o "$2" \
        -w '%{content_type}' "$url$keys?groups=0x001d,0x0017"
}
type=$(get application/pkcs8 plain.der client)
if [ "$type" = application/pkcs8 ]; then ok; else bad "plain answer typed '$type'"; fi
for accept in application/pkcs7-mime "application/pkcs8;q=0.5, application/cms"; do
    type=$(get "$accept" wrapped.der client)
    cp wrapped.der wrapped-client.der
    if [ "$type" = application/pkcs7-mime ]; then ok; else bad "Accept $accept: answer typed '$type'"; fi
    openssl cms -decrypt -binary -inform DER -in wrapped.der -recip client.pem -inkey client.key -out signed.der \
        2>cms.err || bad "openssl cms -decrypt: $(cat cms.err)"
    openssl cms -verify -binary -inform DER -in signed.der -CAfile ca.pem -purpose any -out unwrapped.der \
        2>cms.err || bad "openssl cms -verify: $(cat cms.err)"
    if cmp -s unwrapped.der plain.der; then ok; else bad "Accept $accept: the CMS content is not the plain package"; fi
    openssl cms -cmsout -print -inform DER -in wrapped.der >wrapped.txt 2>&1
    has wrapped.txt "contentType: id-smime-ct-authEnvelopedData"
    openssl cms -cmsout -print -inform DER -in signed.der >signed.txt 2>&1
    has signed.txt "eContentType: undefined (2.16.840.1.101.2.1.2.78.5)" # id-ct-KP-aKeyPackage
done
# to an RSA client certificate too (key transport instead of key agreement)
type=$(get application/pkcs7-mime wrapped.der rsaclient)
openssl cms -decrypt -binary -inform DER -in wrapped.der -recip rsaclient.pem -inkey rsaclient.key -out signed.der \
    2>cms.err && ok || bad "RSA recipient: $(cat cms.err)"
# a client certificate CMS cannot encrypt to: 406 with the reason, never the plain package instead
type=$(get application/pkcs7-mime wrapped-ed.der edclient)
if [ "$type" = text/plain ] && grep -q "cannot wrap the package for the client certificate" wrapped-ed.der; then ok; else
    bad "Ed25519 client asking for CMS: $type $(head -c 200 wrapped-ed.der)"
fi
has serve.log "\"CN=middlebox-ed\" GET $keys?groups=0x001d,0x0017 406"
# the client certificate of one consumer cannot open another's
get application/pkcs7-mime wrapped.der mbox >/dev/null
if openssl cms -decrypt -binary -inform DER -in wrapped.der -recip client.pem -inkey client.key -out /dev/null \
    2>/dev/null; then bad "client opened what was wrapped for mbox"; else ok; fi

# ---- fetch --cms: trusted through the CA (--ca by default, or --trust-signer), or the pinned manager certificate ----
run 0 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --groups x25519,p256 --out-dir k1 --cms
cp "$tmp/out" first
if [ "$(wc -l <first)" -eq 2 ]; then ok; else bad "two keys expected: $(cat first)"; fi
run 0 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --groups x25519,p256 --out-dir k2 --trust-signer server.pem
if [ "$(cat "$tmp/out")" = "$(cat first)" ]; then ok; else bad "pinned: $(cat "$tmp/out")"; fi
for f in k1/*.pem; do cmp -s "$f" "k2/${f#k1/}" && ok || bad "$f differs when fetched with the pinned signer"; done
has serve.log '"CN=middlebox-1" GET'

# refused: a signer not trusted (one line, exit 1, nothing written)
run 1 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --groups x25519 --out-dir k3 --trust-signer other.pem
has "$tmp/err" "fetch: error: the CMS-wrapped key package is refused: the key package's signer is not trusted"
if [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -s "$tmp/out" ]; then ok; else bad "one line expected: $(cat "$tmp/err")"; fi
empty_dir k3
# refused: --trust-signer with no certificate in it (bad input, exit 2)
run 2 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --groups x25519 --out-dir k3 --trust-signer server.key
empty_dir k3

# ---- --require-cms: plain requests get 406, fetch without --cms says so; with --cms it works ----
R=$(free_port)
mkdir -p store2
"$msp" ets keymgr serve --listen "127.0.0.1:$R" --cert server.pem --key server.key --ca ca.pem --store store2 \
    --require-cms 2>serve2.log &
serve2_pid=$!
pids+=($serve2_pid)
wait_listen "$R" $serve2_pid "keymgr serve --require-cms" serve2.log
run 1 "$msp" ets keymgr fetch --url "https://127.0.0.1:$R" "${client[@]}" --groups x25519 --out-dir k3
has "$tmp/err" "the key manager answered 406: this key manager sends CMS-wrapped packages only"
empty_dir k3
run 0 "$msp" ets keymgr fetch --url "https://127.0.0.1:$R" "${client[@]}" --groups x25519 --out-dir k4 --cms

# ---- push, CMS-wrapped (--require-cms) to a consumer that takes nothing else ----
Q=$(free_port)
"$msp" ets keymgr fetch --listen "127.0.0.1:$Q" --cert mbox.pem --key mbox.key --ca ca.pem --out-dir pushed --cms \
    >push.out 2>push.log &
consumer_pid=$!
pids+=($consumer_pid)
wait_listen "$Q" $consumer_pid "fetch --listen" push.log
kill $serve2_pid 2>/dev/null
wait $serve2_pid 2>/dev/null
"$msp" ets keymgr serve --listen "127.0.0.1:$R" --cert server.pem --key server.key --ca ca.pem --store store2 \
    --require-cms --rotate 1 --push "https://127.0.0.1:$Q" 2>serve3.log &
pids+=($!)
for _ in $(seq 100); do [ -s pushed/x25519.pem ] && [ -s pushed/p256.pem ] && break; sleep 0.1; done
if [ -s pushed/x25519.pem ] && [ -s pushed/p256.pem ]; then ok; else
    bad "nothing pushed: $(tail -c 300 serve3.log) / $(tail -c 300 push.log)"
fi
has serve3.log "push to https://127.0.0.1:$Q: 204"
has push.log '"CN=keymgr.test" PUT /enterprise-transport-security/keys 204'
# a plain package PUT to it: 415, nothing more written
before=$(ls pushed | wc -l)
code=$(curl -sS --max-time 5 --cacert ca.pem --cert client.pem --key client.key -X PUT -H 'Content-Type: application/pkcs8' \
    --data-binary @plain.der -o /dev/null -w '%{http_code}' "https://127.0.0.1:$Q/enterprise-transport-security/keys")
if [ "$code" = 415 ]; then ok; else bad "plain PUT to a --cms consumer: $code"; fi
# a CMS PUT wrapped for someone else: 400, said in its log
code=$(curl -sS --max-time 5 --cacert ca.pem --cert client.pem --key client.key -X PUT \
    -H 'Content-Type: application/pkcs7-mime' --data-binary @wrapped-client.der -o /dev/null -w '%{http_code}' \
    "https://127.0.0.1:$Q/enterprise-transport-security/keys")
if [ "$code" = 400 ]; then ok; else bad "PUT wrapped for another consumer: $code"; fi
has push.log "push refused: the CMS-wrapped key package is refused: not encrypted to our certificate"

# ---- the keys fetched with CMS decrypt a capture of an ETS server using them ----
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ets.key >/dev/null 2>&1
run 0 "$msp" ets cert --static k1/x25519.pem --static k1/p256.pem --access "IDS of msp.test" --key ets.key \
    --subject /CN=ets.test --dns ets.test --ca-cert ca.pem --ca-key ca.key --out ets.crt
ets_conf ets.cnf "$tmp/k1/x25519.pem" "$tmp/k1/p256.pem"
s_server www.log ets.cnf X25519:P-256 -cert ets.crt -key ets.key -www
dumpcap -q -i lo -f "tcp port $port" -w cap.pcapng >dumpcap.log 2>&1 &
cap_pid=$!
pids+=($cap_pid)
waitfor dumpcap.log "Capturing on"
for g in X25519 P-256; do
    (printf 'GET /cms-%s HTTP/1.0\r\n\r\n' $g; sleep 0.3) | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
        -servername ets.test -CAfile ca.pem -groups $g -ign_eof >s_client.out 2>&1 || true
done
sleep 0.5
kill -INT $cap_pid
wait $cap_pid 2>/dev/null
run 0 "$msp" ets decrypt --key-dir k1 --pcap cap.pcapng --events events.json --out plain
has events.json '"flows":2,"decrypted":2,"undecryptable":0'
has events.json '"visibility_matches":true'
grep -qs "GET /cms-X25519" plain/*.c2s && grep -qs "GET /cms-P-256" plain/*.c2s && ok || bad "plaintext of the requests"

finish ets_keymgr_cms
