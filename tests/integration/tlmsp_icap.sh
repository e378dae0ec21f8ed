#!/usr/bin/env bash
# msp middlebox --icap against a real ICAP antivirus: Debian's c-icap with its virus_scan service over
# clamd, with a signature database made here with sigtool (the EICAR test string; no download), all in a
# temp dir with its own sockets and a port picked at run time (docs/shared icap.md's setup).
# Checks: clean data passes byte for byte both ways; EICAR in a read-only context is blocked both ways
# (fatal access_denied at both endpoints, one log line naming the ICAP status and X-Infection-Found);
# EICAR in a writable context is replaced by the service's page (from the middlebox); an unreachable
# service fails closed (at start: exit 1; during a session: alert and a log line); a bad URL exits 2.
# Usage: tlmsp_icap.sh MSP SOURCE_DIR
set -uo pipefail
msp=$1
tmp=$(mktemp -d)
. "$(dirname "$0")/lib.sh"
has() { if grep -qE -- "$2" "$1"; then ok; else bad "$1 lacks /$2/: $(head -c 800 "$1")"; fi; }
hasnt() { if grep -qE -- "$2" "$1"; then bad "$1 has /$2/"; else ok; fi; }
exited() { if [ "$2" -eq "$1" ]; then ok; else bad "exited $2, expected $1: $(tail -c 600 "$3")"; fi; }

for tool in c-icap clamd sigtool; do
    if ! command -v $tool >/dev/null; then
        echo "tlmsp_icap: $tool is missing (scripts/deps.sh installs c-icap, clamav, clamav-daemon)" >&2
        if [ "${CI:-}" = true ]; then exit 1; fi
        echo "tlmsp_icap: SKIP"
        exit 0
    fi
done
modules=/usr/lib/x86_64-linux-gnu/c_icap
if [ ! -f "$modules/virus_scan.so" ]; then
    echo "tlmsp_icap: $modules/virus_scan.so is missing (libc-icap-mod-virus-scan)" >&2
    if [ "${CI:-}" = true ]; then exit 1; fi
    echo "tlmsp_icap: SKIP"
    exit 0
fi

# ---- clamd with a local signature database ----
cd "$tmp" || exit 1
printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >eicar.com
mkdir db && sigtool --md5 eicar.com >db/test.hdb
# the hash above matches a file that is EICAR and nothing else; this body signature finds it anywhere in a
# message (a reflected request and the EICAR reply can share one)
echo "msp-eicar-body:0:*:$(od -An -tx1 eicar.com | tr -d ' \n')" >db/test.ndb
cat >clamd.conf <<EOF
LocalSocket $tmp/clamd.sock
DatabaseDirectory $tmp/db
Foreground yes
TemporaryDirectory $tmp
User $(id -un)
EOF
clamd -c clamd.conf >clamd.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S clamd.sock ] && break; sleep 0.1; done
[ -S clamd.sock ] || { echo "tlmsp_icap: clamd did not start: $(tail -c 400 clamd.log)" >&2; exit 1; }

# ---- c-icap on a free port ----
icap_up() {
    for _ in 1 2 3 4 5 6; do
        icap_port=$(port_candidate)
        cat >c-icap.conf <<EOF
PidFile $tmp/c-icap.pid
CommandsSocket $tmp/c-icap.ctl
Port 127.0.0.1:$icap_port
StartServers 1
MaxServers 2
TmpDir $tmp
ModulesDir $modules
ServicesDir $modules
TemplateDir /usr/share/c_icap/templates/
ServerLog $tmp/icap.log
Module common clamd_mod.so
clamd_mod.ClamdSocket $tmp/clamd.sock
Service antivirus_module virus_scan.so
ServiceAlias avscan virus_scan?allow204=on&sizelimit=off&mode=simple
virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE
virus_scan.DefaultEngine clamd
EOF
        c-icap -N -f c-icap.conf >c-icap.out 2>&1 &
        icap_pid=$!
        for _ in $(seq 30); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$icap_port") 2>/dev/null; then
                pids+=("$icap_pid")
                return 0
            fi
            kill -0 "$icap_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$icap_pid" 2>/dev/null
        wait "$icap_pid" 2>/dev/null
    done
    echo "tlmsp_icap: c-icap did not start: $(tail -c 400 c-icap.out)" >&2
    exit 1
}
icap_up
url="icap://127.0.0.1:$icap_port/avscan?allow204=on&sizelimit=off&mode=simple"

