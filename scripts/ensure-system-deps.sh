#!/usr/bin/env bash
# Install the system packages the native sandbox needs, when they are missing.
#   scripts/ensure-system-deps.sh          Prometheus, promtool, Alertmanager, Python's venv
#   scripts/ensure-system-deps.sh --test   the same, plus docker-compose (its parser validates compose.yaml)
set -euo pipefail

packages=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || packages+=(prometheus)
command -v prometheus-alertmanager >/dev/null || packages+=(prometheus-alertmanager)
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
if [ "${1:-}" = "--test" ]; then
  command -v docker-compose >/dev/null || packages+=(docker-compose)
fi

[ ${#packages[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
  echo "missing system packages: run 'apt-get install ${packages[*]}' as root, then try again" >&2
  exit 1
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
if ! command -v apt-get >/dev/null; then
  echo "missing: ${packages[*]} (Prometheus 2.42+ and Alertmanager 0.25+ on PATH as prometheus, promtool, prometheus-alertmanager)" >&2
  exit 1
fi
echo "installing system packages: ${packages[*]} ..."
# --no-install-recommends: Debian's prometheus recommends node-exporter and friends, which the sandbox does not use.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "installed: ${packages[*]}"
