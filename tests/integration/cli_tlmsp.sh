#!/usr/bin/env bash
# msp client / middlebox / server / demo as a user runs them, over loopback
# sockets: the demo, a two-middlebox pingpong through the three programs,
# a refused middlebox list, and the one-line errors for bad input.
# Usage: cli_tlmsp.sh MSP SOURCE_DIR
set -uo pipefail
msp=$1
src=$2
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
has() { if grep -qE -- "$2" "$1"; then ok; else bad "$1 lacks /$2/: $(head -c 600 "$1")"; fi; }
# exited WANT GOT FILE: a program run in the foreground with its output in FILE exited WANT (timeout's 124 is a failure)
exited() { if [ "$2" -eq "$1" ]; then ok; else bad "exited $2, expected $1: $(tail -c 400 "$3")"; fi; }
lines() { local n; n=$(wc -l <"$1"); if [ "$n" -eq "$2" ]; then ok; else bad "$1 has $n lines, expected $2: $(head -c 400 "$1")"; fi; }

# A port shift of our own (free_shift: free now, and below the ephemeral range, where a client's source port
# could hold one of ours), so that parallel runs do not collide.
shift_by=$(free_shift)

# ---- help and usage ----
for c in client server middlebox demo; do
    run 0 "$msp" "$c" --help
    has "$tmp/out" "usage: msp $c"
done
run 2 "$msp" client
lines "$tmp/err" 1
has "$tmp/err" "no configuration"
run 2 "$msp" middlebox -c "$src/data/tlmsp/pingpong-2mbox.ucl"
has "$tmp/err" "either -a or one or more -t"
run 2 "$msp" client -c "$src/data/tlmsp/pingpong.ucl" -p nope
has "$tmp/err" "not a port shift"

# ---- a bad configuration: one line with the file and line ----
printf 'context { id = 1 }\nclient { address = tlmsp://localhost; colour = red }\n' >"$tmp/bad.ucl"
run 2 "$msp" client -c "$tmp/bad.ucl"
lines "$tmp/err" 1
has "$tmp/err" "bad.ucl:2: .*colour"
run 2 "$msp" middlebox -c "$src/data/tlmsp/pingpong-2mbox.ucl" -t nosuch
has "$tmp/err" "no middlebox tagged 'nosuch'"
cp "$src/data/tlmsp/pingpong-2mbox.ucl" "$tmp/pp2.ucl"
run 2 "$msp" server -c "$tmp/pp2.ucl" -p "$shift_by"
has "$tmp/err" "server-cert.pem"
# a private key that is not the certificate's: refused at start (exit 2, one line), not at every handshake
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/server-key.pem" -out "$tmp/server-cert.pem" -days 2 \
    -subj "/CN=server" >/dev/null 2>&1
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/server-key.pem" 2>/dev/null
run 2 "$msp" server -c "$tmp/pp2.ucl" -p "$shift_by"
lines "$tmp/err" 1
has "$tmp/err" "server-key.pem: this private key does not match the certificate server-cert.pem"
rm -f "$tmp/server-key.pem" "$tmp/server-cert.pem"

# ---- the demo ----
run 0 "$msp" demo --rounds 2
has "$tmp/out" "mbox1: activity mbox1-ping sent 4 bytes in context 1: \"PING\""
has "$tmp/out" "closed cleanly"

# ---- two middleboxes through the three programs ----
mkcert() {
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/$1-key.pem" -out "$tmp/$1-cert.pem" -days 2 \
        -subj "/CN=$1" >/dev/null 2>&1
}
for n in server mbox1 mbox2; do mkcert $n; done
# The clients' copy ends the session after the first pong (shutdown: close_notify), so a client that closes cleanly
# exits 0 by itself; timeout's 124 or an error's 1 is a failure.
sed '/tag = client-sees-pong/,/^}/ s/action {/action { shutdown = yes/' "$tmp/pp2.ucl" >"$tmp/pp2c.ucl"
"$msp" server -c "$tmp/pp2.ucl" -p "$shift_by" -P >"$tmp/srv" 2>&1 &
pids+=($!)
"$msp" middlebox -c "$tmp/pp2.ucl" -p "$shift_by" -a -P >"$tmp/mb" 2>&1 &
pids+=($!)
wait_listening "${pids[@]: -2}"
timeout 8 "$msp" client -c "$tmp/pp2c.ucl" -p "$shift_by" -P -v >"$tmp/cli" 2>&1
exited 0 $? "$tmp/cli"
has "$tmp/cli" "handshake complete, 2 middlebox"
has "$tmp/cli" "client-sees-pong matched 11 bytes in context 2: \"server-pong\""
has "$tmp/mb" "mbox1-ping sent 4 bytes in context 1: \"PING\""
has "$tmp/srv" "server-pong matched 4 bytes in context 1: \"PING\""

