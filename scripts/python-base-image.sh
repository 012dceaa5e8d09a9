#!/usr/bin/env bash
# Builds the local Python base image of the image-function tests (no registry needed):
# a minimal Debian bookworm root filesystem with python3 made by debootstrap from the
# machine's configured Debian mirror, imported with `docker import`.
#
#   scripts/python-base-image.sh            # prints the tag; builds only when missing
#
# Cached twice: the image itself (nothing to do when the engine has it), and the root
# filesystem's tarball in $FAAS_TEST_CACHE (default /var/cache/faas-test), re-imported when
# the engine lost the image (a fresh engine, `docker system prune`). debootstrap runs only
# when neither exists (a few minutes). A lock file makes parallel callers (tests run two
# at a time) wait for one build instead of making two.
#
# Environment: PYTHON_BASE_TAG (faas-test/python-base:bookworm), DEBIAN_MIRROR (else the
# first bookworm mirror of /etc/apt/sources.list{,.d/*}), FAAS_TEST_CACHE. Needs root
# (debootstrap; installs it with apt-get when missing) and a running Docker engine.
set -euo pipefail

TAG=${PYTHON_BASE_TAG:-faas-test/python-base:bookworm}
SUITE=bookworm
CACHE=${FAAS_TEST_CACHE:-/var/cache/faas-test}
TARBALL="$CACHE/python-base-$SUITE.tar.gz"
# Packages on top of minbase: the interpreter and its standard library (urllib, json,
# hashlib), and CA certificates for images that fetch over TLS.
PACKAGES=python3,ca-certificates

log() { printf '[python-base] %s\n' "$*" >&2; }
have_image() { docker image inspect "$TAG" >/dev/null 2>&1; }

# The Debian mirror apt already uses here (deb822 `URIs:` or one-line `deb URL SUITE`).
mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list)
  local found
  found=$(awk -v suite="$SUITE" '
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite && uri != "") { print uri; exit } }
    /^deb / { for (i = 3; i <= NF; i++) if ($i == suite) { print $2; exit } }
  ' "${files[@]}" 2>/dev/null | grep -v security | head -1)
  echo "${found:-http://deb.debian.org/debian}"
}

build_tarball() {
  command -v debootstrap >/dev/null || {
    [ "$(id -u)" = 0 ] || { log "debootstrap missing: apt-get install debootstrap"; exit 1; }
    log "apt-get install debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  local url started
  url=$(mirror)
  ROOTFS=$(mktemp -d /var/tmp/python-base.XXXXXX)
  trap 'rm -rf "$ROOTFS" "$ROOTFS.log"' EXIT
  local root=$ROOTFS
  started=$(date +%s)
  log "debootstrap --variant=minbase --include=$PACKAGES $SUITE from $url (a few minutes)"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$url" \
    >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
  rm -f "$root.log"
  # What a container never needs: package caches and lists, docs, man pages, locales.
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
    "$root"/usr/share/man "$root"/usr/share/info "$root"/usr/share/locale "$root"/dev/*
  mkdir -p "$CACHE"
  tar --numeric-owner -C "$root" -czf "$TARBALL.part" .
  mv "$TARBALL.part" "$TARBALL"
  log "root filesystem of $(du -sh "$TARBALL" | cut -f1) in $(( $(date +%s) - started )) s: $TARBALL"
}

main() {
  if have_image; then echo "$TAG"; return; fi
  mkdir -p "$CACHE"
  exec 9>"$CACHE/python-base.lock"
  flock 9
  # Another caller may have built it while this one waited for the lock.
  if ! have_image; then
    [ -s "$TARBALL" ] || build_tarball
    log "docker import $TARBALL as $TAG"
    docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
      --change 'CMD ["python3"]' "$TARBALL" "$TAG" >/dev/null
  fi
  echo "$TAG"
}

main "$@"
