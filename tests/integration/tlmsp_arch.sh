#!/usr/bin/env bash
# The architectures of TS 103 523-1 clause 4.3 through the programs, each process on its own (issue 12):
#
#   fan     4.3.4 and 4.3.5 in one run: one `msp middlebox` process, three `msp server`s behind it, six `msp client`s
#           through it (two per server) at the same time. Each server answers with its own name and each client
#           waits for its server's: every client must end cleanly with the answer of the server it named, and the
#           middlebox must have carried all six sessions.
#   chainK  4.3.6 with K = 1, 2 or 4 middleboxes, each its own `msp middlebox -t mboxN` process with write access:
#           on the way to the server each middlebox appends its number to the ping ("ping" -> "ping1" -> "ping12"),
#           on the way back to the pong ("pong" -> "pong4" -> "pong43" ...), so the server sees "ping12..K" and the
#           client "pongK..1" only when every middlebox took part, in order.
#
# Usage: tlmsp_arch.sh MSP fan|chain1|chain2|chain4
set -uo pipefail
msp=$1
case_=$2
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tlmsp.sh"
name=tlmsp_arch_$case_
need openssl ss timeout || { finish "$name"; exit 1; }

# exited WANT GOT FILE
exited() { if [ "$2" -eq "$1" ]; then ok; else bad "exited $2, expected $1: $(tail -c 400 "$3")"; fi; }
# up A B / down A B: the digits A..B counting up (down), nothing when the range is empty
up() { local i; for ((i = $1; i <= $2; i++)); do printf %d "$i"; done; }
down() { local i; for ((i = $1; i >= $2; i--)); do printf %d "$i"; done; }

# ---- chains ----

