#!/usr/bin/env bash
# Install the system packages the native sandbox needs, when they are missing.
#   scripts/ensure-system-deps.sh          Prometheus, promtool, Alertmanager, Python's venv, bubblewrap (the
#                                          sandboxes of a candidate's room and model server)
#   scripts/ensure-system-deps.sh --docker the Docker path where no engine or registry is at hand: Debian's
#                                          Docker engine, docker-compose and debootstrap (for the local base image)
#   scripts/ensure-system-deps.sh --test   all of the above (the tests run both paths), Debian's chromium and
#                                          chromedriver (a test drives the interviewer's console in a real browser),
#                                          poppler-utils (the debrief's PDF pages are rendered and looked at),
#                                          and podman with catatonit (a session's Kubernetes pods run under
#                                          `podman kube play`; catatonit is the init of a pod's infra container)
set -euo pipefail

native=1; docker=0; browser=0; pods=0
case "${1:-}" in
  --test) docker=1; browser=1; pods=1 ;;
  --docker) native=0; docker=1 ;;
  "") ;;
  *) echo "usage: $0 [--test|--docker]" >&2; exit 2 ;;
esac

packages=()
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
if [ $native = 1 ]; then
  command -v prometheus >/dev/null && command -v promtool >/dev/null || packages+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || packages+=(prometheus-alertmanager)
  command -v bwrap >/dev/null || packages+=(bubblewrap)
fi
if [ $docker = 1 ]; then
  command -v dockerd >/dev/null || packages+=(docker.io)
  command -v docker >/dev/null || packages+=(docker.io)
  command -v docker-compose >/dev/null || packages+=(docker-compose)
  command -v debootstrap >/dev/null || packages+=(debootstrap)
fi

if [ $pods = 1 ]; then
  command -v podman >/dev/null || packages+=(podman)
  command -v catatonit >/dev/null || [ -x /usr/libexec/podman/catatonit ] || packages+=(catatonit)
fi

if [ $browser = 1 ]; then
  command -v chromium >/dev/null || packages+=(chromium)
  command -v chromedriver >/dev/null || packages+=(chromium-driver)
  command -v pdftoppm >/dev/null || packages+=(poppler-utils)
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
# sort -u: docker.io may be listed twice.
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "installed: ${packages[*]}"
