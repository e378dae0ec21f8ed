# Shared by the integration scripts (sourced after $tmp is set): a tally of checks and `run`, which
# runs a command, keeps its stdout and stderr in $tmp/out and $tmp/err, and checks its exit status.
# Background processes a script starts go into pids: on exit they are stopped and $tmp is removed.
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# run EXPECTED_STATUS CMD...
run() {
    local want=$1
    shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -eq "$want" ]; then ok; else bad "$* exited $got, expected $want; stderr: $(head -c 400 "$tmp/err")"; fi
}

# waitfor FILE REGEX [N]: until N (1) lines of FILE (a log a background process is still writing) match REGEX, at
# most 60 s; 1 if they never do. In place of a fixed sleep before reading a log, which a loaded machine overran.
waitfor() {
    for _ in $(seq 600); do
        [ "$(grep -caE -- "$2" "$1" 2>/dev/null)" -ge "${3:-1}" ] && return 0
        sleep 0.1
    done
    return 1
}

# eventually FILE REGEX: waitfor as a check
eventually() {
    if waitfor "$1" "$2"; then ok; else bad "$1 lacks /$2/ after 60 s: $(tail -c 600 "$1" 2>/dev/null)"; fi
}

# section NAME: names the checks that follow, up to the next section or finish; each ends with a line in
# cmocka's format, "[       OK ] NAME" or "[  FAILED  ] NAME", so that a profile's evidence "SCRIPT:NAME" can
# name it (msp framework conform). Scripts without sections print no such lines.
section_name=""
section_failed=0
section() {
    if [ -n "$section_name" ]; then
        if [ "$failed" -eq "$section_failed" ]; then echo "[       OK ] $section_name"; else echo "[  FAILED  ] $section_name"; fi
    fi
    section_name=$1
    section_failed=$failed
}

# finish NAME: the summary line, and the script's status
finish() {
    section ""
    echo "$1: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# ets_conf FILE X25519_KEY P256_KEY: an openssl.cnf that loads default and the msp-ets provider module ($module)
# with these static keys, and prefers msp-ets (docs/ets-provider.md)
ets_conf() {
    cat >"$1" <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
alg_section = algorithm_sect
[provider_sect]
default = default_sect
msp-ets = msp_ets_sect
[default_sect]
activate = 1
[msp_ets_sect]
module = $module
activate = 1
x25519_key = $2
p256_key = $3
[algorithm_sect]
default_properties = ?provider=msp-ets
EOF
}

# A candidate listening port for a loopback server: below Linux's ephemeral range (32768-60999), so no client
# connection of this or a parallel test can have it as its source port and be captured by a "tcp port P" filter
# (a stray flow in a capture made the flow counts flaky).
port_candidate() {
    echo $((20000 + RANDOM % 12000))
}

# free_port: a loopback port (port_candidate) that binds now and was not handed out before in this script. The
# ports handed out are kept in $tmp/.ports, not in a variable: callers take the port as $(free_port), a subshell.
free_port() {
    local p
    while :; do
        p=$(port_candidate)
        grep -qx "$p" "$tmp/.ports" 2>/dev/null && continue
        if python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$p" 2>/dev/null
        then
            echo "$p" >>"$tmp/.ports"
            echo "$p"
            return
        fi
    done
}

# free_shift: a port shift (-p) that puts a TLMSP configuration's middleboxes (10401, 10402) and server (10455) on free ports
# from port_candidate.
free_shift() {
    local s
    while :; do
        s=$(($(port_candidate) - 10455))
        if python3 -c 'import socket,sys
for p in sys.argv[1:]:
    socket.socket().bind(("127.0.0.1", int(p)))' $((10401 + s)) $((10402 + s)) $((10455 + s)) 2>/dev/null; then
            echo "$s"
            return
        fi
    done
}

# pid_listens PID [PORT]: process PID, or a child of it (--workers), listens on TCP PORT (on any TCP port without
# PORT). Not merely "something listens there": a port another test holds would pass that while our process failed
# to bind it. ss names a socket's owner only to root; otherwise any listener on PORT counts (and, without PORT, a
# fixed second stands in).
pid_listens() {
    if [ "$(id -u)" -ne 0 ]; then
        [ -n "${2:-}" ] || { sleep 1; return 0; }
        ss -ltnH "sport = :$2" 2>/dev/null | grep -q .
        return
    fi
    local owners p
    owners="pid=$1,"
    for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do owners="$owners|pid=$p,"; done
    if [ -n "${2:-}" ]; then ss -ltnpH "sport = :$2"; else ss -ltnpH; fi 2>/dev/null | grep -qE "$owners"
}

# wait_pid_listens PID [PORT]: until pid_listens (true; at most 10 s), or until PID exits (false)
wait_pid_listens() {
    for _ in $(seq 100); do
        pid_listens "$@" && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# wait_listening PID...: until each process listens on some TCP port, in place of a fixed sleep before a client
# connects (0.5 s was too short on a loaded machine)
wait_listening() {
    local pid
    for pid in "$@"; do
        wait_pid_listens "$pid"
    done
}

# wait_listen PORT PID NAME LOG: wait_pid_listens PID PORT as a check: PID (or its child) owns PORT (ok), else a
# failure quoting the end of LOG
wait_listen() {
    if wait_pid_listens "$2" "$1"; then ok; return 0; fi
    bad "$3 is not listening on $1: $(tail -c 400 "$4")"
    return 1
}

# s_server LOG CONF GROUPS ARGS...: stock openssl s_server (TLS 1.3, GROUPS, OPENSSL_CONF=CONF, then ARGS) on a free
# loopback port, retried on another if it does not come up; its standard input is a FIFO this script holds open
# (without -www it would end on EOF). Once it says ACCEPT it is in pids, and $port and $server_pid are set.
s_server() {
    local log=$1 conf=$2 groups=$3
    shift 3
    if [ ! -p "$tmp/s_server.stdin" ]; then
        mkfifo "$tmp/s_server.stdin"
        exec 9<>"$tmp/s_server.stdin"
    fi
    for _ in 1 2 3 4 5 6 7 8; do
        port=$(port_candidate)
        OPENSSL_CONF=$conf openssl s_server -accept "127.0.0.1:$port" -tls1_3 -groups "$groups" "$@" >"$log" 2>&1 \
            <"$tmp/s_server.stdin" &
        server_pid=$!
        for _ in $(seq 50); do
            if grep -q '^ACCEPT' "$log" 2>/dev/null; then
                pids+=("$server_pid")
                return 0
            fi
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    done
    bad "s_server did not start: $(head -c 300 "$log")"
    return 1
}
