#!/usr/bin/env bash
# ETS end to end on loopback: stock `openssl s_server` made an ETS server by openssl.cnf and the msp-ets
# provider; stock `openssl s_client` and curl as clients; dumpcap captures; `msp ets decrypt` recovers every
# connection from the capture and the static keys alone. What it finds is checked against what is not ours:
# the clients' own SSLKEYLOGFILE (OpenSSL's secrets), the bytes the clients sent and received, and tshark
# decrypting the same capture with our key log. Scenarios of ets.md 8.2: X25519 and P-256, RSA and ECDSA
# certificates, the three suites, HelloRetryRequest, resumption, 0-RTT, KeyUpdate; negative controls: wrong
# key, resumption without its issuing connection, capture cut inside the handshake.
# Usage: ets_e2e.sh MSP SOURCE_DIR PROVIDER_MODULE
set -uo pipefail
msp=$1
module=$3
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
cd "$tmp" || exit 1
has() { if grep -qF -- "$2" "$1"; then ok; else bad "$1 lacks '$2': $(head -c 600 "$1")"; fi; }
# flowline N EVENT: the JSON lines of that event for flow N
flowline() { grep -F "\"event\":\"$2\",\"flow\":$1," events.json; }
flow_has() {
    if flowline "$1" "$2" | grep -qF -- "$3"; then ok; else bad "flow $1 $2 lacks '$3': $(flowline "$1" "$2")"; fi
}

# ---- keys, CA, certificates with visibility information ----
run 0 "$msp" ets keygen --group x25519 --out x25519.pem
run 0 "$msp" ets keygen --group p256 --out p256.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
    -subj /CN=msp-test-ca >/dev/null 2>&1 || bad "CA"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key >/dev/null 2>&1
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key >/dev/null 2>&1
for k in ec rsa; do
    run 0 "$msp" ets cert --static x25519.pem --static p256.pem --access "IDS and logger of msp.test" --key $k.key \
        --subject /CN=ets.test --dns ets.test --ca-cert ca.pem --ca-key ca.key --out $k.pem
done
openssl verify -CAfile ca.pem ec.pem rsa.pem >/dev/null 2>&1 && ok || bad "certificates do not verify"

ets_conf ets.cnf "$tmp/x25519.pem" "$tmp/p256.pem"

# start_server NAME ARGS...: stock openssl s_server with our openssl.cnf on a free port (lib.sh); sets $port
start_server() {
    local name=$1
    shift
    s_server "$name.log" "$tmp/ets.cnf" X25519:P-256 "$@"
}
start_server www -cert ec.pem -key ec.key -dcert rsa.pem -dkey rsa.key -www
www_port=$port
start_server early -cert ec.pem -key ec.key -early_data
early_port=$port

# The middlebox live on the interface (the www server's connections), and the capture: dumpcap on loopback, both
# servers' ports; each says when it is capturing.
"$msp" ets decrypt --interface lo --filter "tcp port $www_port" --key x25519.pem --key p256.pem \
    --events live.json >live.out 2>live.err &
live_pid=$!
pids+=($live_pid)
for _ in $(seq 100); do
    grep -q "capturing on lo" live.err 2>/dev/null && break
    sleep 0.1
done
# The capture: dumpcap on loopback, both servers' ports.
dumpcap -q -i lo -f "tcp port $www_port or tcp port $early_port" -w cap.pcapng >dumpcap.log 2>&1 &
cap_pid=$!
pids+=($cap_pid)
for _ in $(seq 100); do
    grep -q "Capturing on" dumpcap.log 2>/dev/null && break
    sleep 0.1
done
grep -q "Capturing on" dumpcap.log || bad "dumpcap did not start: $(cat dumpcap.log)"

