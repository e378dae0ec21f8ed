#!/usr/bin/env bash
# msp client / middlebox / server under load and failure, over loopback: a middlebox stopped (SIGSTOP) during a
# bulk transfer through a reflecting server, next hops that refuse, a client whose first hop refuses, and the
# handshake and idle time-outs (small values; the outcome and the log line are checked, never a duration).
# Usage: tlmsp_io.sh MSP SOURCE_DIR
set -uo pipefail
msp=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") # absolute: the programs run in $tmp
src=$2
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
has() { if grep -qE -- "$2" "$1"; then ok; else bad "$1 lacks /$2/: $(head -c 600 "$1")"; fi; }
lacks() { if grep -qE -- "$2" "$1"; then bad "$1 has /$2/: $(grep -E -- "$2" "$1" | head -c 600)"; else ok; fi; }
exited() { if [ "$2" -eq "$1" ]; then ok; else bad "exited $2, expected $1: $(tail -c 400 "$3")"; fi; }
# a port shift of our own, so that parallel runs do not collide: the ports (20401..31457) below Linux's ephemeral
# range (no client connection can have one as its source port), none of them in use now
free_ports() {
    command -v ss >/dev/null || return 0
    for p in 10401 10403 10455 10456; do
        ss -Htan "sport = :$((p + $1))" | grep -q . && return 1
    done
    return 0
}
for _ in $(seq 20); do
    shift_by=$((10000 + RANDOM % 11000))
    free_ports $shift_by && break
done
for n in server mbox1; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/$n-key.pem" -out "$tmp/$n-cert.pem" -days 2 \
        -subj "/CN=$n" >/dev/null 2>&1
done
# wait_port PORT: until something listens on PORT (at most 5 s); ss, not a probe connection (that would be logged)
wait_port() {
    for _ in $(seq 50); do
        if command -v ss >/dev/null; then
            ss -Htln "sport = :$1" | grep -q . && return 0
        else
            sleep 0.5 && return 0
        fi
        sleep 0.1
    done
    bad "nothing listens on port $1"
}
server_port=$((10455 + shift_by))
mbox_port=$((10401 + shift_by))

# ---- flags ----
run 2 "$msp" server -c "$src/data/tlmsp/pingpong.ucl" --idle-timeout soon
has "$tmp/err" "^msp server: --idle-timeout: not a number of seconds"
run 0 "$msp" middlebox --help
has "$tmp/out" "--handshake-timeout SEC"