# ---- discovery: the server inserts mbox2, the client connects again through both (7.2) ----
cp "$src/data/tlmsp/interop/discovery.ucl" "$tmp/disc.ucl"
sed 's/tag = report-pong\(.*\)action { }/tag = report-pong\1action { shutdown = yes }/' "$tmp/disc.ucl" >"$tmp/discc.ucl"
"$msp" server -c "$tmp/disc.ucl" -p "$shift_by" -P >"$tmp/dsrv" 2>&1 &
pids+=($!)
"$msp" middlebox -c "$tmp/disc.ucl" -p "$shift_by" -a >"$tmp/dmb" 2>&1 &
pids+=($!)
wait_listening "${pids[@]: -2}"
timeout 8 "$msp" client -c "$tmp/discc.ucl" -p "$shift_by" -P -v >"$tmp/dcli" 2>&1
exited 0 $? "$tmp/dcli"
has "$tmp/dcli" "middleboxes discovered; connecting again to tlmsp://localhost:10002"
has "$tmp/dcli" "handshake complete, 2 middlebox"
has "$tmp/dcli" "report-pong matched 11 bytes in context 1: \"server-pong\""

# ---- a list the server does not accept: alert 171, client exits 1 with one line ----
cat >"$tmp/direct.ucl" <<'EOF'
context { id = 1 }
client { address = tlmsp://localhost }
server { address = tlmsp://localhost:10455 }
EOF
run 1 timeout 5 "$msp" client -c "$tmp/direct.ucl" -p "$shift_by"
lines "$tmp/err" 1
has "$tmp/err" "middlebox_authorization_failure"

# ---- a forbidden middlebox: the server refuses the connection with 171 (the reference's behaviour, 7.4) ----
sed 's/discovered = yes/discovered = no; forbidden = yes/' "$tmp/disc.ucl" >"$tmp/forbid.ucl"
"$msp" server -c "$tmp/forbid.ucl" -p "$shift_by" >"$tmp/fsrv" 2>&1 &
fpid=$!
"$msp" middlebox -c "$tmp/forbid.ucl" -p "$shift_by" -a >"$tmp/fmb" 2>&1 &
fmpid=$!
wait_listening $fpid $fmpid
run 1 timeout 5 "$msp" client -c "$tmp/forbid.ucl" -p "$shift_by"
has "$tmp/err" "middlebox_authorization_failure"
kill $fpid $fmpid 2>/dev/null
wait $fpid $fmpid 2>/dev/null

# ---- --trust: every peer verified; a certificate from outside the store ends the handshake (bad_certificate) ----
cat "$tmp/server-cert.pem" "$tmp/mbox1-cert.pem" "$tmp/mbox2-cert.pem" >"$tmp/trust.pem"
kill "${pids[@]}" 2>/dev/null
wait 2>/dev/null
pids=()
"$msp" server -c "$tmp/pp2.ucl" -p "$shift_by" --trust "$tmp/trust.pem" >"$tmp/tsrv" 2>&1 &
pids+=($!)
"$msp" middlebox -c "$tmp/pp2.ucl" -p "$shift_by" -a --trust "$tmp/trust.pem" >"$tmp/tmb" 2>&1 &
pids+=($!)
wait_listening "${pids[@]: -2}"
timeout 8 "$msp" client -c "$tmp/pp2c.ucl" -p "$shift_by" -P -v --trust "$tmp/trust.pem" >"$tmp/tcli" 2>&1
exited 0 $? "$tmp/tcli"
has "$tmp/tcli" "client-sees-pong matched 11 bytes in context 2"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/other-key.pem" -out "$tmp/other.pem" -days 2 -subj "/CN=other" \
    >/dev/null 2>&1
run 1 timeout 5 "$msp" client -c "$tmp/pp2.ucl" -p "$shift_by" --trust "$tmp/other.pem"
has "$tmp/err" "bad_certificate"
run 2 "$msp" client -c "$tmp/pp2.ucl" --trust "$tmp/nonexistent.pem"
has "$tmp/err" "no PEM certificate could be read"
kill "${pids[@]}" 2>/dev/null
wait 2>/dev/null
pids=()

# ---- a next hop whose name does not resolve: that session is refused (alert 170, one clear line), another carries on
# The middlebox looks names up without stopping its loop. As root with unshare, its resolv.conf points at a stub that
# holds every query until the other session is done, then answers NXDOMAIN: the other session ran while the lookup
# was pending. Otherwise the system's resolver answers (or gives up) as it does.
cp "$src/data/tlmsp/pingpong-1mbox.ucl" "$tmp/pp1.ucl"
sed '/tag = client-sees-pong/,/^}/ s/action {/action { shutdown = yes/' "$tmp/pp1.ucl" >"$tmp/pp1c.ucl"
sed 's#tlmsp://localhost:10455#tlmsp://nosuch.invalid:10455#' "$tmp/pp1.ucl" >"$tmp/pp1bad.ucl"
mbox_cmd=("$msp" middlebox -c "$tmp/pp1.ucl" -p "$shift_by" -a -v)
stub=no
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null && command -v python3 >/dev/null &&
    unshare -m true 2>/dev/null; then
    cat >"$tmp/dns.py" <<'PY'
import os, socket, sys
log, release = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.83", 53))
s.settimeout(0.05)
held = []
def say(line):
    with open(log, "a") as f:
        f.write(line + "\n")
def nxdomain(q):  # the question echoed, no answer, rcode 3
    end = 12
    while q[end] != 0:
        end += q[end] + 1
    return q[:2] + bytes([0x80 | (q[2] & 0x79), 0x83]) + b"\x00\x01\x00\x00\x00\x00\x00\x00" + q[12:end + 5]
say("listening")
while True:
    try:
        q, peer = s.recvfrom(512)
        held.append((q, peer))
        say("query")
    except socket.timeout:
        pass
    if os.path.exists(release):
        for q, peer in held:
            s.sendto(nxdomain(q), peer)
            say("answered")
        held = []
PY
    python3 "$tmp/dns.py" "$tmp/dns.log" "$tmp/dns.release" &
    pids+=($!)
    if waitfor "$tmp/dns.log" listening; then
        stub=yes
        echo "nameserver 127.0.0.83" >"$tmp/resolv.conf"
        mbox_cmd=(unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$tmp/resolv.conf" "${mbox_cmd[@]}")
    fi
fi
"$msp" server -c "$tmp/pp1.ucl" -p "$shift_by" >"$tmp/nsrv" 2>&1 &
pids+=($!)
"${mbox_cmd[@]}" >"$tmp/nmb" 2>&1 &
pids+=($!)
wait_listening "${pids[@]: -2}"
timeout 10 "$msp" client -c "$tmp/pp1bad.ucl" -p "$shift_by" >"$tmp/ncli-bad" 2>&1 &
bad_pid=$!
if [ $stub = yes ]; then
    eventually "$tmp/dns.log" query
fi
timeout 8 "$msp" client -c "$tmp/pp1c.ucl" -p "$shift_by" -P >"$tmp/ncli" 2>&1
exited 0 $? "$tmp/ncli"
has "$tmp/ncli" "client-sees-pong matched 11 bytes in context 1: \"server-pong\""
if [ $stub = yes ]; then
    if grep -q answered "$tmp/dns.log"; then bad "the stub answered before it was told to"; else ok; fi
    touch "$tmp/dns.release"
fi
wait $bad_pid
exited 1 $? "$tmp/ncli-bad"
lines "$tmp/ncli-bad" 1
has "$tmp/ncli-bad" "connection ended: middlebox_route_failure"
has "$tmp/nmb" "^msp middlebox: next hop nosuch.invalid:[0-9]+: (cannot resolve the name|no answer from the name servers)"
has "$tmp/nmb" "^msp middlebox: mbox1: connection ended: middlebox_route_failure"
if [ $stub = yes ]; then
    # NXDOMAIN once released; on a slow machine c-ares may have given up first (its own time-out), which is as good
    has "$tmp/nmb" "cannot resolve the name: (Domain name not found|Timeout)|no answer from the name servers"
    # the other session's handshake went through the middlebox before the lookup ended
    grep -E "handshake complete|nosuch.invalid" "$tmp/nmb" | head -1 >"$tmp/nfirst"
    has "$tmp/nfirst" "handshake complete"
fi
kill "${pids[@]}" 2>/dev/null
wait 2>/dev/null
pids=()

# ---- a middlebox matches across containers: the client sends "pi" and "ng" in two containers in a row; the middlebox
# holds the first (it may begin "ping"), the second completes the match, and the server sees "PING" ----
cat >"$tmp/split.ucl" <<'EOF'
context { id = 1; tag = ctx-ping }
activity {
    tag = client-split-ping
    match { at = 200 }
    action { send { context = ctx-ping; data = "pi" } send { context = ctx-ping; data = "ng" } }
}
activity {
    tag = client-sees-pong
    match { which = *; data = "server-pong" }
    action { shutdown = yes }
}
activity {
    tag = mbox-ping
    match { which = ctx-ping; data = "ping" }
    action { send { context = ctx-ping; data = "PING" } }
}
activity {
    tag = mbox-pong
    match { which = ctx-ping; data = "PONG" }
    action { send { context = ctx-ping; data = "server-pong" } }
}
activity {
    tag = server-pong
    match { which = *; data = "PING" }
    action { send { context = ctx-ping; data = "PONG" } }
}
client { address = tlmsp://localhost; function = [ client-split-ping, client-sees-pong ] }
middlebox {
    tag = mbox1
    address = tlmsp://localhost:10411
    context { which = ctx-ping; access = rw }
    function-to-server = mbox-ping
    function-to-client = mbox-pong
}
server { address = tlmsp://localhost:10465; function = server-pong }
EOF
"$msp" server -c "$tmp/split.ucl" -p "$shift_by" -P >"$tmp/ssrv" 2>&1 &
pids+=($!)
"$msp" middlebox -c "$tmp/split.ucl" -p "$shift_by" -a -P >"$tmp/smb" 2>&1 &
pids+=($!)
wait_listening "${pids[@]: -2}"
timeout 8 "$msp" client -c "$tmp/split.ucl" -p "$shift_by" -P >"$tmp/scli" 2>&1
exited 0 $? "$tmp/scli"
# the middlebox's log line may trail the data it concerns by a loop turn: give it a moment before looking
waitfor "$tmp/smb" "mbox-ping matched"
has "$tmp/smb" "mbox-ping matched 4 bytes in context 1: \"ping\""
has "$tmp/ssrv" "server-pong matched 4 bytes in context 1: \"PING\""
has "$tmp/scli" "client-sees-pong matched 11 bytes in context 1: \"server-pong\""
kill "${pids[@]}" 2>/dev/null
wait 2>/dev/null
pids=()

# a held "pi" that nothing completes goes out as it is after 100 ms idle
sed -e 's/data = "pi" } send { context = ctx-ping; data = "ng" }/data = "pi" }/' \
    -e '/tag = server-pong/,/^}/ s/data = "PING"/data = "pi"/' "$tmp/split.ucl" >"$tmp/half.ucl"
"$msp" server -c "$tmp/half.ucl" -p "$shift_by" -P >"$tmp/hsrv" 2>&1 &
pids+=($!)
"$msp" middlebox -c "$tmp/half.ucl" -p "$shift_by" -a -P >"$tmp/hmb" 2>&1 &
pids+=($!)
wait_listening "${pids[@]: -2}"
timeout 8 "$msp" client -c "$tmp/half.ucl" -p "$shift_by" -P >"$tmp/hcli" 2>&1
exited 0 $? "$tmp/hcli"
has "$tmp/hsrv" "server-pong matched 2 bytes in context 1: \"pi\""
if grep -q "mbox-ping matched" "$tmp/hmb"; then bad "the middlebox matched a lone \"pi\""; else ok; fi
kill "${pids[@]}" 2>/dev/null
wait 2>/dev/null
pids=()

finish cli_tlmsp
