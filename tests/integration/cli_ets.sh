#!/usr/bin/env bash
# msp ets show on certificates made by OpenSSL's own `openssl req` (the layout of ets.md 3.3), so the
# decoder is checked against an encoder that is not ours. Usage: cli_ets.sh MSP
set -uo pipefail
msp=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"
same() { if [ "$(cat "$tmp/$1")" = "$2" ]; then ok; else bad "$1 is '$(cat "$tmp/$1")', expected '$2'"; fi; }

# cert NAME SAN-SECTION-LINES... : a self-signed P-256 certificate whose subjectAltName is the given lines
cert() {
    local name=$1
    shift
    {
        printf '[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n[dn]\nCN = ets.example\n'
        printf '[ext]\nsubjectAltName = @san\n[san]\n'
        for l in "$@"; do printf '%s\n' "$l"; done
        printf '[vi1]\nfingerprint = FORMAT:HEX,OCTETSTRING:65be2a27489585a805ec\naccess = UTF8:IDS of example.com\n'
        printf '[vi2]\nfingerprint = FORMAT:HEX,OCTETSTRING:8da0d336fd37ac6f69cc\naccess = UTF8:logger "eu" \\\\ 1\n'
        printf '[short]\nfingerprint = FORMAT:HEX,OCTETSTRING:65be2a27489585a805\naccess = UTF8:x\n'
    } >"$tmp/$name.cnf"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/$name.key" \
        -out "$tmp/$name.pem" -days 1 -config "$tmp/$name.cnf" >/dev/null 2>&1 || bad "openssl req for $name"
}

cert one "DNS.1 = ets.example" "otherName.1 = 0.4.0.3523.3.1;SEQUENCE:vi1"
run 0 "$msp" ets show "$tmp/one.pem"
same out "$tmp/one.pem: visibility 1: fingerprint 65be2a27489585a805ec, access \"IDS of example.com\""
run 0 "$msp" ets show "$tmp/one.pem" --format json
same out "{\"certificate\":\"$tmp/one.pem\",\"misplaced_extension\":false,\"visibility\":[{\"fingerprint\":\"65be2a27489585a805ec\",\"access\":\"IDS of example.com\"}]}"

# two static keys, one certificate (ETS-VI-5); a description with a backslash is escaped
cert two "otherName.1 = 0.4.0.3523.3.1;SEQUENCE:vi1" "otherName.2 = 0.4.0.3523.3.1;SEQUENCE:vi2"
run 0 "$msp" ets show "$tmp/two.pem"
if [ "$(wc -l <"$tmp/out")" -eq 2 ]; then ok; else bad "two entries expected: $(cat "$tmp/out")"; fi
# (OpenSSL's config reader drops the quotes; the backslash arrives and is escaped)
if grep -qF 'fingerprint 8da0d336fd37ac6f69cc, access "logger eu \\ 1"' "$tmp/out"; then ok; else bad "escaping: $(cat "$tmp/out")"; fi

# DER input works too
openssl x509 -in "$tmp/one.pem" -outform DER -out "$tmp/one.der"
run 0 "$msp" ets show "$tmp/one.der"

# no visibility information: exit 1, said so
cert none "DNS.1 = ets.example"
run 1 "$msp" ets show "$tmp/none.pem"
same out "$tmp/none.pem: no ETS visibility information"

# a malformed entry (a 9-byte fingerprint) is an error, not skipped: exit 2, one line
cert short "otherName.1 = 0.4.0.3523.3.1;SEQUENCE:short"
run 2 "$msp" ets show "$tmp/short.pem"
if [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -s "$tmp/out" ]; then ok; else bad "one error line, nothing on stdout"; fi

# unreadable input
run 2 "$msp" ets show "$tmp/nonexistent.pem"
echo "not a certificate" >"$tmp/junk.pem"
run 2 "$msp" ets show "$tmp/junk.pem"
run 2 "$msp" ets show
run 2 "$msp" ets show "$tmp/one.pem" --format yaml
run 0 "$msp" ets --help

finish cli_ets