# client N PORT ARGS...: s_client with an HTTP request on its stdin; what it received goes to cN.out
client() {
    local n=$1 p=$2
    shift 2
    printf 'GET /conn%s HTTP/1.0\r\n\r\n' "$n" >req$n.txt
    (cat req$n.txt; sleep 0.3) | timeout 10 openssl s_client -connect "127.0.0.1:$p" -servername ets.test \
        -CAfile ca.pem -keylogfile client.keylog -ign_eof "$@" >c$n.out 2>c$n.err || true
}
client 1 "$www_port"                                                   # X25519, AES-256-GCM, ECDSA
client 2 "$www_port" -groups P-256 -ciphersuites TLS_AES_128_GCM_SHA256 -sigalgs rsa_pss_rsae_sha256
client 3 "$www_port" -ciphersuites TLS_CHACHA20_POLY1305_SHA256
client 4 "$www_port" -groups P-384:X25519                              # HelloRetryRequest to X25519
client 5 "$www_port" -sess_out sess5.pem                               # a ticket ...
client 6 "$www_port" -sess_in sess5.pem                                # ... and its resumption
# KeyUpdate with update_requested (s_client's 'K' command, which -ign_eof would turn off), then the request
# under the new keys
(printf 'K\n'; sleep 0.3; printf 'GET /conn7 HTTP/1.0\r\n\r\n'; sleep 0.5) | timeout 10 openssl s_client \
    -connect "127.0.0.1:$www_port" -servername ets.test -CAfile ca.pem -keylogfile client.keylog \
    >c7.out 2>c7.err || true
SSLKEYLOGFILE=$tmp/client.keylog timeout 10 curl -s --cacert ca.pem --resolve "ets.test:$www_port:127.0.0.1" "https://ets.test:$www_port/curl" \
    -o curl.out || bad "curl failed"
# 0-RTT: a ticket allowing early data, then early data on its resumption
# (each client's stdin stays open until what it is for happened, at most 10 s: a fixed pause is too short on a
# loaded machine, and s_client ends at the end of its input)
hold() {
    for _ in $(seq 100); do
        "$@" && break
        sleep 0.1
    done
}
(printf 'first\n'; hold test -s sess9.pem) | timeout 10 openssl s_client -connect "127.0.0.1:$early_port" \
    -servername ets.test -CAfile ca.pem -keylogfile client.keylog -sess_out sess9.pem >c9.out 2>c9.err || true
printf 'EARLY DATA from the client\n' >early.txt
(hold grep -q "EARLY DATA from the client" early.log) | timeout 10 openssl s_client -connect "127.0.0.1:$early_port" \
    -servername ets.test -CAfile ca.pem -keylogfile client.keylog -sess_in sess9.pem -early_data early.txt \
    >c10.out 2>c10.err || true
# 0-RTT refused: the same ticket offered to the other server, which cannot use it (full handshake)
(hold grep -q "Early data was" c11.out) | timeout 10 openssl s_client -connect "127.0.0.1:$www_port" \
    -servername ets.test -CAfile ca.pem -keylogfile client.keylog -sess_in sess9.pem -early_data early.txt \
    >c11.out 2>c11.err || true
sleep 0.5
kill -INT $cap_pid
wait $cap_pid 2>/dev/null
kill -INT $live_pid
wait $live_pid
live_status=$?
if [ $live_status -eq 0 ]; then ok; else bad "live decrypt exited $live_status: $(cat live.err)"; fi
# connections 1-8 and 11 went to the www server
has live.json '"flows":9,"decrypted":9,"undecryptable":0'
has early.log "EARLY DATA from the client" # the server took it as early data

# ---- decrypt with the static keys alone ----
run 0 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --events events.json --out plain \
    --keylog-out ours.keylog --out-pcap plain.pcap
has events.json '"event":"summary"'
has events.json '"flows":11,"decrypted":11,"undecryptable":0'
flow_has 1 handshake '"suite":"TLS_AES_256_GCM_SHA384","group":"x25519"'
flow_has 1 handshake '"visibility_matches":true'
flow_has 2 handshake '"suite":"TLS_AES_128_GCM_SHA256","group":"secp256r1"'
flow_has 2 handshake '"visibility_matches":true'
flow_has 3 handshake '"suite":"TLS_CHACHA20_POLY1305_SHA256"'
flow_has 4 handshake '"hrr":true'
flow_has 4 handshake '"group":"x25519"'
flow_has 5 ticket '"lifetime":'
flow_has 6 handshake '"resumed":true'
# a resumption shows no certificate: the visibility verdict of the connection that issued its ticket, and which (#13)
flow_has 6 handshake '"visibility_matches":true,"resumed_from":5'
flow_has 7 key_update '"dir":"client"'
flow_has 7 key_update '"dir":"server"' # update_requested: the server updated too
flow_has 10 handshake '"resumed":true,"hrr":false,"early_data":"accepted"'
flow_has 10 handshake '"resumed_from":9'
flow_has 11 handshake '"resumed":false,"hrr":false,"early_data":"rejected"'

