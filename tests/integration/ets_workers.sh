#!/usr/bin/env bash
# msp ets decrypt on several cores and several hosts (docs/ets-deploy.md). Stock openssl s_server made ETS by
# openssl.cnf and the msp-ets provider listens on every loopback address; stock s_client connects to 127.0.0.1 ..
# 127.0.0.8 (eight address pairs, both shards of two), each a full handshake with a ticket and its resumption.
# Checked: live on lo with --workers 2 (one socket per worker in a PACKET_FANOUT group: every connection and
# resumption decrypted, each packet at the worker our own hash names); the capture file over 2 and 3 workers gives
# the same flows, plaintext, key log and plaintext capture as one; two runs given --shard 0/2 and --shard 1/2
# decrypt every flow exactly once between them, resumptions included.
# Usage: ets_workers.sh MSP SOURCE_DIR PROVIDER_MODULE
set -uo pipefail
msp=$1
module=$3
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
cd "$tmp" || exit 1
for tool in openssl dumpcap tshark ss; do
    command -v $tool >/dev/null || { bad "$tool is not installed"; finish ets_workers; exit; }
done
# summary FILE KEY: a number of the summary line of an events file
summary() { grep '"event":"summary"' "$1" | grep -o "\"$2\":[0-9]*" | cut -d: -f2; }
equal() { if [ "$1" = "$2" ]; then ok; else bad "$3: '$1' != '$2'"; fi; }
# flows DIR: the plaintext files of a --out folder without their flow ids, each with its digest, sorted
flows() { (cd "$1" && for f in flow-*; do echo "${f#flow-*-} $(sha256sum <"$f" | cut -c1-16)"; done | sort); }
# uris PCAP: the HTTP requests tshark reads in a plaintext capture
uris() { tshark -r "$1" -Y http.request -T fields -e http.request.uri 2>/dev/null | sort; }

# ---- keys, certificate, the ETS server on every loopback address ----
run 0 "$msp" ets keygen --group x25519 --out x25519.pem
run 0 "$msp" ets keygen --group p256 --out p256.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key -out ec.pem -days 2 \
    -subj /CN=ets.test >/dev/null 2>&1 || bad "certificate"
ets_conf ets.cnf "$tmp/x25519.pem" "$tmp/p256.pem"
mkfifo s_server.stdin
exec 9<>s_server.stdin
for _ in 1 2 3 4 5 6 7 8; do
    port=$(port_candidate)
    OPENSSL_CONF=$tmp/ets.cnf openssl s_server -accept "0.0.0.0:$port" -tls1_3 -groups X25519:P-256 -cert ec.pem \
        -key ec.key -www >server.log 2>&1 <s_server.stdin &
    server_pid=$!
    for _ in $(seq 50); do
        grep -q '^ACCEPT' server.log 2>/dev/null && break
        kill -0 $server_pid 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^ACCEPT' server.log && break
    kill $server_pid 2>/dev/null
    wait $server_pid 2>/dev/null
done
pids+=($server_pid)
grep -q '^ACCEPT' server.log || { bad "s_server did not start: $(head -c 300 server.log)"; finish ets_workers; exit; }

# ---- live: two workers in a PACKET_FANOUT group on lo, and dumpcap writing the capture file ----
"$msp" ets decrypt --interface lo --workers 2 --filter "tcp port $port" --key x25519.pem --key p256.pem \
    --events live.json --out live >live.out 2>live.err &
live_pid=$!
pids+=($live_pid)
dumpcap -q -i lo -f "tcp port $port" -w cap.pcapng >dumpcap.log 2>&1 &
cap_pid=$!
pids+=($cap_pid)
for _ in $(seq 100); do
    grep -q "capturing on lo" live.err 2>/dev/null && grep -q "Capturing on" dumpcap.log 2>/dev/null && break
    sleep 0.1
done
grep -q "capturing on lo" live.err || bad "msp did not start capturing: $(cat live.err)"
grep -q "Capturing on" dumpcap.log || bad "dumpcap did not start: $(cat dumpcap.log)"

for k in 1 2 3 4 5 6 7 8; do
    for step in out in; do
        printf 'GET /%s-%s HTTP/1.0\r\n\r\n' $k $step >req.txt
        (cat req.txt; sleep 0.2) | timeout 10 openssl s_client -connect "127.0.0.$k:$port" -servername ets.test \
            -sess_$step s$k.pem -ign_eof >c$k$step.out 2>c$k$step.err || true
    done
    grep -q "Reused, TLSv1.3" c${k}in.out && ok || bad "127.0.0.$k: the second connection was not resumed"