# ---- certificates, data and the configuration ----
for n in server mbox1; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$n-key.pem" -out "$n-cert.pem" -days 2 -subj "/CN=$n" \
        >/dev/null 2>&1
done
# clean data over two containers (16355 bytes each at most)
for i in $(seq 600); do printf 'clean line %04d of the test data, nothing to see here\n' "$i"; done >clean.txt
clean_len=$(wc -c <clean.txt)

# conf FILE CLIENT_FUNCTIONS: contexts ro (the middlebox reads) and rw (it writes); the server answers
# "give-me-ro" / "give-me-rw" with the EICAR file in that context and presents what it matches.
conf() {
    cat >"$1" <<EOF
context { id = 1; tag = ro }
context { id = 2; tag = rw }
activity { tag = send-clean; match { at = 0 } action { send { context = ro; file = "clean.txt" } } }
activity { tag = send-eicar-ro; match { at = 0 } action { send { context = ro; file = "eicar.com" } } }
activity { tag = send-eicar-rw; match { at = 0 } action { send { context = rw; file = "eicar.com" } } }
activity { tag = send-big; match { at = 0 } action { send { context = ro; file = "big.bin" } } }
activity { tag = ask-ro; match { at = 0 } action { send { context = ro; data = "give-me-ro" } } }
activity { tag = ask-rw; match { at = 0 } action { send { context = rw; data = "give-me-rw" } } }
activity { tag = got-clean; present = yes; match { which = *; file = "clean.txt" } action { shutdown = yes } }
activity { tag = got-page; present = yes; match { which = *; data = "VIRUS FOUND" } action { shutdown = yes } }
activity { tag = srv-clean; present = yes; match { which = *; file = "clean.txt" } action { } }
activity { tag = srv-eicar; present = yes; match { which = *; data = "EICAR" } action { } }
activity { tag = srv-ro; match { which = *; data = "give-me-ro" } action { send { context = ro; file = "eicar.com" } } }
activity { tag = srv-rw; match { which = *; data = "give-me-rw" } action { send { context = rw; file = "eicar.com" } } }
client { address = tlmsp://localhost; function = [ $2 ] }
middlebox {
    tag = mbox1
    address = tlmsp://localhost:10401
    context { which = ro; access = r }
    context { which = rw; access = rw }
}
server { address = tlmsp://localhost:10455; function = [ srv-clean, srv-eicar, srv-ro, srv-rw ] }
EOF
}
conf base.ucl send-clean
shift_by=$(free_shift)

# ---- bad input and an unreachable service ----
run 2 "$msp" middlebox -c base.ucl -t mbox1 --icap "http://127.0.0.1/avscan"
has "$tmp/err" "^msp middlebox: --icap: .*not an icap:// URL"
run 2 "$msp" client -c base.ucl --icap "$url"
has "$tmp/err" "unknown option '--icap'"
dead=$(port_candidate)
run 1 timeout 20 "$msp" middlebox -c base.ucl -t mbox1 -p "$shift_by" --icap "icap://127.0.0.1:$dead/avscan"
has "$tmp/err" "^msp middlebox: --icap: icap://127.0.0.1:$dead/avscan: cannot connect"

# ---- server and middlebox ----
# serving SHIFT SRV_PID SRV_LOG MB_PID MB_LOG: the server and the middlebox each listen on their own port (a check),
# before any client starts
serving() {
    wait_listen $((10455 + $1)) "$2" "msp server" "$3"
    wait_listen $((10401 + $1)) "$4" "msp middlebox" "$5"
}
"$msp" server -c base.ucl -p "$shift_by" -r -P >srv.log 2>&1 &
srv_pid=$!
pids+=("$srv_pid")
"$msp" middlebox -c base.ucl -t mbox1 -p "$shift_by" --icap "$url" >mb.log 2>&1 &
mb_pid=$!
pids+=("$mb_pid")
serving "$shift_by" "$srv_pid" srv.log "$mb_pid" mb.log

# client NAME FUNCTIONS: runs a client with these activities; its output in NAME.log, its status in $st
client() {
    conf "$1.ucl" "$2"
    timeout 20 "$msp" client -c "$1.ucl" -p "$shift_by" -P >"$1.log" 2>&1
    st=$?
}

# clean data, both ways (the server reflects it), byte for byte: the file matches whole at both ends
client clean "send-clean, got-clean"
exited 0 $st clean.log
has clean.log "got-clean matched $clean_len bytes"
has srv.log "srv-clean matched $clean_len bytes"

# EICAR toward the server in the read-only context: blocked, both endpoints get access_denied
client eicar_ro "send-eicar-ro"
exited 1 $st eicar_ro.log
has eicar_ro.log "fatal alert access_denied \\(49\\)"
eventually mb.log "mbox1: 127.0.0.1:[0-9]+ -> 127.0.0.1:$((10455 + shift_by)): blocked client->server data in context 1: ICAP 200 HTTP 403, X-Infection-Found: .*Threat=(eicar.com|msp-eicar-body).UNOFFICIAL.* from icap://"
hasnt srv.log "srv-eicar matched"
has srv.log "fatal alert access_denied"

# EICAR toward the client in the read-only context: blocked
client down_ro "ask-ro"
exited 1 $st down_ro.log
has down_ro.log "fatal alert access_denied \\(49\\)"
eventually mb.log "blocked server->client data in context 1: ICAP 200 HTTP 403, X-Infection-Found: .*Threat=(eicar.com|msp-eicar-body).UNOFFICIAL"
hasnt down_ro.log "EICAR"

# EICAR toward the server in the writable context: the client gets the service's page, from the middlebox
client eicar_rw "send-eicar-rw, got-page"
exited 0 $st eicar_rw.log
has eicar_rw.log "got-page matched 11 bytes in context 2"
has mb.log "client->server data in context 2 replaced by the ICAP answer"
hasnt srv.log "srv-eicar matched"

# EICAR toward the client in the writable context: replaced by the page (RESPMOD)
client down_rw "ask-rw, got-page"
exited 0 $st down_rw.log
has down_rw.log "got-page matched 11 bytes in context 2"
has mb.log "server->client data in context 2 replaced by the ICAP answer"

# a message longer than a part (1 MiB) with EICAR at its end: scanned in parts (said once), the last one blocked
for i in $(seq 20); do cat clean.txt clean.txt; done >big.bin
cat eicar.com >>big.bin
client big "send-big"
exited 1 $st big.log
has big.log "fatal alert access_denied \\(49\\)"
eventually mb.log "client->server data over 1048576 bytes \\(or 1024 containers\\) without a pause: scanned in parts"
has mb.log "blocked client->server data in context 1: ICAP 200 HTTP 403"
hasnt srv.log "srv-eicar matched"

# ---- HTTP mode: contexts tagged header and body (the endpoints' --contexts http), both writable here ----
cat >http.tmpl <<EOF
context { id = 3; tag = header }
context { id = 4; tag = body }
activity {
    tag = post-clean
    match { at = 0 }
    action {
        send { context = header; data = "POST /clean HTTP/1.1%0d%0aHost: t%0d%0aContent-Length: $clean_len%0d%0a%0d%0a" }
        send { context = body; file = "clean.txt" }
    }
}
activity {
    tag = post-eicar
    match { at = 0 }
    action {
        send { context = header; data = "POST /up HTTP/1.1%0d%0aHost: t%0d%0aContent-Length: 68%0d%0a%0d%0a" }
        send { context = body; file = "eicar.com" }
    }
}
activity { tag = got-fine; present = yes; match { which = body; data = "fine!" } action { shutdown = yes } }
activity { tag = got-403; present = yes; match { which = header; data = "403 Forbidden" } action { } }
activity { tag = got-length; present = yes; match { which = header; data = "Content-Length: " } action { } }
activity { tag = got-page; present = yes; match { which = body; data = "VIRUS FOUND" } action { shutdown = yes } }
activity {
    tag = srv-clean
    present = yes
    match { which = body; file = "clean.txt" }
    action {
        send { context = header; data = "HTTP/1.1 200 OK%0d%0aContent-Length: 5%0d%0a%0d%0a" }
        send { context = body; data = "fine!" }
    }
}
activity { tag = srv-eicar; present = yes; match { which = *; data = "EICAR" } action { } }
client { address = tlmsp://localhost; function = [ CLIENT ] }
middlebox {
    tag = mbox1
    address = tlmsp://localhost:10401
    context { which = header; access = rw }
    context { which = body; access = rw }
}
server { address = tlmsp://localhost:10455; function = [ srv-clean, srv-eicar ] }
EOF
sed 's/CLIENT/got-fine/' http.tmpl >http.ucl
hshift=$(free_shift)
"$msp" server -c http.ucl -p "$hshift" -P >hsrv.log 2>&1 &
hsrv_pid=$!
pids+=("$hsrv_pid")
"$msp" middlebox -c http.ucl -t mbox1 -p "$hshift" --icap "$url" >hmb.log 2>&1 &
hmb_pid=$!
pids+=("$hmb_pid")
serving "$hshift" "$hsrv_pid" hsrv.log "$hmb_pid" hmb.log
sed 's/CLIENT/post-clean, got-fine/' http.tmpl >hclean.ucl
timeout 20 "$msp" client -c hclean.ucl -p "$hshift" -P >hclean.log 2>&1
exited 0 $? hclean.log
has hsrv.log "srv-clean matched $clean_len bytes in context 4"
has hclean.log "got-fine matched 5 bytes in context 4"
sed 's/CLIENT/post-eicar, got-403, got-length, got-page/' http.tmpl >heicar.ucl
timeout 20 "$msp" client -c heicar.ucl -p "$hshift" -P >heicar.log 2>&1
exited 0 $? heicar.log
# the service's 403 page, as a whole HTTP message from the middlebox: header (with its length) and body
has heicar.log "got-403 matched 13 bytes in context 3"
has heicar.log "got-length matched 16 bytes in context 3"
has heicar.log "got-page matched 11 bytes in context 4"
hasnt hsrv.log "srv-eicar matched"
eventually hmb.log "client->server data in context 3 replaced by the ICAP answer \\([0-9]+ bytes, X-Infection-Found: .*Threat="

# ---- stream mode, real applications: curl -> msp client --accept -> middlebox --icap -> msp server --forward -> nginx
if command -v nginx >/dev/null && command -v curl >/dev/null; then
    up() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
    mkdir www
    cp clean.txt www/clean.txt
    cp eicar.com www/eicar.txt
    head -c $((3 << 20)) /dev/urandom >www/3m
    ngx_port=$(free_port)
    cat >nginx.conf <<EOF
user root;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log notice;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    default_type application/octet-stream;
    server { listen 127.0.0.1:$ngx_port; root $tmp/www; }
}
EOF
    nginx -p "$tmp" -c "$tmp/nginx.conf" -g 'daemon off;' >nginx.out 2>&1 &
    pids+=($!)
    up "$ngx_port" || bad "nginx did not start: $(tail -c 300 nginx-error.log)"
    cat server-cert.pem mbox1-cert.pem >trust.pem
    # gateway NAME ACCESS: the three programs for a middlebox with ACCESS to header and body; $a_port is curl's
    gateway() {
        local s_port m_port
        s_port=$(free_port)
        m_port=$(free_port)
        a_port=$(free_port)
        cat >"$1.ucl" <<EOF
context { id = 1; tag = "header"; }
context { id = 2; tag = "body"; }
middlebox { tag = mbox1; address = tlmsp://127.0.0.1:$m_port; context { which = [ header, body ]; access = $2; } }
client { address = tlmsp://127.0.0.1 }
server { address = tlmsp://127.0.0.1:$s_port }
EOF
        "$msp" middlebox -c "$1.ucl" -a --trust trust.pem --icap "$url" >"$1-mb.log" 2>&1 &
        pids+=($!)
        "$msp" server -c "$1.ucl" --forward "127.0.0.1:$ngx_port" --contexts http --trust trust.pem >"$1-srv.log" 2>&1 &
        pids+=($!)
        "$msp" client -c "$1.ucl" --accept "127.0.0.1:$a_port" --contexts http --trust trust.pem >"$1-cli.log" 2>&1 &
        pids+=($!)
        up "$m_port" && up "$s_port" && up "$a_port" || bad "$1: the gateway did not start: $(tail -c 300 "$1-mb.log")"
    }
    gateway rw rw
    curl -sS --max-time 20 -o got-clean "http://127.0.0.1:$a_port/clean.txt"
    if cmp -s got-clean www/clean.txt; then ok; else bad "stream: clean.txt differs after the middlebox"; fi
    curl -sS --max-time 30 -o got-3m "http://127.0.0.1:$a_port/3m"
    if cmp -s got-3m www/3m; then ok; else bad "stream: 3m differs after the middlebox ($(wc -c <got-3m) bytes)"; fi
    code=$(curl -sS --max-time 20 -o got-eicar -w '%{http_code}' "http://127.0.0.1:$a_port/eicar.txt")
    if [ "$code" = 403 ]; then ok; else bad "stream: GET eicar.txt answered $code, expected the service's 403"; fi
    has got-eicar "VIRUS FOUND"
    code=$(curl -sS --max-time 20 -o got-up -w '%{http_code}' --data-binary @eicar.com "http://127.0.0.1:$a_port/up")
    if [ "$code" = 403 ]; then ok; else bad "stream: an EICAR upload answered $code, expected the service's 403"; fi
    has got-up "VIRUS FOUND"
    eventually rw-mb.log "server->client data in context 1 replaced by the ICAP answer"
    has rw-mb.log "client->server data in context 1 replaced by the ICAP answer .*sent back to the client"
    gateway ro r
    curl -sS --max-time 20 -o got-ro "http://127.0.0.1:$a_port/eicar.txt" >curl-ro.log 2>&1
    if grep -q EICAR got-ro 2>/dev/null; then bad "stream: EICAR passed a read-only middlebox"; else ok; fi
    eventually ro-mb.log "blocked server->client data in context 1: ICAP 200 HTTP 403"
    curl -sS --max-time 20 -o got-ro-clean "http://127.0.0.1:$a_port/clean.txt"
    if cmp -s got-ro-clean www/clean.txt; then ok; else bad "stream: clean.txt differs after a read-only middlebox"; fi
else
    bad "nginx or curl is missing (scripts/deps.sh installs them)"
fi

# the service goes away: the next session fails closed
kill "$icap_pid"
wait "$icap_pid" 2>/dev/null
client gone "send-clean, got-clean"
exited 1 $st gone.log
has gone.log "fatal alert internal_error"
eventually mb.log "ICAP: icap://127.0.0.1:$icap_port/.*cannot connect.*session ended \\(fail closed\\)"
hasnt gone.log "got-clean matched"

[ -n "${KEEP:-}" ] && cp -r "$tmp" "$KEEP"
finish tlmsp_icap
