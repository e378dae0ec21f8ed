# Shared by tlmsp_scale.sh, tlmsp_arch.sh and tlmsp_haproxy.sh (sourced after lib.sh): the TLMSP programs started in
# the background on ports that are free now, and what their logs show.

# mkcert NAME...: a self-signed RSA-2048 certificate and key for each, $tmp/NAME-cert.pem and $tmp/NAME-key.pem, the
# names `msp server` and `msp middlebox -t NAME` look for beside their configuration
mkcert() {
    local n
    for n in "$@"; do
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/$n-key.pem" -out "$tmp/$n-cert.pem" -days 2 \
            -subj "/CN=$n" >/dev/null 2>&1 || bad "openssl could not make a certificate for $n"
    done
}

# listening PORT: something listens on loopback TCP PORT
listening() {
    ss -ltnH "( sport = :$1 )" 2>/dev/null | grep -q .
}

# A shift for the configurations' ports (104xx, 105xx) that lands them below Linux's ephemeral range (32768-60999),
# as lib.sh's port_candidate does for one port.
shift_candidate() {
    echo $((9000 + RANDOM % 12000))
}

# start LOG PORT CMD...: CMD in the background, its stdout and stderr in LOG, once it listens on PORT (at most 10 s);
# its pid is added to pids and to started. Returns 1 (and says nothing; its log is named in $start_failed) when it
# exits first or never listens: the caller picks another shift.
started=()
start_failed=
start() {
    local log=$1 port=$2
    shift 2
    start_failed=$log
    if listening "$port"; then
        return 1
    fi
    "$@" >"$log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do
        if listening "$port"; then
            pids+=("$pid")
            started+=("$pid")
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 1
}

# stop_started: ends what start started (SIGTERM) and forgets it
stop_started() {
    local p
    for p in "${started[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    started=()
}

# on_free_shift FN: sets $shift and runs FN (which starts programs with start ... -p "$shift"), up to 8 times with
# another shift while FN fails (a port taken by a parallel test); bad when none worked.
on_free_shift() {
    for _ in 1 2 3 4 5 6 7 8; do
        shift=$(shift_candidate)
        if "$1"; then
            return 0
        fi
        stop_started
    done
    bad "$1: the programs did not start on any of 8 port shifts; the last said: $(tail -c 400 "$start_failed" 2>/dev/null)"
    return 1
}

# count FILE REGEX: how many lines of FILE match
count() {
    grep -cE -- "$2" "$1" 2>/dev/null || true
}

# has FILE REGEX / lacks FILE REGEX
has() { if grep -qE -- "$2" "$1"; then ok; else bad "$1 lacks /$2/: $(head -c 600 "$1")"; fi; }
lacks() { if grep -qE -- "$2" "$1"; then bad "$1 has /$2/: $(grep -m3 -E -- "$2" "$1")"; else ok; fi; }

# need TOOL...: a missing tool is a failure (CI must not pass on a skipped test), said once
need() {
    local t
    for t in "$@"; do
        if ! command -v "$t" >/dev/null 2>&1; then
            bad "$t is not installed (scripts/deps.sh installs it)"
            return 1
        fi
    done
}
