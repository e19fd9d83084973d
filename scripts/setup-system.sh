#!/usr/bin/env bash
# Installs the Debian packages TradeTalk runs and tests with. Safe to run again.
set -euo pipefail
packages=(redis-server apertium apertium-eng-spa)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present (${packages[*]})"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "system packages missing (${missing[*]}) and apt-get is not available: install them by hand" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
