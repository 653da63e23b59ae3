#!/usr/bin/env bash
# Install the Debian packages the test suite needs (.ci/apt-packages.txt) and make sure the
# PostgreSQL on 127.0.0.1:5432 is up. Idempotent; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t pkgs < <(grep -v '^\s*#' .ci/apt-packages.txt | awk 'NF {print $1}')
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "test-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@"; }
  apt_install "${missing[@]}" || { apt-get -o DPkg::Lock::Timeout=600 update -q; apt_install "${missing[@]}"; }
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  echo "test-deps: starting PostgreSQL"
  if ls /etc/postgresql >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  else
    echo "test-deps: PostgreSQL is not installed; the postgres half of the suite will fail" >&2
    exit 1
  fi
fi
