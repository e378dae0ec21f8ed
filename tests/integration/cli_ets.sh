#!/usr/bin/env bash
# msp ets show on certificates made by OpenSSL's own `openssl req` (the layout of ets.md 3.3), so the
# decoder is checked against an encoder that is not ours; msp ets keygen (--force), msp ets cert (ETS-VI-1, --resign
# checked by openssl verify and openssl x509). Usage: cli_ets.sh MSP
set -uo pipefail
msp=$1
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || { bad "openssl is not installed (scripts/deps.sh)"; finish cli_ets; exit; }
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

# keygen never replaces a file without --force: status 2, one line on stderr, nothing on stdout, the file byte for
# byte as it was, no temporary file left; with --force it is replaced by a new key, still mode 0600
cp "$tmp/static.pem" "$tmp/static.copy"
run 2 "$msp" ets keygen --group x25519 --out "$tmp/static.pem"
same err "msp ets keygen: $tmp/static.pem: error: exists (use --force to replace it)"
if [ ! -s "$tmp/out" ] && cmp -s "$tmp/static.pem" "$tmp/static.copy"; then ok; else bad "keygen replaced a file"; fi
if [ -z "$(ls "$tmp" | grep '\.tmp\.')" ]; then ok; else bad "temporary files left: $(ls "$tmp")"; fi
cp "$tmp/static.pem" "$tmp/forced.pem"
run 0 "$msp" ets keygen --group x25519 --out "$tmp/forced.pem" --force
fp_x=$(sed -n 's/.*fingerprint \([0-9a-f]*\),.*/\1/p' "$tmp/out")
if ! cmp -s "$tmp/forced.pem" "$tmp/static.copy" && [ "$(stat -c %a "$tmp/forced.pem")" = 600 ] && [ "$fp_x" != "$fp" ] &&
    openssl pkey -in "$tmp/forced.pem" -noout 2>/dev/null; then ok; else bad "keygen --force did not write a new key"; fi

# ETS-VI-1: a static key equal to the certificate's own key is refused, whatever file it comes in (here the same
# P-256 key as SEC1 PEM) and wherever it stands among the --static keys: status 2, one line naming ETS-VI-1, no
# certificate written
openssl ec -in "$tmp/subject.key" -out "$tmp/subject-sec1.pem" 2>/dev/null || bad "openssl ec"
run 2 "$msp" ets cert --static "$tmp/static.pem" --static "$tmp/subject-sec1.pem" --access "IDS of example.com" \
    --key "$tmp/subject.key" --subject /CN=ets.example --self-signed --out "$tmp/vi1.pem"
same err "msp ets cert: $tmp/subject-sec1.pem: error: the static key is the certificate's own key \
(ETS-VI-1 wants them different)"
if [ ! -s "$tmp/out" ] && [ -z "$(ls "$tmp" | grep '^vi1')" ]; then ok; else
    bad "ETS-VI-1: written: $(ls "$tmp" | grep '^vi1')"
fi

# msp ets cert --resign (key rotation): a certificate issued by a CA for one static key is re-signed for two new
# ones. Subject, subject key, validity, DNS names and extensions stay; the visibility information is exactly the
# new keys'; the serial is new; the CA's signature verifies; the old certificate is left alone.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 2 \
    -subj /CN=ets-test-ca >/dev/null 2>&1 || bad "openssl req for the CA"
run 0 "$msp" ets cert --static "$tmp/static.pem" --access "old holders" --key "$tmp/subject.key" \
    --subject /CN=ets.example/O=Example --dns ets.example --dns www.ets.example --ca-cert "$tmp/ca.pem" \
    --ca-key "$tmp/ca.key" --days 3 --out "$tmp/orig.pem"
cp "$tmp/orig.pem" "$tmp/orig.copy"
run 0 "$msp" ets keygen --group p256 --out "$tmp/new-p256.pem"
fp_p=$(sed -n 's/.*fingerprint \([0-9a-f]*\),.*/\1/p' "$tmp/out")
run 0 "$msp" ets cert --resign "$tmp/orig.pem" --static "$tmp/new-p256.pem" --static "$tmp/forced.pem" \
    --access "new holders" --ca-cert "$tmp/ca.pem" --ca-key "$tmp/ca.key" --out "$tmp/re.pem"
same out "$(printf '%s\n' "$tmp/re.pem: visibility 1: fingerprint $fp_p" "$tmp/re.pem: visibility 2: fingerprint $fp_x")"
run 0 "$msp" ets show "$tmp/re.pem" --format json
same out "{\"certificate\":\"$tmp/re.pem\",\"misplaced_extension\":false,\"visibility\":[{\"fingerprint\":\"$fp_p\",\"access\":\"new holders\"},{\"fingerprint\":\"$fp_x\",\"access\":\"new holders\"}]}"
if openssl verify -CAfile "$tmp/ca.pem" -purpose sslserver "$tmp/re.pem" >"$tmp/verify" 2>&1; then ok; else
    bad "the re-signed certificate does not verify: $(cat "$tmp/verify")"
fi
# what must be kept: compare OpenSSL's own rendering of both certificates
kept() {
    openssl x509 -in "$1" -noout -subject -issuer -startdate -enddate -pubkey \
        -ext basicConstraints,extendedKeyUsage,subjectKeyIdentifier,authorityKeyIdentifier 2>/dev/null
    openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | grep -o 'DNS:[^,]*'
}
kept_re=$(kept "$tmp/re.pem")
kept_orig=$(kept "$tmp/orig.pem")
if [ -n "$kept_re" ] && [ "$kept_re" = "$kept_orig" ]; then ok; else
    bad "re-signing changed what it keeps: $(diff <(echo "$kept_orig") <(echo "$kept_re"))"
fi
serial() { openssl x509 -in "$1" -noout -serial; }
if [ "$(serial "$tmp/re.pem")" != "$(serial "$tmp/orig.pem")" ]; then ok; else
    bad "re-signed with the same serial"
fi
if cmp -s "$tmp/orig.pem" "$tmp/orig.copy"; then ok; else bad "--resign changed its input"; fi
# ETS-VI-1 holds when re-signing too: the certificate's key as a static key is refused, nothing written
run 2 "$msp" ets cert --resign "$tmp/orig.pem" --static "$tmp/new-p256.pem" --static "$tmp/subject.key" \
    --access "new holders" --ca-cert "$tmp/ca.pem" --ca-key "$tmp/ca.key" --out "$tmp/re2.pem"
if [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "(ETS-VI-1" "$tmp/err" && [ -z "$(ls "$tmp" | grep '^re2')" ]; then ok; else
    bad "ETS-VI-1 on --resign: $(cat "$tmp/err"); $(ls "$tmp" | grep '^re2')"
fi

# unreadable input
run 2 "$msp" ets show "$tmp/nonexistent.pem"
echo "not a certificate" >"$tmp/junk.pem"
run 2 "$msp" ets show "$tmp/junk.pem"
run 2 "$msp" ets show
run 2 "$msp" ets show "$tmp/one.pem" --format yaml
run 0 "$msp" ets --help

finish cli_ets
