#!/usr/bin/env bash
# The config route of the msp-ets provider (docs/ets-provider.md): stock `openssl s_server` made an
# ETS server by openssl.cnf alone; stock `openssl s_client -msg` shows the ServerHello it gets.
# Usage: ets_provider.sh MSP SOURCE_DIR PROVIDER_MODULE
set -uo pipefail
module=$3
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
unset OPENSSL_CONF

hex() { od -An -v -tx1 | tr -d ' \n'; }
# pub KEYFILE BYTES: the key_share bytes of a private key (the tail of its SubjectPublicKeyInfo)
pub() { openssl pkey -in "$1" -pubout -outform DER | tail -c "$2" | hex; }

openssl genpkey -algorithm X25519 -out "$tmp/x.pem" 2>/dev/null || bad "genpkey X25519"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/p.pem" 2>/dev/null || bad "genpkey P-256"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/cert.key" -out "$tmp/cert.pem" \
    -days 1 -subj /CN=ets.test >/dev/null 2>&1 || bad "openssl req"
xpub=$(pub "$tmp/x.pem" 32)
ppub=$(pub "$tmp/p.pem" 65)

# serve CONF GROUPS: s_server (lib.sh) with this configuration and groups; sets $port and $server_log
serve() {
    server_log="$tmp/server.$RANDOM.log"
    s_server "$server_log" "$1" "$2" -cert "$tmp/cert.pem" -key "$tmp/cert.key" -www
}

# hello GROUPS: the ServerHello's bytes (hex) of one connection to $port, "" when the handshake failed
hello() {
    echo | timeout 10 openssl s_client -connect "127.0.0.1:$port" -groups "$1" -msg 2>&1 </dev/null |
        awk '/^<<< .*ServerHello/ {on = 1; next} /^(<<<|>>>)/ {on = 0} on' | tr -d ' \n'
}

# has_share GROUPS EXPECTED_EXTENSION_HEX WHAT
has_share() {
    local h
    h=$(hello "$1")
    case "$h" in
    *"$2"*) ok ;;
    *) bad "$3: ServerHello ${h:0:200}... does not carry ${2:0:40}..." ;;
    esac
}

ets_conf "$tmp/ets.cnf" "$tmp/x.pem" "$tmp/p.pem"
serve "$tmp/ets.cnf" x25519:P-256 || { finish ets_provider; exit 1; }
# key_share extension 0x0033: group 0x001d + 32 bytes, group 0x0017 + the 65-byte point
for i in 1 2; do
    has_share x25519 "00330024001d0020$xpub" "x25519 connection $i"
    has_share P-256 "0033004500170041$ppub" "P-256 connection $i"
done
# a client offering P-384 first is sent to a static group (HelloRetryRequest)
has_share P-384:x25519 "00330024001d0020$xpub" "after HRR"

# collateral under the same configuration: key generation stays fresh, other curves still work
g1=$(OPENSSL_CONF=$tmp/ets.cnf openssl genpkey -algorithm X25519 | openssl pkey -pubout -outform DER | hex)
g2=$(OPENSSL_CONF=$tmp/ets.cnf openssl genpkey -algorithm X25519 | openssl pkey -pubout -outform DER | hex)
if [ -n "$g1" ] && [ "$g1" != "$g2" ] && [ "${g1: -64}" != "$xpub" ]; then ok; else bad "genpkey X25519 under msp-ets not fresh"; fi
run 0 env OPENSSL_CONF="$tmp/ets.cnf" openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$tmp/p384.pem"
run 0 env OPENSSL_CONF="$tmp/ets.cnf" openssl list -providers
if grep -q 'msp-ets' "$tmp/out"; then ok; else bad "msp-ets not listed: $(cat "$tmp/out")"; fi

# rotation: a new key replaces the file atomically; the next handshake uses it
openssl genpkey -algorithm X25519 -out "$tmp/x2.pem" 2>/dev/null
x2pub=$(pub "$tmp/x2.pem" 32)
mv "$tmp/x2.pem" "$tmp/x.pem"
has_share x25519 "00330024001d0020$x2pub" "after rotation"
# a broken replacement keeps the last good key (and the server running)
echo "not a key" >"$tmp/broken.pem"
mv "$tmp/broken.pem" "$tmp/x.pem"
has_share x25519 "00330024001d0020$x2pub" "after a broken rotation"

# a configured group whose key cannot be loaded is refused, loudly (the server says which group)
ets_conf "$tmp/missing.cnf" "$tmp/x2-absent.pem" "$tmp/p.pem"
serve "$tmp/missing.cnf" x25519:P-256 || { finish ets_provider; exit 1; }
h=$(hello x25519)
if [ -z "$h" ]; then ok; else bad "x25519 handshake without its static key got a ServerHello: ${h:0:200}"; fi
eventually "$server_log" 'no static key for group x25519'
has_share P-256 "0033004500170041$ppub" "P-256 beside a missing x25519 key"

finish ets_provider
