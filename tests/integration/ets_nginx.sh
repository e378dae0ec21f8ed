#!/usr/bin/env bash
# ETS with a real server: Debian's nginx made an ETS server by openssl.cnf and the msp-ets provider (nothing
# else changed), two workers, many concurrent curl connections (keep-alive with several requests, P-256 and
# X25519, HelloRetryRequest, the three suites), dumpcap on loopback, then `msp ets decrypt` from the capture
# and the static keys alone. Checked against what is not ours: curl's own SSLKEYLOGFILE, the bodies curl
# saved, tshark decrypting the capture with our key log, tshark's count of TCP conversations.
# Usage: ets_nginx.sh MSP SOURCE_DIR PROVIDER_MODULE
set -uo pipefail
msp=$1
module=$3
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
cd "$tmp" || exit 1
has() { if grep -qF -- "$2" "$1"; then ok; else bad "$1 lacks '$2': $(head -c 600 "$1")"; fi; }
command -v nginx >/dev/null || { bad "nginx is not installed (scripts/deps.sh)"; finish ets_nginx; exit; }

# ---- keys, CA, server certificate with visibility information ----
run 0 "$msp" ets keygen --group x25519 --out x25519.pem
run 0 "$msp" ets keygen --group p256 --out p256.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
    -subj /CN=msp-test-ca >/dev/null 2>&1 || bad "CA"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key >/dev/null 2>&1
run 0 "$msp" ets cert --static x25519.pem --static p256.pem --access "IDS and logger of msp.test" --key ec.key \
    --subject /CN=ets.test --dns ets.test --ca-cert ca.pem --ca-key ca.key --out ec.pem

ets_conf ets.cnf "$tmp/x25519.pem" "$tmp/p256.pem"

# ---- the site: a 300 KB random file between two markers only it contains, and a small index ----
mkdir www
marker=MSP-BIG-$RANDOM$RANDOM
{
    printf '%s-BEGIN\n' "$marker"
    head -c 307200 /dev/urandom
    printf '\n%s-END\n' "$marker"
} >www/big.bin
printf '<html><body>ETS behind nginx</body></html>\n' >www/index.html
big_size=$(wc -c <www/big.bin)

# ---- nginx: started with OPENSSL_CONF in its environment; libssl reads it when the master initialises
# OpenSSL, before it forks the workers (which inherit the loaded providers; nginx clears their environment, and
# they need none: the provider reads the key files by the paths of its section). ----
write_conf() {
    cat >nginx.conf <<EOF
user root;
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/error.log notice;
events { worker_connections 512; }
http {
    access_log $tmp/access.log;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$1 ssl;
        server_name ets.test;
        ssl_certificate $tmp/ec.pem;
        ssl_certificate_key $tmp/ec.key;
        ssl_protocols TLSv1.3;
        ssl_ecdh_curve X25519:prime256v1;
        root $tmp/www;
        # slow enough that the connections overlap however slowly the clients start
        location = /big.bin { limit_rate 256k; }
    }
}
EOF
}
port=
for _ in 1 2 3 4 5 6 7 8; do
    p=$(port_candidate)
    write_conf $p
    : >error.log
    OPENSSL_CONF=$tmp/ets.cnf nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/error.log" -g 'daemon off;' \
        >nginx.out 2>&1 &
    ngx=$!
    pids+=("$ngx")
    for _ in $(seq 100); do
        kill -0 $ngx 2>/dev/null || break # exited: the port was taken, or worse
        # ready when the workers run and the port answers
        if [ "$(grep -c 'start worker process' error.log)" -ge 2 ] && (exec 9<>/dev/tcp/127.0.0.1/$p) 2>/dev/null
        then
            port=$p
            break 2
        fi
        sleep 0.1
    done
    kill $ngx 2>/dev/null
    wait $ngx 2>/dev/null
    grep -q 'Address already in use' error.log nginx.out || break
done
if [ -z "$port" ]; then
    bad "nginx did not start: $(head -c 600 error.log) $(head -c 300 nginx.out)"
    finish ets_nginx
    exit
fi
ok

# ---- capture ----
dumpcap -q -i lo -B 32 -f "tcp port $port" -w cap.pcapng >dumpcap.log 2>&1 &
cap_pid=$!
pids+=("$cap_pid")
for _ in $(seq 100); do
    grep -q "Capturing on" dumpcap.log 2>/dev/null && break
    sleep 0.1
done
grep -q "Capturing on" dumpcap.log || bad "dumpcap did not start: $(cat dumpcap.log)"

