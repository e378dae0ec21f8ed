#!/usr/bin/env bash
# Stream mode with real applications, over loopback, ports picked at run time:
#   curl -> msp client --accept -> msp middlebox -> msp server --forward -> Debian's nginx (--contexts http, the
#   middlebox reads the header context and nothing of the body one), bodies of 0 B, 1 B, 1 MiB, 64 MiB and 1 GiB
#   compared by SHA-256; stdin -> msp client --stdio -> middlebox -> msp server --forward -> a listener that hashes
#   what it gets until EOF and answers with the hash (an upload, --context TAG, half-close); a plain client that
#   shuts down its write side and still reads the answer through --accept; a script-mode client sending a 64 MiB
#   `file =`; the refusals (no --trust/--insecure: exit 2; a wrong trust file: the handshake fails).
# Usage: tlmsp_stream.sh MSP SOURCE_DIR
set -uo pipefail
msp=$1
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
cd "$tmp" || exit 1
has() { if grep -aqE -- "$2" "$1"; then ok; else bad "$1 lacks /$2/: $(head -c 600 "$1")"; fi; }
lacks() { if grep -aqE -- "$2" "$1"; then bad "$1 has /$2/: $(grep -a -m3 -E -- "$2" "$1")"; else ok; fi; }
same() { if [ "$1" = "$2" ]; then ok; else bad "$3: got '$1', expected '$2'"; fi; }
lines() { local n; n=$(wc -l <"$1"); if [ "$n" -eq "$2" ]; then ok; else bad "$1 has $n lines, expected $2: $(head -c 400 "$1")"; fi; }

for tool in nginx curl python3 openssl ss; do
    command -v "$tool" >/dev/null || { bad "$tool is not installed (scripts/deps.sh)"; finish tlmsp_stream; exit; }
done


# ---- certificates: the server's and the middlebox's, trusted; another one for the wrong trust ----
for n in server mbox1 other; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$n-key.pem" -out "$n-cert.pem" -days 2 -subj "/CN=$n" \
        >/dev/null 2>&1
done
cat server-cert.pem mbox1-cert.pem >trust.pem

# config FILE SERVER_PORT MBOX_PORT CONTEXTS MBOX_ACCESS
config() {
    {
        echo "$4"
        cat <<EOF
middlebox {
    tag = mbox1
    address = tlmsp://127.0.0.1:$3
    $5
}
client {
    address = tlmsp://127.0.0.1
}
server {
    address = tlmsp://127.0.0.1:$2
}
EOF
    } >"$1"
}

# ---- the refusals first (nothing runs) ----
config refuse.ucl 1 2 'context { id = 1; }' ''
run 2 "$msp" client -c refuse.ucl --accept 127.0.0.1:1
lines "$tmp/err" 1
has "$tmp/err" "^msp client: stream mode verifies certificates: give --trust FILE, or --insecure"
run 2 "$msp" server -c refuse.ucl --forward 127.0.0.1:1
has "$tmp/err" "^msp server: stream mode verifies certificates"
run 2 "$msp" client -c refuse.ucl --stdio --trust trust.pem --insecure
has "$tmp/err" "either --trust or --insecure"
run 2 "$msp" client -c refuse.ucl --accept nowhere --insecure
has "$tmp/err" "--accept: 'nowhere' is not ADDR:PORT"
run 2 "$msp" client -c refuse.ucl --stdio --insecure --contexts http
has "$tmp/err" "needs one context tagged header and one tagged body"
run 2 "$msp" client -c refuse.ucl --insecure
lines "$tmp/err" 1
has "$tmp/err" "--insecure is for stream mode"
run 2 "$msp" server -c refuse.ucl --stdio --insecure
has "$tmp/err" "unknown option '--stdio'"
run 2 "$msp" server -c refuse.ucl --forward 127.0.0.1:1 --insecure -r
has "$tmp/err" "-r is for script mode"
run 2 "$msp" middlebox -c refuse.ucl -a --forward 127.0.0.1:1
has "$tmp/err" "unknown option '--forward'"

