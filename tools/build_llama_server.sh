#!/usr/bin/env bash
# Builds llama.cpp's llama-server from the llama-cpp-python 0.3.36 sdist (the peer of
# `hearth bench --serving`). Output: ~/.cache/hearth/llama-server/bin/llama-server
set -euo pipefail
dir=${HEARTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth}/llama-server
mkdir -p "$dir"
python3 -m venv "$dir/venv"
"$dir/venv/bin/pip" install -q cmake ninja
cd "$dir"
[[ -f src.tar.gz ]] || { python3 -m pip download --no-deps --no-binary llama-cpp-python -d dl llama-cpp-python==0.3.36 -q && mv dl/llama_cpp_python-*.tar.gz src.tar.gz; }
rm -rf src && mkdir src && tar -xzf src.tar.gz -C src --strip-components=3 --wildcards '*/vendor/llama.cpp/*'
"$dir/venv/bin/cmake" -S src -B build -G Ninja -DCMAKE_MAKE_PROGRAM="$dir/venv/bin/ninja" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DGGML_NATIVE=ON
nice -n 10 "$dir/venv/bin/cmake" --build build --target llama-server -j 2
mkdir -p bin && cp build/bin/llama-server bin/
echo "built $dir/bin/llama-server"
