#!/usr/bin/env bash
# Rebuilds the sample functions. Works from any directory.
#
#   samples/build.sh small   C + Rust modules -> samples/wasm/*.wasm (small; committed)
#   samples/build.sh large   Python + JS components (the faas:function hello and the
#                            wasi:http JSON API of each) -> samples/build/*.wasm (> 4 MiB;
#                            not committed), each skipped when the hash of its sources, its
#                            WIT and the tool versions equals the one stored beside it
#   samples/build.sh         both
#
# Environment:
#   SAMPLES_TARGET_DIR  cargo target dir of the Rust samples (default samples/target)
#   FORCE=1             rebuild the large components even when their hash is unchanged
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
WIT="$ROOT/wit"
WIT_HTTP="$HERE/wit-http" # wasi:http/proxy and its deps, as Wasmtime 48 links them
WASI_HTTP_VERSION="0.2.12"
WASM_DIR="$HERE/wasm"
BUILD_DIR="$HERE/build"
TARGET_DIR="${SAMPLES_TARGET_DIR:-$HERE/target}"

COMPONENTIZE_PY_VERSION="0.25.1"

log() { printf '[samples] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
size_of() { wc -c <"$1" | tr -d ' '; }

# Installs Debian packages when running as root with apt-get, else says what is missing.
apt_install() {
    if [ "$(id -u)" = 0 ] && have apt-get; then
        log "installing $*"
        apt-get install -y "$@" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$@" >/dev/null; }
    else
        die "missing: $* (apt-get install -y $*)"
    fi
}

# ---------------------------------------------------------------- small: C + Rust

build_c() {
    if ! have clang || ! have wasm-ld || [ ! -e /usr/lib/wasm32-wasi/libc.a ] ||
        ! ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1; then
        apt_install clang lld wasi-libc libclang-rt-14-dev-wasm32
    fi
    local name t
    for name in hello spin; do
        t="$(now)"
        clang --target=wasm32-wasi -O2 -Wall -Wextra -Werror -Wl,--strip-all \
            -o "$WASM_DIR/c-$name.wasm.tmp" "$HERE/c/$name/$name.c"
        chmod 644 "$WASM_DIR/c-$name.wasm.tmp"
        mv "$WASM_DIR/c-$name.wasm.tmp" "$WASM_DIR/c-$name.wasm"
        log "c-$name.wasm: $(size_of "$WASM_DIR/c-$name.wasm") bytes in $(elapsed "$t") s"
    done
}

ensure_rust_target() {
    have cargo || die "cargo not found (install Rust with rustup)"
    if have rustup && ! rustup target list --installed | grep -qx "$1"; then
        log "adding the Rust target $1"
        rustup target add "$1" >&2 || return 1
    fi
}

# Cargo flags that keep the committed modules reproducible: no machine-specific paths.
rust_env() {
    local cargo_home="${CARGO_HOME:-$HOME/.cargo}"
    local sep=$'\x1f'
    export CARGO_TARGET_DIR="$TARGET_DIR"
    export CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=${cargo_home}=/cargo${sep}--remap-path-prefix=${HERE}=/samples"
    unset RUSTFLAGS
}

# build_rust <crate dir> <target> <artifact name> <output name>
build_rust() {
    local dir="$HERE/rust/$1" target="$2" artifact="$3" out="$4" t locked=()
    [ -e "$dir/Cargo.lock" ] && locked=(--locked)
    t="$(now)"
    (rust_env && cargo build --quiet --release --target "$target" "${locked[@]}" \
        --manifest-path "$dir/Cargo.toml")
    cp "$TARGET_DIR/$target/release/$artifact" "$WASM_DIR/$out.tmp"
    chmod 644 "$WASM_DIR/$out.tmp"
    mv "$WASM_DIR/$out.tmp" "$WASM_DIR/$out"
    log "$out: $(size_of "$WASM_DIR/$out") bytes in $(elapsed "$t") s"
}

build_small() {
    mkdir -p "$WASM_DIR"
    build_c
    ensure_rust_target wasm32-wasip1 || die "cannot add the Rust target wasm32-wasip1"
    build_rust hello wasm32-wasip1 rust-hello.wasm rust-hello.wasm
    build_rust read-object wasm32-wasip1 rust-read-object.wasm rust-read-object.wasm
    build_rust read-secret wasm32-wasip1 rust-read-secret.wasm rust-read-secret.wasm
    build_rust summarize wasm32-wasip1 rust-summarize.wasm rust-summarize.wasm
    if ensure_rust_target wasm32-wasip2; then
        build_rust hello-component wasm32-wasip2 rust_hello_component.wasm rust-hello-component.wasm
        build_rust http-hello wasm32-wasip2 rust_http_hello.wasm rust-http-hello.wasm
        build_rust http-api wasm32-wasip2 rust_http_api.wasm rust-http-api.wasm
        build_rust http-fetch wasm32-wasip2 rust_http_fetch.wasm rust-http-fetch.wasm
    else
        log "warning: no wasm32-wasip2 target; skipping the wasm32-wasip2 components"
    fi
}

# ---------------------------------------------------------------- large: Python + JS

# Hash of the given files (by path relative to the repo root and content) and extra text.
inputs_hash() {
    local extra="$1"; shift
    {
        printf '%s\n' "$extra"
        for f in "$@"; do
            printf '%s\n' "${f#"$ROOT"/}"
            sha256sum <"$f"
        done
    } | sha256sum | cut -d' ' -f1
}

# The .wit files under a directory (default: the platform's wit/), in a stable order.
wit_files() { find "${1:-$WIT}" -type f -name '*.wit' | LC_ALL=C sort; }

# up_to_date <output> <hash>: true when output exists and its stored hash matches.
up_to_date() {
    [ "${FORCE:-0}" != 1 ] && [ -s "$1" ] && [ -f "$1.sha256" ] && [ "$(cat "$1.sha256")" = "$2" ]
}

ensure_componentize_py() {
    if ! have componentize-py || [ "$(componentize-py --version 2>/dev/null | awk '{print $2}')" != "$COMPONENTIZE_PY_VERSION" ]; then
        log "installing componentize-py $COMPONENTIZE_PY_VERSION"
        python3 -m pip install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
        hash -r
    fi
}

# build_python <sample dir under python/> <output name> <WIT dir> <world>
build_python() {
    local name="$1" src="$HERE/python/$1" out="$BUILD_DIR/$2" wit_dir="$3" world="$4" h t
    local files=() wit=()
    mapfile -t wit < <(wit_files "$wit_dir")
    files=("$src/app.py" "${wit[@]}")
    h="$(inputs_hash "python-$name recipe 1; componentize-py $COMPONENTIZE_PY_VERSION" "${files[@]}")"
    if up_to_date "$out" "$h"; then
        log "$2: up to date ($(size_of "$out") bytes)"
        return
    fi
    ensure_componentize_py
    t="$(now)"
    rm -f "$out.sha256"
    (cd "$src" && componentize-py -d "$wit_dir" -w "$world" componentize -p "$src" app -o "$out.tmp" >&2)
    rm -rf "$src/__pycache__"
    mv "$out.tmp" "$out"
    printf '%s\n' "$h" >"$out.sha256"
    log "$2: $(size_of "$out") bytes in $(elapsed "$t") s"
}

# build_js <sample dir under js/> <output name> <source file> <WIT dir>
build_js() {
    local name="$1" src="$HERE/js/$1" out="$BUILD_DIR/$2" h t
    have node && have npm || apt_install nodejs npm
    local files=()
    mapfile -t files < <(wit_files "$4")
    files+=("$src/$3" "$src/build.mjs" "$src/package.json")
    [ -e "$src/package-lock.json" ] && files+=("$src/package-lock.json")
    h="$(inputs_hash "js-$name recipe 1; node $(node --version)" "${files[@]}")"
    if up_to_date "$out" "$h"; then
        log "$2: up to date ($(size_of "$out") bytes)"
        return
    fi
    if [ ! -d "$src/node_modules/@bytecodealliance/componentize-js" ] ||
        [ "$src/package.json" -nt "$src/node_modules/.package-lock.json" ]; then
        log "installing npm packages in samples/js/$name"
        if [ -e "$src/package-lock.json" ]; then
            (cd "$src" && npm ci --no-audit --no-fund >&2)
        else
            (cd "$src" && npm install --no-audit --no-fund >&2)
        fi
    fi
    t="$(now)"
    rm -f "$out.sha256"
    (cd "$src" && node build.mjs "$out.tmp" >&2)
    mv "$out.tmp" "$out"
    printf '%s\n' "$h" >"$out.sha256"
    log "$2: $(size_of "$out") bytes in $(elapsed "$t") s"
}

build_large() {
    local t
    t="$(now)"
    mkdir -p "$BUILD_DIR"
    build_python hello python-hello.wasm "$WIT" function
    build_python http-api python-http-api.wasm "$WIT_HTTP" "wasi:http/proxy@$WASI_HTTP_VERSION"
    build_js hello js-hello.wasm hello.js "$WIT"
    build_js http-api js-http-api.wasm api.js "$WIT_HTTP"
    log "large samples: $(elapsed "$t") s"
}

case "${1:-all}" in
    small) build_small ;;
    large) build_large ;;
    all | "") build_small; build_large ;;
    -h | --help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown argument '$1' (use small, large, or nothing for both)" ;;
esac
