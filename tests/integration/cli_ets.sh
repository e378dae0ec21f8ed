#!/usr/bin/env bash
# msp ets show on certificates made by OpenSSL's own `openssl req` (the layout of ets.md 3.3), so the
# decoder is checked against an encoder that is not ours. Usage: cli_ets.sh MSP
set -uo pipefail
msp=$1
tmp=$(mktemp -d)
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

# msp ets cert writes the subjectAltName byte for byte as OpenSSL's own encoder does from the layout of ets.md 3.3
# (DNS name, then the otherName 0.4.0.3523.3.1 holding SEQUENCE { OCTET STRING fingerprint, UTF8String access })
run 0 "$msp" ets keygen --group x25519 --out "$tmp/static.pem"
fp=$(sed -n 's/.*fingerprint \([0-9a-f]*\),.*/\1/p' "$tmp/out")
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/subject.key" 2>/dev/null
run 0 "$msp" ets cert --static "$tmp/static.pem" --access "IDS of example.com" --key "$tmp/subject.key" \
    --subject /CN=ets.example --dns ets.example --self-signed --out "$tmp/ours.pem"
printf '[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n[dn]\nCN = ets.example\n' >"$tmp/ref.cnf"
printf '[ext]\nsubjectAltName = @san\n[san]\nDNS.1 = ets.example\notherName.1 = 0.4.0.3523.3.1;SEQUENCE:vi\n' >>"$tmp/ref.cnf"
printf '[vi]\nfingerprint = FORMAT:HEX,OCTETSTRING:%s\naccess = UTF8:IDS of example.com\n' "$fp" >>"$tmp/ref.cnf"
openssl req -x509 -key "$tmp/subject.key" -out "$tmp/ref.pem" -days 1 -config "$tmp/ref.cnf" 2>/dev/null
san_hex() { openssl asn1parse -in "$1" | grep -A1 'X509v3 Subject Alternative Name' | sed -n 's/.*\[HEX DUMP\]://p'; }
want=$(san_hex "$tmp/ref.pem")
if [ -n "$want" ] && [ "$(san_hex "$tmp/ours.pem")" = "$want" ]; then ok; else
    bad "subjectAltName differs from OpenSSL's encoding: ours $(san_hex "$tmp/ours.pem"), OpenSSL's $want"
fi
# and that encoding is the spec's: OID 06 06 04 00 9B 43 03 01, [0] { SEQUENCE { 04 0A fingerprint, 0C 12 text } }
case "$want" in *"060604009B430301A0223020040A$(echo "$fp" | tr a-f A-F)0C12"*) ok ;; *) bad "layout: $want" ;; esac

# unreadable input
run 2 "$msp" ets show "$tmp/nonexistent.pem"
echo "not a certificate" >"$tmp/junk.pem"
run 2 "$msp" ets show "$tmp/junk.pem"
run 2 "$msp" ets show
run 2 "$msp" ets show "$tmp/one.pem" --format yaml
run 0 "$msp" ets --help

finish cli_ets
