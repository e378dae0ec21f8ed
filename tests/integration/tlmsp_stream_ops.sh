#!/usr/bin/env bash
# The stream gateways as an operator runs them (serve.c): `msp client --accept` and `msp server --forward` log one
# line per session (text at the client, JSON at the server: peers, bytes each way, duration, outcome), refuse
# connections over --max-sessions, and drain on SIGTERM (close_notify on the open sessions: a session whose
# application keeps its connection open still gets its answer, ends cleanly, and the gateway exits 0).
# Usage: tlmsp_stream_ops.sh MSP SOURCE_DIR
set -uo pipefail
msp=$1
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
cd "$tmp" || exit 1
has() { if grep -aqE -- "$2" "$1"; then ok; else bad "$1 lacks /$2/: $(head -c 800 "$1")"; fi; }
same() { if [ "$1" = "$2" ]; then ok; else bad "$3: got '$1', expected '$2'"; fi; }

for tool in python3 openssl ss; do
    command -v "$tool" >/dev/null || { bad "$tool is not installed (scripts/deps.sh)"; finish tlmsp_stream_ops; exit; }
done


openssl req -x509 -newkey rsa:2048 -nodes -keyout server-key.pem -out server-cert.pem -days 2 -subj "/CN=server" \
    >/dev/null 2>&1

# a backend that reads until EOF and answers with the byte count
cat >count.py <<'EOF'
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
def serve(c):
    n = 0
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        n += len(d)
    try:
        c.sendall(b"got %d\n" % n)
    except OSError:
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
# a plain application: sends DATA, shuts down its write side unless told to hold, prints what comes back until
# EOF ("closed": nothing)
cat >app.py <<'EOF'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.settimeout(30)
out = b""
try:
    c.sendall(sys.argv[2].encode())
    if sys.argv[3] == "shut":
        c.shutdown(socket.SHUT_WR)
    while True:
        d = c.recv(4096)
        if not d:
            break
        out += d
except OSError:
    pass  # closed by the gateway (a reset): said below as an empty answer
print(out.decode().strip() or "closed")
EOF
b_port=$(free_port)
python3 count.py "$b_port" >count.out 2>&1 &
pids+=($!)
wait_listen "$b_port" $! "the backend" count.out

s_port=$(free_port)
a_port=$(free_port)
cat >gw.ucl <<EOF
context { id = 1; tag = "data"; }
client {
    address = tlmsp://127.0.0.1
}
server {
    address = tlmsp://127.0.0.1:$s_port
}
EOF
"$msp" server -c gw.ucl --forward "127.0.0.1:$b_port" --trust server-cert.pem --log-format json >srv.log 2>&1 &
srv=$!
pids+=($srv)
wait_listen "$s_port" $srv "msp server --forward" srv.log
"$msp" client -c gw.ucl --accept "127.0.0.1:$a_port" --trust server-cert.pem --max-sessions 1 >cli.log 2>&1 &
cli=$!
pids+=($cli)
wait_listen "$a_port" $cli "msp client --accept" cli.log

# ---- one session: its log line at both gateways ----
same "$(python3 app.py "$a_port" hello shut)" "got 5" "an answer through the gateways"
ts='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z '
waitfor cli.log "session id=1" && has cli.log \
    "${ts}msp client\[$cli\]: session id=1 peer=127\.0\.0\.1:[0-9]+ bytes_in=5 bytes_out=6 duration_ms=[0-9]+ outcome=close$"
waitfor srv.log '"event":"session"' && has srv.log \
    "^\{\"time\":\"[0-9T:.-]+Z\",\"role\":\"server\",\"pid\":$srv,\"event\":\"session\",\"id\":1,\"peer\":\"127\.0\.0\.1:[0-9]+\",\"bytes_in\":5,\"bytes_out\":6,\"duration_ms\":[0-9]+,\"outcome\":\"close\"\}$"

# ---- the cap: with one session open, a second connection is closed at once ----
python3 app.py "$a_port" held hold >held.out 2>&1 &
held=$!
sleep 1 # the held session is open
same "$(python3 app.py "$a_port" second shut)" "closed" "a connection over --max-sessions 1"
waitfor cli.log "rejected" && has cli.log "${ts}msp client\[$cli\]: rejected peer=127\.0\.0\.1:[0-9]+ count=1 detail=max-sessions$"

# ---- the drain: close_notify on the held session; its answer still comes, it ends cleanly, exit 0 ----
kill -TERM "$cli"
wait "$held"
same "$(cat held.out)" "got 4" "the held session's answer after the drain's close_notify"
wait "$cli"
same "$?" 0 "the client gateway's exit status after a drain"
has cli.log "${ts}msp client\[$cli\]: drain count=1 detail=Terminated$"
has cli.log "session id=2 peer=127\.0\.0\.1:[0-9]+ bytes_in=4 bytes_out=6 duration_ms=[0-9]+ outcome=close$"
has cli.log "drained count=0 outcome=clean$"

# ---- SIGHUP at the server gateway: reloaded for new sessions, which still work ----
kill -HUP "$srv"
waitfor srv.log '"event":"reload"' && has srv.log '"event":"reload",.*"detail":"new sessions use the reloaded configuration"'
kill -TERM "$srv"
wait "$srv"
same "$?" 0 "the server gateway's exit status after a drain"

# ---- --workers 2 at both gateways: sessions through them ----
"$msp" server -c gw.ucl --forward "127.0.0.1:$b_port" --trust server-cert.pem --workers 2 >srv2.log 2>&1 &
srv2=$!
pids+=($srv2)
wait_listen "$s_port" $srv2 "msp server --forward --workers 2" srv2.log
a2_port=$(free_port)
"$msp" client -c gw.ucl --accept "127.0.0.1:$a2_port" --trust server-cert.pem --workers 2 >cli2.log 2>&1 &
cli2=$!
pids+=($cli2)
wait_listen "$a2_port" $cli2 "msp client --accept --workers 2" cli2.log
for i in 1 2 3 4; do
    same "$(python3 app.py "$a2_port" "w$i" shut)" "got 2" "session $i through two workers a side"
done
kill -TERM "$cli2" "$srv2"
wait "$cli2"
same "$?" 0 "the client gateway's workers after a drain"
wait "$srv2"
same "$?" 0 "the server gateway's workers after a drain"
has cli2.log "msp client\[[0-9]+\]: session worker=[12] id=1 .*outcome=close$"

# ---- flags: the serve flags are for a client with --accept ----
"$msp" client -c gw.ucl --stdio --insecure --workers 2 </dev/null >/dev/null 2>err
same "$?" 2 "--workers with --stdio"
has err "^msp client: unknown option '--workers' \(see 'msp client --help'\): it is for a client with --accept$"

finish tlmsp_stream_ops