# ---- nginx, serving generated files ----
mkdir www
: >www/empty
printf 'x' >www/one
head -c $((1 << 20)) /dev/urandom >www/1m
head -c $((64 << 20)) /dev/urandom >www/64m
truncate -s 1G www/1g # sparse: no disk, and nginx sends it all the same
ngx_port=$(free_port)
cat >nginx.conf <<EOF
user root;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log notice;
events { worker_connections 256; }
http {
    access_log $tmp/access.log;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$ngx_port;
        root $tmp/www;
    }
}
EOF
nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/error.log" -g 'daemon off;' >nginx.out 2>&1 &
pids+=($!)
wait_listen "$ngx_port" $! nginx error.log

# ---- the HTTP path: headers in context 1 (the middlebox reads it), bodies in context 2 (it may not) ----
s_port=$(free_port)
m_port=$(free_port)
a_port=$(free_port)
config http.ucl "$s_port" "$m_port" 'context { id = 1; tag = "header"; }
context { id = 2; tag = "body"; }' 'context { which = [ header ]; access = r; }'
"$msp" middlebox -c http.ucl -a -vv --trust trust.pem >mb_http.log 2>&1 &
pids+=($!)
wait_listen "$m_port" $! middlebox mb_http.log
"$msp" server -c http.ucl --forward "127.0.0.1:$ngx_port" --contexts http --trust trust.pem -v >srv_http.log 2>&1 &
pids+=($!)
wait_listen "$s_port" $! "msp server" srv_http.log
"$msp" client -c http.ucl --accept "127.0.0.1:$a_port" --contexts http --trust trust.pem -v >cli_http.log 2>&1 &
pids+=($!)
wait_listen "$a_port" $! "msp client" cli_http.log

for f in empty one 1m 64m 1g; do
    want=$(sha256sum <"www/$f" | cut -d' ' -f1)
    start=$(date +%s.%N)
    got=$(curl -sS --max-time 300 "http://127.0.0.1:$a_port/$f" | sha256sum | cut -d' ' -f1)
    same "$got" "$want" "GET /$f through TLMSP"
    [ "$f" = 1g ] && echo "tlmsp_stream: 1 GiB through client, middlebox and server gateways in $(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo '?') s"
done
# a HEAD and a GET on one connection: the HEAD's answer has no body whatever its Content-Length says
curl -sS --max-time 20 -I "http://127.0.0.1:$a_port/1m" --next -sS -o head_then_get "http://127.0.0.1:$a_port/one" \
    >head.out 2>&1
has head.out "Content-Length: 1048576"
same "$(cat head_then_get 2>/dev/null)" "x" "GET after HEAD on one connection"
has cli_http.log "session [0-9]+: handshake complete, 1 middlebox"
has cli_http.log "session [0-9]+: closed cleanly"
lacks cli_http.log "ended:"
lacks srv_http.log "ended:"
# The middlebox saw every header in clear and not one body byte: each container in context 2 was opaque to it.
has mb_http.log "context 1 toward the server$"
has mb_http.log "context 1 toward the client$"
has mb_http.log "context 2 toward the client \(opaque\)"
lacks mb_http.log "context 2 toward the (client|server)$"
lacks mb_http.log "GET|HTTP/1.1 200" # -vv logs sizes, never plaintext
# (without access the engine gives it no length either) and there were enough of them to carry 1 GiB + 64 MiB
body=$(grep -ac 'in context 2 toward the client (opaque)$' mb_http.log)
if [ "$body" -ge $((((1 << 30) + (64 << 20)) / 16355)) ]; then ok; else bad "only $body body containers passed"; fi

# ---- the raw path: bytes in the context tagged data (--context), a listener that hashes until EOF ----
cat >hash.py <<'EOF'
import hashlib, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
while True:
    c, _ = s.accept()
    h, n = hashlib.sha256(), 0
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        h.update(d)
        n += len(d)
    line = "%d %s\n" % (n, h.hexdigest())
    print(line, end="", flush=True)
    try:
        c.sendall(line.encode())  # after the EOF: the answer travels on the half that is still open
    except OSError:
        pass
    c.close()
EOF
h_port=$(free_port)
python3 hash.py "$h_port" >hash.out 2>&1 &
pids+=($!)
wait_listen "$h_port" $! "the hashing listener" hash.out
s2_port=$(free_port)
m2_port=$(free_port)
a2_port=$(free_port)
config raw.ucl "$s2_port" "$m2_port" 'context { id = 1; tag = "other"; }
context { id = 2; tag = "data"; }' 'context { which = [ data ]; access = r; }'
"$msp" middlebox -c raw.ucl -a -vv --trust trust.pem >mb_raw.log 2>&1 &
pids+=($!)
wait_listen "$m2_port" $! middlebox mb_raw.log
"$msp" server -c raw.ucl --forward "127.0.0.1:$h_port" --context data --trust trust.pem -v >srv_raw.log 2>&1 &
pids+=($!)
wait_listen "$s2_port" $! "msp server" srv_raw.log