done
sleep 0.5
kill -INT $cap_pid
wait $cap_pid 2>/dev/null
kill -INT $live_pid
wait $live_pid
equal "$?" 0 "live --workers 2: exit status ($(cat live.err))"
equal "$(summary live.json decrypted)" 16 "live: decrypted"
equal "$(summary live.json undecryptable)" 0 "live: undecryptable"
equal "$(grep -c '"resumed":true' live.json)" 8 "live: resumptions"
grep -q "misrouted 0," live.err && ok || bad "live: packets reached a worker other than their shard's: $(cat live.err)"
# both workers had flows (127.0.0.4, .5 and .8 are shard 1 of 2, the others shard 0)
grep -Eq "packets per worker: [1-9][0-9]* [1-9][0-9]*;" live.err && ok || bad "live: a worker got nothing: $(cat live.err)"
grep -q "GET /4-in" live/*-127.0.0.4:"$port".c2s && ok || bad "live: the resumption to 127.0.0.4 has no plaintext"

# ---- the capture file: 1, 2 and 3 workers ----
for n in 1 2 3; do
    run 0 "$msp" ets decrypt --pcap cap.pcapng --workers $n --key x25519.pem --key p256.pem --events w$n.json \
        --out w$n --keylog-out w$n.keylog --out-pcap w$n.pcap
    equal "$(summary w$n.json decrypted)" 16 "$n workers: decrypted"
    equal "$(summary w$n.json flows)" 16 "$n workers: flows"
    equal "$(grep -c '"resumed":true' w$n.json)" 8 "$n workers: resumptions"
    # flow ids unique across the workers
    equal "$(grep -o '"event":"flow","flow":[0-9]*' w$n.json | sort -u | wc -l)" 16 "$n workers: distinct flow ids"
done
equal "$(grep -c "packets per worker" err)" 1 "3 workers: the load line"
for n in 2 3; do
    equal "$(flows w$n)" "$(flows w1)" "$n workers: plaintext per flow"
    equal "$(sort w$n.keylog)" "$(sort w1.keylog)" "$n workers: key log"
    equal "$(uris w$n.pcap)" "$(uris w1.pcap)" "$n workers: HTTP requests in the plaintext capture"
done
equal "$(uris w1.pcap | wc -l)" 16 "plaintext capture: requests"
equal "$(flows w2)" "$(flows live)" "live and file: plaintext per flow"

# ---- two hosts: the BPF filter of each one's shard; together every flow exactly once ----
for k in 0 1; do
    run 0 "$msp" ets decrypt --pcap cap.pcapng --shard $k/2 --key x25519.pem --key p256.pem --events s$k.json --out s$k
    flows s$k >s$k.list
done
equal "$(($(summary s0.json decrypted) + $(summary s1.json decrypted)))" 16 "shards: decrypted together"
equal "$(($(grep -c '"resumed":true' s0.json) + $(grep -c '"resumed":true' s1.json)))" 8 "shards: resumptions"
equal "$(comm -12 s0.list s1.list | wc -l)" 0 "shards: flows in both"
equal "$(sort s0.list s1.list)" "$(flows w1)" "shards: every flow, same plaintext"
[ -s s0.list ] && [ -s s1.list ] && ok || bad "a shard is empty"
grep -q -- "-127.0.0.4:" s1.list && ok || bad "127.0.0.4 is not in shard 1 of 2: $(cat s1.list)"
# a host with its shard on two workers, and a --filter besides
run 0 "$msp" ets decrypt --pcap cap.pcapng --shard 1/2 --workers 2 --filter "tcp" --key x25519.pem --events s1w.json \
    --key p256.pem --out s1w
equal "$(flows s1w)" "$(cat s1.list)" "shard 1/2 on 2 workers"

# ---- bad arguments ----
for bad_arg in "--workers 0" "--workers 257" "--workers x" "--shard 2/2" "--shard 1" "--shard -1/2" "--shard 0/0" \
    "--shard 1/2x"; do
    # shellcheck disable=SC2086
    run 2 "$msp" ets decrypt --pcap cap.pcapng --key x25519.pem $bad_arg
    grep -q "^msp ets decrypt: error: --" err && ok || bad "$bad_arg: $(cat err)"
done
finish ets_workers
