#!/usr/bin/env bash
# msp ets keymgr serve/fetch over mutual TLS on loopback (ets.md 3.4 ETS-KP-1, ETS-KT-1..4, 3.5): keys by groups
# and by fingerprints, fingerprints checked against `openssl pkey`, refused clients, rotation keeping old keys
# findable, an issued certificate whose visibility information names the returned keys, and push.
# Usage: ets_keymgr.sh MSP SOURCE_DIR PROVIDER_MODULE
set -uo pipefail
msp=$1
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"

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

# a loopback port nothing listens on (bash alone: no python on a fresh machine)
port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
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

# an unknown fingerprint: non-zero exit, one line
run 1 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --fingerprints 00112233445566778899 --out-dir "$tmp/k2"
if [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q 404 "$tmp/err"; then ok; else bad "unknown fingerprint: $(cat "$tmp/err")"; fi
run 1 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --fingerprints nothex --out-dir "$tmp/k2"
if grep -q 400 "$tmp/err"; then ok; else bad "malformed fingerprint: $(cat "$tmp/err")"; fi

# clients the manager must refuse: a certificate from another CA, and none at all
run 1 "$msp" ets keymgr fetch --url "$url" --cert "$tmp/stranger.pem" --key "$tmp/stranger.key" --ca "$tmp/ca.pem" \
    --groups x25519 --out-dir "$tmp/k3"
if [ -z "$(ls "$tmp/k3")" ]; then ok; else bad "a stranger got keys"; fi
if curl -sk --max-time 5 "$url/.well-known/enterprise-transport-security/keys?groups=0x001d" -o "$tmp/curl.out"; then
    bad "a client without a certificate got an answer"
else ok; fi
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
# ... and a middlebox holding the same fetched keys decrypts those connections live
"$msp" ets decrypt --interface lo --filter "tcp port $W" --key-dir "$tmp/k1" --events "$tmp/live.json" \
    2>"$tmp/live.err" &
live=$!
for _ in $(seq 100); do
    grep -q "capturing on lo" "$tmp/live.err" 2>/dev/null && break
    sleep 0.1
done
run 0 "$msp" ets probe "127.0.0.1:$W" --groups X25519 --format json
if grep -q "\"fingerprint\":\"$fp_x_first\"" "$tmp/out" && grep -q '"static_key_share":true' "$tmp/out"; then ok; else
    bad "the server does not use the fetched key $fp_x_first: $(cat "$tmp/out")"
fi
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

# usage errors: one line, status 2
run 2 "$msp" ets keymgr fetch --url "$url" "${client[@]}" --out-dir "$tmp/k1"
run 2 "$msp" ets keymgr serve --listen 127.0.0.1:1 --cert "$tmp/nope.pem" --key "$tmp/server.key" --ca "$tmp/ca.pem" \
    --store "$tmp/store"
if [ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok; else bad "usage error not one line: $(cat "$tmp/err")"; fi
run 0 "$msp" ets keymgr --help

finish ets_keymgr