# Every secret OpenSSL's client logged is in our key log (derived from the static keys alone).
# (OpenSSL 3.0 also logs the secrets after a KeyUpdate under its own label CLIENT_TRAFFIC_SECRET_N, which no
# standard knows; Wireshark derives them. That the decryptor followed the update shows in flow 7's plaintext.)
grep -v -e '^#' -e '_TRAFFIC_SECRET_N ' client.keylog | sort -u >client.sorted
sort -u ours.keylog >ours.sorted
if [ -s client.sorted ] && [ -z "$(comm -23 client.sorted ours.sorted)" ]; then ok; else
    bad "secrets the client logged and we did not: $(comm -23 client.sorted ours.sorted | head -3)"
fi
# 5 secrets for each of the 11 connections, 2 more for each of the two that sent early data
if [ "$(wc -l <client.sorted)" -ge 59 ]; then ok; else bad "only $(wc -l <client.sorted) client secrets"; fi

# Plaintext: what each client sent, and what it received.
for n in 1 2 3 4 5 6; do
    f=$(ls plain/flow-$n-*.c2s 2>/dev/null)
    if [ -n "$f" ] && cmp -s "$f" req$n.txt; then ok; else bad "flow $n: client plaintext differs from req$n.txt"; fi
    has "$(ls plain/flow-$n-*.s2c)" "HTTP/1.0 200 ok"
done
has "$(ls plain/flow-7-*.c2s)" "GET /conn7 HTTP/1.0"
s2c8=$(ls plain/flow-8-*.s2c)
if [ "$(tail -c "$(wc -c <curl.out)" "$s2c8" | md5sum)" = "$(md5sum <curl.out)" ]; then ok; else
    bad "flow 8: the body curl received is not the end of the server plaintext"
fi
has "$(ls plain/flow-10-*.c2s)" "EARLY DATA from the client"
# refused early data never reached the server's application: it is not part of the plaintext
if ! grep -qs "EARLY DATA" plain/flow-11-*.c2s; then ok; else bad "flow 11: rejected early data in the plaintext"; fi

# tshark decrypts the same capture with our key log, and sees the same plaintext both ways.
# follow_hex CAPTURE PROTO STREAM: two lines, the hex of each side (tshark indents the second node's data)
follow_hex() {
    tshark -r "$1" -o "tls.keylog_file:$tmp/ours.keylog" -q -z "follow,$2,raw,$3" 2>/dev/null |
        awk '/^====/{n++; next} n==1 && /^Node|^Follow|^Filter/{next} n==1 && /^\t/{sub(/^\t/,""); b=b $0; next} n==1{a=a $0} END{print a; print b}'
}
hexof() { od -An -tx1 -v "$1" | tr -d ' \n'; }
for n in 1 2 3 4 6 7 8 10; do
    c2s=$(hexof "$(ls plain/flow-$n-*.c2s)")
    s2c=$(hexof "$(ls plain/flow-$n-*.s2c 2>/dev/null || echo /dev/null)")
    for proto in tls:cap.pcapng tcp:plain.pcap; do
        mapfile -t sides < <(follow_hex "${proto#*:}" "${proto%%:*}" $((n - 1)))
        if { [ "${sides[0]:-}" = "$c2s" ] && [ "${sides[1]:-}" = "$s2c" ]; } ||
            { [ "${sides[0]:-}" = "$s2c" ] && [ "${sides[1]:-}" = "$c2s" ]; }; then ok; else
            bad "flow $n: tshark ($proto) sees other plaintext: ${sides[0]:0:80} / ${sides[1]:0:80}"
        fi
    done
done
# the plaintext capture has valid TCP checksums and one conversation per flow
bad_sums=$(tshark -r plain.pcap -o tcp.check_checksum:TRUE -Y 'tcp.checksum.status == 0' 2>/dev/null | wc -l)
if [ "$bad_sums" -eq 0 ]; then ok; else bad "$bad_sums packets with bad checksums in plain.pcap"; fi

