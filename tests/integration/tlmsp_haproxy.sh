#!/usr/bin/env bash
# Past one machine (issue 12): two `msp middlebox` processes behind HAProxy in TCP mode (roundrobin) as one logical
# middlebox. Both run the same configuration with the same certificate and key (the client's list names one
# middlebox, tlmsp://localhost:10401, and HAProxy holds that address); the load driver opens SESSIONS sessions
# (40 by default) through HAProxy to `msp server -r`, and every one must come up, be echoed and close cleanly, while
# each middlebox's -v log shows it completed some of the handshakes and together all of them.
#
# On one loopback the two middlebox "hosts" are told apart by their port shift (-p): each listens on its own port,
# and so connects to the server on a port shifted the same way, which a relay section of the same HAProxy forwards
# to the one server. On separate hosts both would use the configuration's ports and need no relay (docs/deploy.md).
#
# Usage: tlmsp_haproxy.sh MSP BENCH_SESSIONS SOURCE_DIR [SESSIONS]
set -uo pipefail
msp=$1
bench=$2
src=$3
sessions=${4:-40}
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tlmsp.sh"
need openssl ss haproxy || { finish tlmsp_haproxy; exit 1; }

cp "$src/tests/integration/tlmsp/scale.ucl" "$tmp/"
mkcert server mbox1

# host_of PORT: the address a listener on PORT is bound to, as HAProxy writes it (127.0.0.1, or [::1] where
# "localhost" resolves to IPv6 first)
host_of() {
    ss -ltnH "( sport = :$1 )" | awk 'NR == 1 { sub(/:[0-9]+$/, "", $4); print $4 }'
}

# The configuration's ports: 10401 (the logical middlebox: HAProxy), 10455 (the server); middlebox a runs with the
# shift + 100, b with the shift + 200.
up() {
    local front=$((10401 + shift)) srv=$((10455 + shift)) a=$((10501 + shift)) b=$((10601 + shift))
    start "$tmp/srv.log" "$srv" "$msp" server -c "$tmp/scale.ucl" -p "$shift" -r || return 1
    start "$tmp/mb-a.log" "$a" "$msp" middlebox -c "$tmp/scale.ucl" -p $((shift + 100)) -a -v || return 1
    start "$tmp/mb-b.log" "$b" "$msp" middlebox -c "$tmp/scale.ucl" -p $((shift + 200)) -a -v || return 1
    local h
    h=$(host_of "$srv")
    cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend logical_middlebox
    bind $h:$front
    default_backend middleboxes
backend middleboxes
    balance roundrobin
    server a $(host_of "$a"):$a
    server b $(host_of "$b"):$b
listen server_from_a
    bind $h:$((srv + 100))
    server s $h:$srv
listen server_from_b
    bind $h:$((srv + 200))
    server s $h:$srv
EOF
    listening $((srv + 100)) && return 1
    listening $((srv + 200)) && return 1
    start "$tmp/haproxy.log" "$front" haproxy -db -f "$tmp/haproxy.cfg"
}
on_free_shift up || { finish tlmsp_haproxy; exit 1; }

"$bench" -c "$tmp/scale.ucl" -p "$shift" --sessions "$sessions" --parallel 4 --timeout 120 >"$tmp/bench.out" \
    2>"$tmp/bench.err"
status=$?
if [ $status -eq 0 ]; then ok; else bad "bench_sessions exited $status: $(head -c 600 "$tmp/bench.err")"; fi
has "$tmp/bench.out" "^bench_sessions: $sessions session\(s\) up and echoed in"
has "$tmp/bench.out" "^bench_sessions: $sessions session\(s\) closed cleanly"

# the 1-session baseline and the SESSIONS, spread over both middleboxes
na=$(count "$tmp/mb-a.log" "^msp middlebox mbox1: handshake complete")
nb=$(count "$tmp/mb-b.log" "^msp middlebox mbox1: handshake complete")
echo "tlmsp_haproxy: middlebox a completed $na handshakes, b $nb"
if [ "$na" -gt 0 ] && [ "$nb" -gt 0 ]; then ok; else bad "one middlebox served nothing: a $na, b $nb"; fi
if [ $((na + nb)) -eq $((sessions + 1)) ]; then ok; else bad "a $na + b $nb handshakes, expected $((sessions + 1))"; fi
lacks "$tmp/mb-a.log" "connection ended|cannot"
lacks "$tmp/mb-b.log" "connection ended|cannot"
lacks "$tmp/srv.log" "connection ended|cannot"

stop_started
finish tlmsp_haproxy
