#!/usr/bin/env bash
# Runs every test of the repository: typecheck, lint, unit, integration, e2e
# (real Chromium, real coturn, real redis-server, the NAT lab, real containers
# under Podman pulled from a loopback registry).
# Installs the Debian packages the tests need when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null || need+=(chromium)
command -v turnserver >/dev/null || need+=(coturn)
command -v redis-server >/dev/null || need+=(redis-server)
command -v iptables >/dev/null || need+=(iptables)
command -v ip >/dev/null || need+=(iproute2)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static) # a static binary, copied into test images
command -v docker-registry >/dev/null || need+=(docker-registry)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: ${need[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
  else
    echo "missing Debian packages: ${need[*]} — install them (sudo apt-get install ${need[*]}) and run again" >&2
    exit 1
  fi
fi

[ -d node_modules ] || npm ci

echo "== lint"
npx eslint .
npx prettier --check . >/dev/null || { echo "prettier: run npm run format"; exit 1; }
echo "== typecheck"
npx tsc -p tsconfig.json
npx tsc -p web-client/tsconfig.json --noEmit
echo "== build web client"
npm run build -w @peerway/web-client --if-present
echo "== tests"
npx vitest run "$@"