# chain_cfg K: the configuration of a chain of K middleboxes (ports 10401..1040K, server 10455)
chain_cfg() {
    local k=$1 i
    cat <<EOF
context { id = 1; tag = data }
activity { tag = client-ping; match { at = 200 } action { send { context = data; data = "ping" } } }
activity {
    tag = client-sees-pong
    match { which = *; data = "pong$(down "$k" 1)" }
    action { shutdown = yes }
}
activity {
    tag = server-pong
    match { which = *; data = "ping$(up 1 "$k")" }
    action { send { context = data; data = "pong" } }
}
client { address = tlmsp://localhost; function = [ client-ping, client-sees-pong ] }
server { address = tlmsp://localhost:10455; function = server-pong }
EOF
    for i in $(seq "$k"); do
        cat <<EOF
activity {
    tag = mbox$i-ping
    match { which = data; data = "ping$(up 1 $((i - 1)))" }
    action { send { context = data; data = "ping$(up 1 "$i")" } }
}
activity {
    tag = mbox$i-pong
    match { which = data; data = "pong$(down "$k" $((i + 1)))" }
    action { send { context = data; data = "pong$(down "$k" "$i")" } }
}
middlebox {
    tag = mbox$i
    address = tlmsp://localhost:$((10400 + i))
    context { which = data; access = rw }
    function-to-server = mbox$i-ping
    function-to-client = mbox$i-pong
}
EOF
    done
}

chain_up() {
    local i
    start "$tmp/srv.log" $((10455 + shift)) "$msp" server -c "$tmp/chain.ucl" -p "$shift" -P || return 1
    for i in $(seq "$k"); do
        start "$tmp/mb$i.log" $((10400 + i + shift)) "$msp" middlebox -c "$tmp/chain.ucl" -p "$shift" -t "mbox$i" \
            -P -v || return 1
    done
}

chain() {
    k=$1
    chain_cfg "$k" >"$tmp/chain.ucl"
    mkcert server $(for i in $(seq "$k"); do echo "mbox$i"; done)
    on_free_shift chain_up || return
    local pings pongs
    pings=$(up 1 "$k")
    pongs=$(down "$k" 1)
    timeout 20 "$msp" client -c "$tmp/chain.ucl" -p "$shift" -P -v >"$tmp/cli.log" 2>&1
    exited 0 $? "$tmp/cli.log"
    has "$tmp/cli.log" "handshake complete, $k middlebox"
    has "$tmp/cli.log" "client-sees-pong matched $((4 + k)) bytes in context 1: \"pong$pongs\""
    has "$tmp/srv.log" "server-pong matched $((4 + k)) bytes in context 1: \"ping$pings\""
    for i in $(seq "$k"); do
        # a middlebox's log line may trail the data by a loop turn
        waitfor "$tmp/mb$i.log" "mbox$i-pong matched"
        has "$tmp/mb$i.log" "handshake complete"
        has "$tmp/mb$i.log" "mbox$i-ping matched $((3 + i)) bytes"
        has "$tmp/mb$i.log" "mbox$i-pong matched $((4 + k - i)) bytes"
        lacks "$tmp/mb$i.log" "connection ended"
    done
    stop_started
}

# ---- several clients and servers on one middlebox ----

# fan_cfg NAME PORT: the configuration of the clients of server NAME on PORT; the middlebox block is the same in all
fan_cfg() {
    cat <<EOF
context { id = 1; tag = data }
activity { tag = client-ping; match { at = 200 } action { send { context = data; data = "ping" } } }
activity { tag = client-sees-pong; match { which = *; data = "pong-from-$1" } action { shutdown = yes } }
activity { tag = mbox-saw-ping; match { which = data; data = "ping"; forward = yes } action { } }
activity { tag = server-pong; match { which = *; data = "ping" } action { send { context = data; data = "pong-from-$1" } } }
client { address = tlmsp://localhost; function = [ client-ping, client-sees-pong ] }
middlebox {
    tag = mbox1
    address = tlmsp://localhost:10401
    context { which = data; access = r }
    function-to-server = mbox-saw-ping
}
server { address = tlmsp://localhost:$2; function = server-pong }
EOF
}

servers=(alpha beta gamma)

fan_up() {
    local i
    for i in 0 1 2; do
        start "$tmp/srv-${servers[i]}.log" $((10455 + i + shift)) "$msp" server -c "$tmp/fan-${servers[i]}.ucl" \
            -p "$shift" -P || return 1
    done
    start "$tmp/mb.log" $((10401 + shift)) "$msp" middlebox -c "$tmp/fan-alpha.ucl" -p "$shift" -t mbox1 -P -v
}

fan() {
    local i c
    for i in 0 1 2; do
        fan_cfg "${servers[i]}" $((10455 + i)) >"$tmp/fan-${servers[i]}.ucl"
    done
    mkcert server mbox1
    on_free_shift fan_up || return
    local cpids=()
    for c in 0 1 2 3 4 5; do
        timeout 20 "$msp" client -c "$tmp/fan-${servers[c % 3]}.ucl" -p "$shift" -P -v >"$tmp/cli$c.log" 2>&1 &
        cpids+=($!)
    done
    for c in 0 1 2 3 4 5; do
        wait "${cpids[c]}"
        exited 0 $? "$tmp/cli$c.log"
        has "$tmp/cli$c.log" "handshake complete, 1 middlebox"
        has "$tmp/cli$c.log" "client-sees-pong matched [0-9]+ bytes in context 1: \"pong-from-${servers[c % 3]}\""
    done
    for i in 0 1 2; do
        local n
        n=$(count "$tmp/srv-${servers[i]}.log" "server-pong matched 4 bytes")
        if [ "$n" -eq 2 ]; then ok; else bad "server ${servers[i]} answered $n clients, expected 2"; fi
    done
    waitfor "$tmp/mb.log" "mbox-saw-ping matched" 6
    n=$(count "$tmp/mb.log" "handshake complete")
    if [ "$n" -eq 6 ]; then ok; else bad "the middlebox completed $n handshakes, expected 6: $(head -c 600 "$tmp/mb.log")"; fi
    n=$(count "$tmp/mb.log" "mbox-saw-ping matched 4 bytes")
    if [ "$n" -eq 6 ]; then ok; else bad "the middlebox saw $n pings, expected 6"; fi
    lacks "$tmp/mb.log" "connection ended"
    stop_started
}

case $case_ in
fan) fan ;;
chain1) chain 1 ;;
chain2) chain 2 ;;
chain4) chain 4 ;;
*)
    echo "usage: tlmsp_arch.sh MSP fan|chain1|chain2|chain4" >&2
    exit 2
    ;;
esac
finish "$name"
