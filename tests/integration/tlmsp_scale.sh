#!/usr/bin/env bash
# Many concurrent TLMSP sessions through one `msp middlebox` process to one `msp server -r` (issue 12): the load
# driver bench_sessions opens SESSIONS sessions (1,000 by default), each sends a small message and gets it back, all
# stay open until every one is up, the middlebox's and server's RSS are sampled, then all close. Every session must
# come up, be echoed and close cleanly, and neither program may log a session that ended badly. The figures
# (handshakes/s, RSS, bytes per idle session over the 1-session baseline) are printed for the log.
#
# With MSP_SCALE_MAX_SESSION_BYTES set, the middlebox's bytes per idle session must not exceed it (issue 12 aims at
# 65536; off by default until the drivers get there).
#
# Usage: tlmsp_scale.sh MSP BENCH_SESSIONS SOURCE_DIR [SESSIONS]
set -uo pipefail
msp=$1
bench=$2
src=$3
sessions=${4:-1000}
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tlmsp.sh"

need openssl ss || { finish tlmsp_scale; exit 1; }

# The middlebox holds two descriptors per session, the driver and the server one each: raise the soft limit for this
# shell and what it starts (the hard limit is the ceiling; a limit too low is a failure, not a skip).
want=$((2 * sessions + 64))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    bad "$sessions sessions need $want open files in the middlebox; the hard limit is $hard (ulimit -Hn)"
    finish tlmsp_scale
    exit 1
fi
[ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ] && ulimit -n "$want"

cp "$src/tests/integration/tlmsp/scale.ucl" "$tmp/"
cap=$((sessions + 16)) # the programs' default cap (4096 open sessions) would refuse a larger run
mkcert server mbox1

up() {
    start "$tmp/srv.log" $((10455 + shift)) "$msp" server -c "$tmp/scale.ucl" -p "$shift" -r --max-sessions "$cap" &&
        srv_pid=${started[-1]} &&
        start "$tmp/mb.log" $((10401 + shift)) "$msp" middlebox -c "$tmp/scale.ucl" -p "$shift" -a --max-sessions "$cap" &&
        mb_pid=${started[-1]}
}
on_free_shift up || { finish tlmsp_scale; exit 1; }

# --timeout: the most each phase of a level may take; the test as a whole keeps well under it
"$bench" -c "$tmp/scale.ucl" -p "$shift" --sessions "$sessions" --watch "middlebox=$mb_pid" \
    --watch "server=$srv_pid" --timeout 300 >"$tmp/bench.out" 2>"$tmp/bench.err"
status=$?
cat "$tmp/bench.out"
if [ $status -eq 0 ]; then ok; else bad "bench_sessions exited $status: $(head -c 600 "$tmp/bench.err")"; fi
has "$tmp/bench.out" "^bench_sessions: $sessions session\(s\) up and echoed in"
has "$tmp/bench.out" "^bench_sessions: $sessions session\(s\) idle; RSS: middlebox [0-9]+ KiB \([0-9]+ bytes/session\)"
has "$tmp/bench.out" "^bench_sessions: $sessions session\(s\) closed cleanly"

# both programs still run, and neither saw a session end badly
for p in "$mb_pid" "$srv_pid"; do
    if kill -0 "$p" 2>/dev/null; then ok; else bad "a program (pid $p) died during the run"; fi
done
lacks "$tmp/mb.log" "connection ended|cannot|ERROR|Sanitizer"
lacks "$tmp/srv.log" "connection ended|cannot|ERROR|Sanitizer"

if [ -n "${MSP_SCALE_MAX_SESSION_BYTES:-}" ]; then
    # csv,SESSIONS,up_s,handshakes_per_s,middlebox_rss_kib,middlebox_bytes_per_session,...
    per=$(awk -F, -v n="$sessions" '$1 == "csv" && $2 == n { print $6 }' "$tmp/bench.out")
    if [ -n "$per" ] && [ "$per" -le "$MSP_SCALE_MAX_SESSION_BYTES" ]; then
        ok
    else
        bad "the middlebox holds ${per:-?} bytes per idle session, more than $MSP_SCALE_MAX_SESSION_BYTES"
    fi
fi

stop_started
finish tlmsp_scale
