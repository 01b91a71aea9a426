#!/usr/bin/env bash
# Debian packages needed to build the Python requirements (mysqlclient compiles against
# libmariadb). Installed only when missing, so a warm run costs nothing.
set -euo pipefail
missing=()
for package in pkg-config libmariadb-dev; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "requirements: missing Debian packages ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "requirements: installing ${missing[*]} from Debian"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q "${missing[@]}" >/dev/null