# ---- negative controls ----
"$msp" ets keygen --group x25519 --out wrong.pem >/dev/null
run 1 "$msp" ets decrypt --key wrong.pem --pcap cap.pcapng --events wrong.json
has wrong.json '"reason":"no_static_key"'
has "$tmp/err" "connections could not be decrypted"
# the resumed connection without the one that issued its ticket
tshark -r cap.pcapng -Y "tcp.stream == 5" -w resumed.pcapng 2>/dev/null
run 1 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap resumed.pcapng --events resumed.json
has resumed.json '"reason":"psk_unknown"'
# a capture cut inside the first handshake (its first 5 packets: SYN, SYN-ACK, ACK, ClientHello, ...)
tshark -r cap.pcapng -Y "tcp.stream == 0 && frame.number <= 5" -w cut.pcapng 2>/dev/null
run 1 "$msp" ets decrypt --key x25519.pem --pcap cut.pcapng --events cut.json
has cut.json '"reason":"truncated"'
# a capture file cut inside its last packet (a capture killed hard): all before it decrypted, status 1
head -c $(($(wc -c <cap.pcapng) - 50)) cap.pcapng >cutfile.pcapng
run 1 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cutfile.pcapng --events cutfile.json
has cutfile.json '"capture_error":"capture cutfile.pcapng: truncated'
has cutfile.json '"decrypted":11,"undecryptable":0'
has "$tmp/err" "(what came before it was decrypted)"
# bad input: one line, status 2, no half-written outputs
run 2 "$msp" ets decrypt --key x25519.pem --pcap missing.pcap --keylog-out never.keylog
[ ! -e never.keylog ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && ok || bad "missing capture: $(cat "$tmp/err")"
run 2 "$msp" ets decrypt --key ca.pem --pcap cap.pcapng
run 2 "$msp" ets decrypt --pcap cap.pcapng

# ---- every line of every run above is valid against the documented schema (docs/ets-events.schema.json, with
# additionalProperties false: an undocumented member fails), "event" first, "time" and "ts" the same instant ----
if python3 "$(dirname "$0")/ets_events_check.py" "$2/docs/ets-events.schema.json" \
    --require flow,handshake,key_update,ticket,alert,undecryptable,flow_end,summary \
    events.json live.json wrong.json resumed.json cut.json cutfile.json >schema.out 2>&1; then ok; else
    bad "events against docs/ets-events.schema.json: $(head -c 1500 schema.out)"
fi
# the times are the capture's: the first flow line's is the first packet's, as tshark reads it
first=$(tshark -r cap.pcapng -c 1 -T fields -e frame.time_epoch 2>/dev/null)
ts1=$(grep -m1 -F '"event":"flow"' events.json | sed -n 's/.*"ts":\([0-9.]*\),.*/\1/p')
if [ -n "$first" ] && [ "${first:0:17}" = "${ts1:0:17}" ]; then ok; else bad "flow 1 at ts $ts1, capture starts at $first"; fi

# ---- the client's view ----
run 0 "$msp" ets probe "127.0.0.1:$www_port" --servername ets.test --ca ca.pem
has "$tmp/out" "key share: repeated (static)"
has "$tmp/out" "verdict: ETS server: static key share, disclosed by accurate visibility information"
run 0 "$msp" ets probe "127.0.0.1:$www_port" --servername ets.test --require-visibility
run 1 "$msp" ets probe "127.0.0.1:$www_port" --servername ets.test --refuse-ets
# a stock server (no openssl.cnf): fresh shares, no visibility information, accepted by both policies
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout plain.key -out plain.crt -days 2 \
    -subj /CN=plain.test >/dev/null 2>&1
openssl s_server -accept "127.0.0.1:$((www_port + 1))" -tls1_3 -cert plain.crt -key plain.key -www \
    >plainsrv.log 2>&1 </dev/null &
pids+=($!)
waitfor plainsrv.log ACCEPT
run 0 "$msp" ets probe "127.0.0.1:$((www_port + 1))" --refuse-ets --format json
has "$tmp/out" '"static_key_share":false'

finish ets_e2e
