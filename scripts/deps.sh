#!/usr/bin/env bash
# Installs the Debian 12 packages msp needs to build and test, and only
# those that are missing. Run as root (or with sudo available).
set -euo pipefail

packages=(build-essential cmake pkg-config libssl-dev libcmocka-dev libpcap-dev libev-dev libevent-dev libc-ares-dev libpcre2-dev libipsec-mb-dev openssl clang-format tshark curl procps nginx python3 gcovr groff-base libhttp-parser-dev c-icap libc-icap-mod-virus-scan clamav clamav-daemon haproxy iproute2 python3-jsonschema chromium poppler-utils libxml2-dev)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "msp: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
