#!/usr/bin/env bash
# Runs `distillery train` on one or more nodes with Open MPI's mpirun: one rank per GPU (or the
# number of CPU ranks you ask for), ranks packed node by node so that consecutive ranks (a tp
# group) share a node. See docs/parallelism.md.
#
#   launch/mpirun.sh [options] [--] RECIPE.yaml [key=value ...]
#
# Options:
#   --hostfile FILE      Open MPI hostfile ("node1 slots=8" per line); default: this machine only
#   --gpus-per-node N    ranks per node; default: GPUs that nvidia-smi lists here, else 1
#   --np N               total ranks; default: nodes in the hostfile x gpus-per-node
#   --bind WHAT          --bind-to for each rank: none | core | socket | numa (default numa)
#   --threads N          OMP_NUM_THREADS per rank; default: cores here / gpus-per-node
#   --distillery PATH    the distillery binary; default: $DISTILLERY_BIN or build/bin/distillery
#   --mpirun-args "..."  extra mpirun arguments, e.g. "--mca pml ucx --mca btl ^openib"
#   --dry-run            print the mpirun command instead of running it
#
# SIGTERM or SIGINT (Ctrl-C) to this script: every rank finishes its step, saves a checkpoint and
# exits 0 (resume with trainer.resume=auto); a second one kills the job at once.
#
# Environment forwarded to every rank: NCCL_*, UCX_*, CUDA_*, TORCH_*, OMPI_MCA_*, HF_*,
# DISTILLERY_*, PATH, LD_LIBRARY_PATH, and OMP_NUM_THREADS. NCCL_DEBUG defaults to WARN.
#
# Examples:
#   launch/mpirun.sh recipes/sft/qwen3_0.6b.yaml                       # all GPUs of this node
#   launch/mpirun.sh --hostfile hosts --gpus-per-node 8 recipe.yaml parallel.tp=8
#   launch/mpirun.sh --np 4 --gpus-per-node 4 --bind core recipes/quickstart/sft.yaml   # 4 CPU ranks
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
hostfile="" gpus="" np="" bind="numa" threads="" dry=0 extra=""
distillery=${DISTILLERY_BIN:-$root/build/bin/distillery}

die() { echo "launch/mpirun.sh: $*" >&2; exit 2; }
need() { if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value"; fi; }

while [ $# -gt 0 ]; do
  case "$1" in
    --hostfile) need "$@"; hostfile=$2; shift 2 ;;
    --gpus-per-node) need "$@"; gpus=$2; shift 2 ;;
    --np) need "$@"; np=$2; shift 2 ;;
    --bind) need "$@"; bind=$2; shift 2 ;;
    --threads) need "$@"; threads=$2; shift 2 ;;
    --distillery) need "$@"; distillery=$2; shift 2 ;;
    --mpirun-args) need "$@"; extra=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || die "missing RECIPE.yaml (see --help)"
[ -f "$1" ] || die "recipe $1 does not exist"
[ -x "$distillery" ] || [ "$dry" = 1 ] || die "no distillery binary at $distillery (build it, or pass --distillery PATH)"
case "$bind" in none|core|socket|numa) ;; *) die "--bind $bind: expected none, core, socket or numa" ;; esac

if [ -z "$gpus" ]; then
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  [ "${gpus:-0}" -gt 0 ] || gpus=1
fi
[[ "$gpus" =~ ^[1-9][0-9]*$ ]] || die "--gpus-per-node $gpus: expected a positive integer"

nodes=1
if [ -n "$hostfile" ]; then
  [ -f "$hostfile" ] || die "hostfile $hostfile does not exist"
  nodes=$(grep -cvE '^[[:space:]]*(#|$)' "$hostfile" || true)
  [ "$nodes" -gt 0 ] || die "hostfile $hostfile lists no hosts"
fi
np=${np:-$((nodes * gpus))}
[[ "$np" =~ ^[1-9][0-9]*$ ]] || die "--np $np: expected a positive integer"

if [ -z "$threads" ]; then
  cores=$(nproc 2>/dev/null || echo 1)
  threads=$((cores / gpus)); [ "$threads" -ge 1 ] || threads=1
fi
export OMP_NUM_THREADS=$threads
export NCCL_DEBUG=${NCCL_DEBUG:-WARN}

cmd=(mpirun -np "$np" --map-by "ppr:${gpus}:node" --bind-to "$bind" --report-bindings)
[ -n "$hostfile" ] && cmd+=(--hostfile "$hostfile")
[ "$(id -u)" -eq 0 ] && cmd+=(--allow-run-as-root)
# Forward the environment that shapes communication and the run (mpirun -x NAME).
for name in $(compgen -e); do
  case "$name" in
    NCCL_*|UCX_*|CUDA_*|TORCH_*|HF_*|DISTILLERY_*|OMPI_MCA_*|PATH|LD_LIBRARY_PATH|OMP_NUM_THREADS) cmd+=(-x "$name") ;;
  esac
done
# shellcheck disable=SC2206  # word splitting of --mpirun-args is intended
[ -n "$extra" ] && cmd+=($extra)
cmd+=("$distillery" train "$@")

if [ "$dry" = 1 ]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
echo "[launch] $np ranks on $nodes node(s), $gpus per node, $threads threads each" >&2
# mpirun answers SIGTERM and SIGINT by killing the ranks within a second, mid-step, but forwards
# SIGUSR1 to all of them. So a SIGTERM or Ctrl-C (a cluster stopping the job, a user) becomes a
# SIGUSR1: every rank finishes its step, checkpoints and exits 0, and `trainer.resume: auto`
# continues the run. A second SIGTERM or Ctrl-C is passed on as is: mpirun kills the job now.
# setsid: mpirun gets its own process group, so a terminal's Ctrl-C reaches only this script.
setsid "${cmd[@]}" &
pid=$!
stops=0
on_stop() {
  stops=$((stops + 1))
  if [ "$stops" -eq 1 ]; then
    echo "[launch] stop requested: the ranks finish their step and checkpoint (signal again to kill now)" >&2
    kill -USR1 "$pid" 2>/dev/null || true
  else
    kill -TERM "$pid" 2>/dev/null || true
  fi
}
trap on_stop TERM INT
# `wait` returns early when a trapped signal arrives: wait again until mpirun has exited.
while :; do
  rc=0
  wait "$pid" || rc=$?
  kill -0 "$pid" 2>/dev/null || exit "$rc"
done