# ---- 1. a middlebox stopped during a bulk transfer: back-pressure, never an integrity alert ----
# The client sends 256 KiB every 50 ms for 8 s (then close_notify), the server reflects everything, the middlebox
# is stopped for 3 s on the way. Each payload ends with MARK: the client sees the reflections.
head -c 262140 /dev/zero >"$tmp/bulk.bin"
printf MARK >>"$tmp/bulk.bin"
cat >"$tmp/bulk.ucl" <<'EOF'
context { id = 1; tag = bulk; purpose = "bulk" }
activity {
    tag = client-bulk
    match { at = 0; every = 50 }
    action { send { context = bulk; file = "bulk.bin" } }
}
activity {
    tag = client-sees-mark
    match { which = *; data = "MARK" }
    action { }
}
activity {
    tag = client-end
    match { at = 8000 }
    action { shutdown = yes }
}
client { address = tlmsp://localhost; function = [ client-bulk, client-sees-mark, client-end ] }
middlebox {
    tag = mbox1
    address = tlmsp://localhost:10401
    context { which = bulk; access = rw }
}
server { address = tlmsp://localhost:10455 }
EOF
(cd "$tmp" && exec "$msp" server -c bulk.ucl -p "$shift_by" -r) >"$tmp/srv" 2>&1 &
pids+=($!)
(cd "$tmp" && exec "$msp" middlebox -c bulk.ucl -p "$shift_by" -a) >"$tmp/mb" 2>&1 &
mb_pid=$!
pids+=($mb_pid)
wait_port $server_port
wait_port $mbox_port
(cd "$tmp" && exec timeout 40 "$msp" client -c bulk.ucl -p "$shift_by" -P) >"$tmp/cli" 2>&1 &
cli_pid=$!
sleep 2
kill -STOP $mb_pid
sleep 3
before=$(grep -c MARK "$tmp/cli")
kill -CONT $mb_pid
wait $cli_pid
exited 0 $? "$tmp/cli"
after=$(grep -c MARK "$tmp/cli")
if [ "$after" -gt "$before" ]; then ok; else bad "no reflection after the middlebox resumed ($before, then $after)"; fi
# (the client leaves after its close_notify while the server still reflects: the middlebox and the server may log
# the reset that follows; the transfer itself must end without an alert)
lacks "$tmp/cli" "connection ended"
for f in cli srv mb; do
    lacks "$tmp/$f" "bad_reader_mac|alert|cannot send|too much"
done
kill $mb_pid 2>/dev/null

# ---- 2. route failures: the client hears middlebox_route_failure (170), the middlebox says why ----
# nothing listens on the server's port
(cd "$tmp" && exec "$msp" middlebox -c bulk.ucl -p "$shift_by" -a) >"$tmp/mb2" 2>&1 &
pids+=($!)
# the bulk server is still up: stop it (only ours) so that its port refuses
kill "${pids[0]}" 2>/dev/null
wait "${pids[0]}" 2>/dev/null
wait_port $mbox_port
(cd "$tmp" && exec timeout 20 "$msp" client -c bulk.ucl -p "$shift_by") >"$tmp/cli2" 2>&1
exited 1 $? "$tmp/cli2"
has "$tmp/cli2" "^msp client: connection ended: middlebox_route_failure$"
has "$tmp/mb2" "^msp middlebox: next hop localhost:$server_port: connection refused$"
has "$tmp/mb2" "^msp middlebox: mbox1: connection ended: middlebox_route_failure$"

# the client's own first hop refuses
"$msp" client -c "$src/data/tlmsp/pingpong.ucl" -p $((shift_by + 1)) >"$tmp/cli3" 2>&1
exited 1 $? "$tmp/cli3"
has "$tmp/cli3" "^msp client: connection ended: connection refused$"

# ---- 4. time-outs ----
cat >"$tmp/idle.ucl" <<'EOF'
context { id = 1; tag = c; purpose = "idle" }
activity {
    tag = hello
    match { at = 0 }
    action { send { context = c; data = "hello" } }
}
client { address = tlmsp://localhost; function = hello }
server { address = tlmsp://localhost:10455 }
EOF
# a TCP client that connects and sends nothing is closed by the server, then by the middlebox
(cd "$tmp" && exec "$msp" server -c idle.ucl -p "$shift_by" --handshake-timeout 1 --idle-timeout 1) >"$tmp/srv4" 2>&1 &
pids+=($!)
wait_port $server_port
silent() {
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    timeout 10 cat <&3 >/dev/null # returns when the other side closes
}
silent $server_port
exited 0 $? "$tmp/srv4"
has "$tmp/srv4" "^msp server: connection ended: handshake timed out after 1 s$"
(cd "$tmp" && exec "$msp" middlebox -c bulk.ucl -p $((shift_by + 2)) -a --handshake-timeout 1) >"$tmp/mb4" 2>&1 &
pids+=($!)
wait_port $((mbox_port + 2))
silent $((mbox_port + 2))
exited 0 $? "$tmp/mb4"
has "$tmp/mb4" "^msp middlebox: mbox1: connection ended: handshake timed out after 1 s$"
# an idle session: the server closes it (close_notify), the client ends cleanly
(cd "$tmp" && exec timeout 20 "$msp" client -c idle.ucl -p "$shift_by") >"$tmp/cli4" 2>&1
exited 0 $? "$tmp/cli4"
has "$tmp/srv4" "^msp server: connection ended: idle timed out after 1 s$"

finish tlmsp_io
