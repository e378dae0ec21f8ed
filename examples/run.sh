#!/usr/bin/env bash
# Builds the examples against the libmsp installed in PREFIX (through pkg-config only) and runs each:
# a profile check, a TLMSP client against the installed `msp server`, and an ETS capture decrypted to
# plaintext, compared with what the installed `msp ets decrypt` recovers from the same capture.
# usage: run.sh PREFIX BENCH_ETS   (BENCH_ETS: the build's bench_ets, which records an ETS capture)
set -uo pipefail
prefix=$(realpath "$1")
bench_ets=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
. "$here/../tests/integration/lib.sh"
has() { if grep -qE -- "$2" "$1"; then ok; else bad "$1 lacks /$2/: $(head -c 600 "$1")"; fi; }
msp=$prefix/bin/msp

# Build out of tree, so that the source folder stays clean.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
for p in tlmsp_client ets_decrypt profile_check; do
    cp "$here/$p.c" "$tmp/"
done
if make -C "$tmp" -f "$here/Makefile" >"$tmp/make.log" 2>&1; then ok; else bad "make: $(cat "$tmp/make.log")"; fi
# Only what pkg-config gave: the installed headers and libraries, never the source tree's.
root=$(dirname "$here")
if grep -qE -- "-I$root/(include|src)|-L$root/build[^ ]*/src" "$tmp/make.log"; then
    bad "the examples were built against the source tree: $(grep -E -- "-I$root" "$tmp/make.log" | head -1)"
else
    ok
fi

# The static archive too: the same program linked with libmsp.a (pkg-config --static for its dependencies).
static_libs=$(pkg-config --static --libs msp | sed 's/-lmsp\b//')
# shellcheck disable=SC2086
if cc -std=c17 -o "$tmp/profile_check_static" "$here/profile_check.c" $(pkg-config --cflags msp) \
    "$prefix/lib/libmsp.a" $static_libs >"$tmp/static.log" 2>&1; then ok; else bad "static link: $(cat "$tmp/static.log")"; fi
if ldd "$tmp/profile_check_static" | grep -q libmsp; then bad "the static build loads libmsp.so"; else ok; fi
run 0 "$tmp/profile_check_static" ets

# ---- profile check ----
run 0 "$tmp/profile_check" ets
has "$tmp/out" "ets: 0 error\(s\)"
"$msp" framework new broken >"$tmp/broken.ucl"
run 1 "$tmp/profile_check" "$tmp/broken.ucl"
has "$tmp/out" "[1-9][0-9]* error\(s\)"
run 2 "$tmp/profile_check" "$tmp/missing.ucl"

# ---- TLMSP client against msp server ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/server-key.pem" -out "$tmp/server-cert.pem" -days 2 \
    -subj "/CN=server" >/dev/null 2>&1
# The port from free_shift (below the ephemeral range, free now), and the client starts only once the server
# itself listens there: a fixed 5 s of polling with a port in the ephemeral range failed CI once.
shift_by=$(free_shift)
cp "$here/../data/tlmsp/pingpong.ucl" "$tmp/pp.ucl"
"$msp" server -c "$tmp/pp.ucl" -p "$shift_by" >"$tmp/srv" 2>&1 &
srv_pid=$!
pids+=($srv_pid)
port=$((10455 + shift_by))
wait_listen "$port" "$srv_pid" "msp server" "$tmp/srv"
run 0 timeout 20 "$tmp/tlmsp_client" 127.0.0.1 "$port" "tlmsp://localhost:$port" 1 client-ping
has "$tmp/out" "^context 1: server-pong$"
closed=$(free_port)
run 1 timeout 20 "$tmp/tlmsp_client" 127.0.0.1 "$closed" "tlmsp://localhost:$port" 1 client-ping
has "$tmp/err" "cannot connect"

# ---- ETS: capture to plaintext ----
if "$bench_ets" --connections 3 --size 20000 --handshakes 0 --skip-tshark --msp "$msp" --keep "$tmp/ets" \
    >"$tmp/bench.log" 2>&1; then ok; else bad "bench_ets: $(tail -c 600 "$tmp/bench.log")"; fi
cap=$(ls "$tmp"/ets/*.pcap* 2>/dev/null | head -1)
key=$(ls "$tmp"/ets/*.pem 2>/dev/null | head -1)
run 0 "$tmp/ets_decrypt" "$key" "$cap" "$tmp/plain"
run 0 "$msp" ets decrypt --key "$key" --pcap "$cap" --out "$tmp/plain-msp" --events "$tmp/events.json"
# The same plaintexts, whatever the files are called: the sorted digests of the non-empty files.
digests() { find "$1" -type f -size +0 -exec sha256sum {} + | awk '{print $1}' | sort; }
digests "$tmp/plain" >"$tmp/d1"
digests "$tmp/plain-msp" >"$tmp/d2"
if [ -s "$tmp/d1" ] && cmp -s "$tmp/d1" "$tmp/d2"; then
    ok
else
    bad "ets_decrypt and msp ets decrypt recovered different plaintext: $(diff "$tmp/d1" "$tmp/d2" | head -c 600)"
fi

finish examples
