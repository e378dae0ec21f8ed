#!/usr/bin/env bash
# msp middlebox --out-pcap: the plaintext of the contexts the middlebox may read, as one TCP flow per session
# with the client's and the server's addresses, read back with tshark: the flow's two directions are exactly
# the plaintext sent each way, and a context the middlebox cannot read never appears.
# Usage: tlmsp_mbpcap.sh MSP SOURCE_DIR
set -uo pipefail
msp=$1
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
has() { if grep -qE -- "$2" "$1"; then ok; else bad "$1 lacks /$2/: $(head -c 600 "$1")"; fi; }
same() { if [ "$1" = "$2" ]; then ok; else bad "$3: got '$1', expected '$2'"; fi; }

if ! command -v tshark >/dev/null; then
    echo "tlmsp_mbpcap: tshark is missing (scripts/deps.sh installs it)" >&2
    if [ "${CI:-}" = true ]; then exit 1; fi
    echo "tlmsp_mbpcap: SKIP"
    exit 0
fi
cd "$tmp" || exit 1
for n in server mbox1; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$n-key.pem" -out "$n-cert.pem" -days 2 -subj "/CN=$n" \
        >/dev/null 2>&1
done
# contexts: 1 read-only and 2 writable at the middlebox, 3 hidden from it; the server reflects everything
cat >mb.ucl <<'EOF'
context { id = 1; tag = one }
context { id = 2; tag = two }
context { id = 3; tag = three }
activity {
    tag = send-all
    match { at = 0 }
    action {
        send { context = one; data = "GET /one HTTP/1.1%0d%0a" }
        send { context = two; data = "Host: two%0d%0a%0d%0a" }
        send { context = three; data = "secret-three" }
    }
}
activity { tag = done; match { which = three; data = "secret-three" } action { shutdown = yes } }
client { address = tlmsp://localhost; function = [ send-all, done ] }
middlebox {
    tag = mbox1
    address = tlmsp://localhost:10401
    context { which = one; access = r }
    context { which = two; access = rw }
    context { which = three; access = none }
}
server { address = tlmsp://localhost:10455 }
EOF
shift_by=$(free_shift)

run 2 "$msp" middlebox -c mb.ucl -t mbox1 --out-pcap "$tmp/no/such/dir/x.pcap"
has "$tmp/err" "^msp middlebox: --out-pcap: "

"$msp" server -c mb.ucl -p "$shift_by" -r >srv.log 2>&1 &
srv_pid=$!
pids+=("$srv_pid")
"$msp" middlebox -c mb.ucl -t mbox1 -p "$shift_by" --out-pcap "$tmp/mb.pcap" >mb.log 2>&1 &
mb_pid=$!
pids+=("$mb_pid")
wait_listen $((10455 + shift_by)) "$srv_pid" "msp server" srv.log
wait_listen $((10401 + shift_by)) "$mb_pid" "msp middlebox" mb.log
for round in 1 2; do
    timeout 20 "$msp" client -c mb.ucl -p "$shift_by" >"cli$round.log" 2>&1
    st=$?
    same "$st" 0 "client $round exit status ($(tail -c 300 "cli$round.log"))"
done
# the capture is written when the middlebox stops
kill -TERM "$mb_pid"
wait "$mb_pid"
same "$?" 0 "middlebox exit status after SIGTERM ($(tail -c 300 mb.log))"
if [ -f mb.pcap ]; then ok; else bad "no mb.pcap: $(tail -c 300 mb.log)"; fi

# one flow per session, from the client's port to the server's
flows=$(tshark -r mb.pcap -T fields -e tcp.stream 2>/dev/null | sort -u | wc -l)
same "$flows" 2 "flows in the capture"
dport=$(tshark -r mb.pcap -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' -T fields -e tcp.dstport 2>/dev/null | sort -u)
same "$dport" "$((10455 + shift_by))" "the server's port"
sport=$(tshark -r mb.pcap -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' -T fields -e tcp.srcport 2>/dev/null | head -1)
if [ "$sport" != "$((10401 + shift_by))" ] && [ -n "$sport" ]; then ok; else bad "client port $sport"; fi

# each direction is exactly the readable plaintext sent that way (follow: client lines first column, server tabbed)
tshark -r mb.pcap -qz follow,tcp,raw,0 2>/dev/null >follow.txt
# (compared in hex, so that every byte counts, the last CR LF too)
to_server=$(awk '/^====/ {n++; next} n == 1 && /^[0-9a-f]+$/' follow.txt | tr -d '\n')
to_client=$(awk '/^====/ {n++; next} n == 1 && /^\t[0-9a-f]+$/' follow.txt | tr -d '\t\n')
want=$(printf 'GET /one HTTP/1.1\r\nHost: two\r\n\r\n' | od -An -tx1 | tr -d ' \n')
same "$to_server" "$want" "client->server plaintext"
same "$to_client" "$want" "server->client plaintext (reflected)"
if grep -q "secret-three" mb.pcap; then bad "the hidden context is in the capture"; else ok; fi
# tshark sees HTTP in it: the capture feeds an IDS as it is
method=$(tshark -r mb.pcap -Y http.request -T fields -e http.request.method 2>/dev/null | head -1)
same "$method" "GET" "HTTP request method seen by tshark"

finish tlmsp_mbpcap