# ---- many concurrent connections ----
# job N (one curl, one connection): kind N % 5 chooses the groups, suite and requests
#   0: defaults (X25519, AES-256-GCM), big.bin
#   1: P-256, AES-128-GCM, keep-alive: index, big, index
#   2: X25519, ChaCha20-Poly1305, keep-alive: index, index, index, big
#   3: P-256, ChaCha20-Poly1305, index
#   4: P-384 share first (not static): HelloRetryRequest to X25519, keep-alive: index, index
# nginx's rate limit on big.bin keeps those connections open for about a second each, so that they overlap.
kind_opts=("" "--curves P-256 --tls13-ciphers TLS_AES_128_GCM_SHA256"
    "--curves X25519 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256"
    "--curves P-256 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256" "--curves P-384:X25519")
kind_paths=("big.bin" "index.html big.bin index.html" "index.html index.html index.html big.bin" "index.html"
    "index.html index.html")
kind_expect=('"suite":"TLS_AES_256_GCM_SHA384","group":"x25519"' '"suite":"TLS_AES_128_GCM_SHA256","group":"secp256r1"'
    '"suite":"TLS_CHACHA20_POLY1305_SHA256","group":"x25519"'
    '"suite":"TLS_CHACHA20_POLY1305_SHA256","group":"secp256r1"' '"group":"x25519"')
jobs=30
fetch() {
    local n=$1 k=$(($1 % 5)) args=() i=0
    for path in ${kind_paths[$k]}; do
        i=$((i + 1))
        args+=("https://ets.test:$port/$path" -o "body-$n-$i")
    done
    # shellcheck disable=SC2086 # the options are words
    SSLKEYLOGFILE=$tmp/clients.keylog curl -sS --fail --http1.1 --tlsv1.3 --max-time 30 \
        --cacert ca.pem --resolve "ets.test:$port:127.0.0.1" ${kind_opts[$k]} \
        -w '%{local_port} %{num_connects}\n' "${args[@]}" >w-$n.txt 2>curl-$n.err
    echo $? >rc-$n.txt
}
base=$(jobs -rp | wc -l) # nginx and dumpcap
curls=()
for n in $(seq $jobs); do
    fetch "$n" &
    curls+=($!)
    # at most 12 at once
    while [ "$(jobs -rp | wc -l)" -ge $((base + 12)) ]; do wait -n; done
done
wait "${curls[@]}"
sleep 0.5
kill -INT $cap_pid
wait $cap_pid 2>/dev/null

# What curl did: every job succeeded, one connection each (keep-alive reused it), the bodies are the files.
# (Few processes per job from here on: 30 jobs on a loaded 2-core machine.)
declare -A md5_of
while read -r sum f; do md5_of[$f]=$sum; done < <(md5sum www/index.html www/big.bin body-*)
responses=0
declare -A lport_of
for n in $(seq $jobs); do
    k=$((n % 5))
    rc=
    read -r rc <rc-$n.txt
    if [ "$rc" = 0 ]; then ok; else bad "curl $n: exit status $rc: $(head -c 300 curl-$n.err)"; fi
    connects=0
    while read -r lport c; do connects=$((connects + c)) lport_of[$n]=$lport; done <w-$n.txt
    [ "$connects" -eq 1 ] && ok || bad "curl $n made $connects connections"
    i=0
    for path in ${kind_paths[$k]}; do
        i=$((i + 1))
        responses=$((responses + 1))
        [ "${md5_of[body-$n-$i]:-}" = "${md5_of[www/$path]}" ] && ok || bad "curl $n: body $i is not $path"
    done
done
connections=$jobs
tshark_conv=$(tshark -r cap.pcapng -q -z conv,tcp 2>/dev/null | grep -c '<->')
[ "$tshark_conv" -eq $connections ] && ok || bad "tshark sees $tshark_conv TCP conversations, curl made $connections"
if grep -q -e 'SSL_do_handshake' -e 'msp-ets' -e '\[crit\]' -e '\[alert\]' -e '\[emerg\]' error.log; then
    bad "nginx error.log: $(grep -m3 -e SSL_do_handshake -e msp-ets -e crit -e alert -e emerg error.log)"
else ok; fi

# ---- decrypt with the static keys alone ----
run 0 "$msp" ets decrypt --key x25519.pem --key p256.pem --pcap cap.pcapng --events events.json --out plain \
    --keylog-out ours.keylog
if grep -qF "\"flows\":$connections,\"decrypted\":$connections,\"undecryptable\":0" events.json; then ok; else
    bad "summary: $(grep '"summary"' events.json); $(grep -m3 -e undecryptable -e '"lost":\[[1-9]' -e '"lost":\[0,[1-9]' \
        events.json); dumpcap: $(tr '\n' ' ' <dumpcap.log)"
fi
# the connections were open at the same time: most flows open at once, from the order of flow/flow_end events
concurrent=$(awk '/"event":"flow",/{o++; if (o > m) m = o} /"event":"flow_end"/{o--} END{print m + 0}' events.json)
[ "$concurrent" -gt 1 ] && ok || bad "at most $concurrent flows open at once"
echo "ets_nginx: $connections connections, $responses responses, at most $concurrent open at once"

