#!/usr/bin/env bash
# Installs the Debian packages TradeTalk runs and tests with. Safe to run again.
set -euo pipefail
# redis-server: embedded Redis; apertium*: rule-based en<->es translation;
# chromium*, fonts-noto-*: browser tests (CJK and emoji glyphs in screenshots);
# fonts-dejavu-core, fonts-wqy-microhei, fonts-lohit-deva: quote PDFs (Latin/Cyrillic/Arabic,
# Chinese/Japanese/Korean, Hindi);
# nodejs/npm (only when there is no npm at all): the web client's packages.
# iproute2: the multi-host tests (network namespaces, veth, bridge).
packages=(redis-server apertium apertium-eng-spa chromium chromium-driver fonts-noto-cjk fonts-noto-color-emoji
  fonts-dejavu-core fonts-wqy-microhei fonts-lohit-deva iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
command -v npm >/dev/null || missing+=(nodejs npm)
# Debian's own python3 needs python3-venv for `python3 -m venv` (pyenv/python.org builds don't).
${PYTHON:-python3} -c "import ensurepip" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present (${packages[*]}, npm)"
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