# --stdio: an upload of 64 MiB; stdin's EOF is a close_notify, the listener's EOF, and its answer comes back
want="$((64 << 20)) $(sha256sum <www/64m | cut -d' ' -f1)"
timeout 120 "$msp" client -c raw.ucl --stdio --context data --trust trust.pem <www/64m >stdio.out 2>stdio.err
same "$?" 0 "msp client --stdio exit status"
same "$(cat stdio.out)" "$want" "the listener's hash of the --stdio upload"
lines stdio.err 0
has mb_raw.log "in context 2 toward the server$"
lacks mb_raw.log "in context 1 toward"

# --insecure: one warning line at start, and it runs
timeout 20 "$msp" client -c raw.ucl --stdio --context data --insecure </dev/null >insecure.out 2>insecure.err
same "$?" 0 "msp client --stdio --insecure exit status"
lines insecure.err 1
has insecure.err "^msp client: warning: --insecure: no certificate is verified"
same "$(cat insecure.out)" "0 $(sha256sum </dev/null | cut -d' ' -f1)" "an empty upload"

# a wrong trust file: the server's certificate does not chain to it, the handshake fails, exit 1
timeout 20 "$msp" client -c raw.ucl --stdio --context data --trust other-cert.pem </dev/null >wrong.out 2>wrong.err
same "$?" 1 "msp client with a wrong --trust"
has wrong.err "session 1: ended: TLMSP handshake failed: bad_certificate"
lines wrong.out 0

# --accept and half-close: a plain client sends, shuts down its write side, and still reads the answer
"$msp" client -c raw.ucl --accept "127.0.0.1:$a2_port" --context data --trust trust.pem -v >cli_raw.log 2>&1 &
pids+=($!)
wait_listen "$a2_port" $! "msp client" cli_raw.log
got=$(python3 - "$a2_port" <<'EOF'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"half-close" * 100000)
c.shutdown(socket.SHUT_WR)
answer = b""
while True:
    d = c.recv(4096)
    if not d:
        break
    answer += d
print(answer.decode().strip())
EOF
)
same "$got" "1000000 $(python3 -c 'import hashlib; print(hashlib.sha256(b"half-close" * 100000).hexdigest())')" \
    "the answer after a half-close"
has cli_raw.log "closed cleanly: 1000000 bytes to the peer, 73 from it"

# ---- time-outs: a session that moves no byte ends at --idle-timeout (the TLMSP side is the library's driver) ----
a3_port=$(free_port)
"$msp" client -c raw.ucl --accept "127.0.0.1:$a3_port" --context data --trust trust.pem --idle-timeout 1 >cli_idle.log 2>&1 &
pids+=($!)
wait_listen "$a3_port" $! "msp client" cli_idle.log
got=$(python3 - "$a3_port" <<'EOF'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.settimeout(20)
print("eof" if c.recv(4096) == b"" else "data")
EOF
)
same "$got" eof "an idle session's plain connection closed by the gateway"
has cli_idle.log "session 1: ended: TLMSP side: idle timed out after 1 s"

# ---- script mode: a `file =` of 64 MiB (over the old 16 MiB limit), streamed as the queue drains ----
sed -e 's/^client {/activity {\n    tag = big\n    match { at = 0 }\n    action {\n        send { context = data; file = "www\/64m" }\n        shutdown = yes\n    }\n}\nclient {\n    function = big/' raw.ucl >file.ucl
before=$(grep -c "^$want\$" hash.out)
timeout 60 "$msp" client -c file.ucl --trust trust.pem -P >file.out 2>file.err
same "$?" 0 "script-mode client sending a 64 MiB file"
has file.out "activity big sent 67108864 bytes of file www/64m in context 2"
for _ in $(seq 50); do [ "$(grep -c "^$want\$" hash.out)" -gt "$before" ] && break; sleep 0.1; done
same "$(grep -c "^$want\$" hash.out)" "$((before + 1))" "the listener's hashes of the 64 MiB file"

finish tlmsp_stream