# One pass each over the events and the plaintext files: flow by client port, handshake line, plaintext size,
# requests, big.bin markers, by flow.
declare -A flow_of hs_of size_of gets_of begin_of end_of
while read -r lport id; do flow_of[$lport]=$id; done < <(sed -n \
    's/^{"event":"flow","flow":\([0-9]*\),.*"client":"127\.0\.0\.1:\([0-9]*\)".*/\2 \1/p' events.json)
while IFS= read -r line; do
    id=${line#*\"flow\":}
    hs_of[${id%%,*}]=$line
done < <(grep -F '"event":"handshake"' events.json)
flow_id() { # plain/flow-ID-CLIENT-SERVER.DIR
    local f=${1#plain/flow-}
    echo "${f%%-*}"
}
while read -r size f; do
    [ "$f" = total ] || size_of[$(flow_id "$f")]=$size
done < <(wc -c plain/*.s2c)
# (the names hold colons: the count is after the last one)
while IFS= read -r line; do gets_of[$(flow_id "${line%:*}")]=${line##*:}; done < <(grep -a -c '^GET /' plain/*.c2s)
while IFS= read -r line; do
    id=$(flow_id "${line%:*}")
    case "$line" in
    *-BEGIN) begin_of[$id]=$((${begin_of[$id]:-0} + 1)) ;;
    *-END) end_of[$id]=$((${end_of[$id]:-0} + 1)) ;;
    esac
done < <(grep -a -o -F -e "$marker-BEGIN" -e "$marker-END" plain/*.s2c)

# per connection: its flow (by curl's local port), handshake parameters, visibility, plaintext
for n in $(seq $jobs); do
    k=$((n % 5))
    id=${flow_of[${lport_of[$n]:-none}]:-}
    if [ -z "$id" ]; then
        bad "curl $n (port ${lport_of[$n]:-}): no flow"
        continue
    fi
    hs=${hs_of[$id]:-}
    case "$hs" in *"${kind_expect[$k]}"*'"visibility_matches":true'*) ok ;; *) bad "curl $n flow $id: $hs" ;; esac
    if [ $k -eq 4 ]; then
        case "$hs" in *'"hrr":true'*) ok ;; *) bad "curl $n flow $id: no HelloRetryRequest: $hs" ;; esac
    fi
    want_req=0 want_big=0
    for path in ${kind_paths[$k]}; do
        want_req=$((want_req + 1))
        [ "$path" = big.bin ] && want_big=$((want_big + 1))
    done
    [ "${gets_of[$id]:-0}" -eq $want_req ] && ok ||
        bad "curl $n flow $id: ${gets_of[$id]:-0} requests in c2s, curl sent $want_req"
    [ "${begin_of[$id]:-0}" -eq $want_big ] && [ "${end_of[$id]:-0}" -eq $want_big ] && ok ||
        bad "curl $n flow $id: big.bin markers in s2c: ${begin_of[$id]:-0} and ${end_of[$id]:-0}, expected $want_big"
    # where big.bin came last, the s2c plaintext ends with it byte for byte
    case "${kind_paths[$k]}" in
    *big.bin)
        if cmp -s -i "$((${size_of[$id]:-0} - big_size)):0" plain/flow-"$id"-*.s2c www/big.bin; then ok; else
            bad "curl $n flow $id: s2c plaintext does not end with big.bin"
        fi
        ;;
    esac
done

# every secret curl's OpenSSL logged is in our key log
grep -v -e '^#' -e '_TRAFFIC_SECRET_N ' clients.keylog | sort -u >clients.sorted
sort -u ours.keylog >ours.sorted
if [ -s clients.sorted ] && [ -z "$(comm -23 clients.sorted ours.sorted)" ]; then ok; else
    bad "secrets curl logged and we did not: $(comm -23 clients.sorted ours.sorted | head -3)"
fi
# 5 secrets per connection
if [ "$(wc -l <clients.sorted)" -ge $((5 * connections)) ]; then ok; else bad "only $(wc -l <clients.sorted) client secrets"; fi

# tshark decrypts the capture with our key log and finds every HTTP response
tshark_resp=$(tshark -r cap.pcapng -o "tls.keylog_file:$tmp/ours.keylog" -Y http.response 2>/dev/null | wc -l)
[ "$tshark_resp" -eq $responses ] && ok || bad "tshark finds $tshark_resp HTTP responses, curl got $responses"

# ---- the client's view: nginx is an ETS server ----
run 0 "$msp" ets probe "127.0.0.1:$port" --servername ets.test --ca ca.pem
has "$tmp/out" "key share: repeated (static)"
has "$tmp/out" "verdict: ETS server: static key share, disclosed by accurate visibility information"

finish ets_nginx
