#!/bin/sh
# Build llama.cpp's own `llama-server` for `rag bench --concurrency N --llama-server PATH`.
#
# Why a script: the bench compares llama.cpp's server (parallel slots) with the in-process context and
# llama-cpp-python's server, and no llama-server binary ships on PyPI. Its sources are vendored in the
# llama-cpp-python source distribution, so this fetches that sdist (the same version as the installed
# package: a package-registry download, an install-time step), unpacks it and builds only the server
# target with CMake (2 cores: ~9 minutes, measured 2026-12-07). Prints the binary's path on the last line.
#
#   sh rag_eval/bench/build_llama_server.sh [WORKDIR]      # default WORKDIR: ~/.cache/rag-chat/llama-server
set -eu
WORK=${1:-"$HOME/.cache/rag-chat/llama-server"}
PY=${PYTHON:-python}
VERSION=$("$PY" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null) || {
    echo "build_llama_server: llama-cpp-python is not installed for $PY (set PYTHON=.venv/bin/python)" >&2; exit 2; }
command -v cmake >/dev/null || { echo "build_llama_server: cmake not found (install cmake)" >&2; exit 2; }
SRC="$WORK/llama_cpp_python-$VERSION"
BIN="$SRC/vendor/llama.cpp/build/bin/llama-server"
if [ ! -x "$BIN" ]; then
    mkdir -p "$WORK"
    if [ ! -d "$SRC" ]; then
        "$PY" -m pip download "llama-cpp-python==$VERSION" --no-binary :all: --no-deps -d "$WORK" >&2
        tar -xzf "$WORK/llama_cpp_python-$VERSION.tar.gz" -C "$WORK"
    fi
    cd "$SRC/vendor/llama.cpp"
    cmake -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >&2
    cmake --build build --target llama-server -j "$(nproc 2>/dev/null || echo 2)" >&2
fi
"$BIN" --version >&2
echo "$BIN"
