#!/usr/bin/env bash
# A real Slurm cluster on one machine: munged, slurmctld and N slurmd daemons from Debian's
# packages (slurmctld, slurmd, slurm-client, munge), the nodes emulated with `slurmd -N NAME`
# (Debian builds Slurm with MULTIPLE_SLURMD), all on 127.0.0.1 with their own ports, spool
# directories and logs, config and state in a temporary directory (nothing in /etc). It submits
# Deploy/slurm/calibrate.sbatch (the coordinator in the batch script on the first node, the
# workers as an srun step on the others), waits for the job, checks that the sha256 it printed
# equals that of the same quantization run in one process (vitq quantize), and shuts it all down.
#
# Usage: sudo bash Deploy/slurm/local-cluster.sh [--nodes N] [--recipe R] [--calib C]
#          [--calib-offset K] [--cpus T] [--model M] [--data D] [--labels L|none]
#          [--workers-on-coordinator] [--expect SHA256] [--timeout SECONDS] [--no-install]
#          [--keep] [--check]
#   --check       only bring the cluster up, run `srun -N N` on every node, tear it down.
#   --workers-on-coordinator   a worker on every node, the first one's too (default: not there).
#   --cpus T      CPUs (so worker threads) of each emulated node (default: the cores / workers).
#   --expect SHA  compare with this sha256 instead of running the quantization in one process.
#   --no-install  do not apt-get install missing packages (exit 2 instead).
#   --keep        keep the work directory (slurm.conf, logs, job output, keys, outputs).
# Exit status: 0 identical outputs (or --check passed); 1 failure (a daemon, the job or the
#              comparison); 2 cannot run here (not root, or the packages cannot be installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

fixtures=${VITQ_FIXTURES:-$repo/../shared/fixtures}
nodes=3 recipe=ptq4vit-fast calib="" calib_offset=0 cpus="" expect=""
model=$fixtures/vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors
data=$fixtures/imagenet_sample/even500_images_u8_nhwc.npy
labels=$fixtures/imagenet_sample/even500_labels.npy
timeout_s=600 install=1 keep=0 check_only=0 on_coord=0

say() { echo "local-cluster: $*" >&2; }
die() { say "error: $*"; exit 1; }
cannot() { say "cannot run here: $*"; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --recipe) recipe=$2; shift 2 ;;
    --calib) calib=$2; shift 2 ;;
    --calib-offset) calib_offset=$2; shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --labels) labels=$2; shift 2 ;;
    --expect) expect=$2; shift 2 ;;
    --workers-on-coordinator) on_coord=1; shift ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --no-install) install=0; shift ;;
    --keep) keep=1; shift ;;
    --check) check_only=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
# need_int OPTION VALUE MIN MAX
need_int() {
  if ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt "$3" ] || [ "$2" -gt "$4" ]; then die "$1 must be an integer in $3...$4"; fi
}
need_int --nodes "$nodes" 2 16
workers=$((nodes - 1))          # the first node runs the coordinator
[ "$on_coord" -eq 0 ] || workers=$nodes
# Default: one 8-image shard per worker.
[ -n "$calib" ] || calib=$((8 * workers))
need_int --calib "$calib" 1 1000000
need_int --calib-offset "$calib_offset" 0 1000000000
need_int --timeout "$timeout_s" 1 1000000
# Default CPUs per node: the cores shared out among the workers (at least 1), so that the
# workers' threads (calibrate.sbatch gives each all of its node's CPUs) do not oversubscribe.
if [ -z "$cpus" ]; then cpus=$(($(nproc) / workers)); [ "$cpus" -ge 1 ] || cpus=1; fi
need_int --cpus "$cpus" 1 4096
[ -z "$expect" ] || [[ $expect =~ ^[0-9a-f]{64}$ ]] || die "--expect takes a sha256 (64 hex digits)"

# --- Can we run here? -------------------------------------------------------------------
export PATH=$PATH:/usr/sbin:/sbin     # the daemons live there; a non-login root shell may lack it
[ "$(id -u)" -eq 0 ] || cannot "needs root to run slurmd and munged (run: sudo bash $0 ...)"
have_all() {
  local c
  for c in munged mungekey munge unmunge slurmctld slurmd sbatch srun squeue scontrol scancel sinfo; do
    command -v "$c" >/dev/null 2>&1 || return 1
  done
}
policy_rc=0     # 1 while our temporary /usr/sbin/policy-rc.d exists
if ! have_all; then
  [ "$install" -eq 1 ] || cannot "the Slurm and MUNGE commands are missing (apt-get install slurmd slurmctld slurm-client munge)"
  command -v apt-get >/dev/null 2>&1 || cannot "no apt-get to install slurmd slurmctld slurm-client munge"
  say "installing slurmd slurmctld slurm-client munge"
  # The packages' maintainer scripts would start system-wide munge/slurm services where an init
  # system runs; policy-rc.d (exit 101) tells invoke-rc.d and deb-systemd-invoke not to.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap '[ "$policy_rc" -eq 0 ] || rm -f /usr/sbin/policy-rc.d' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_rc=1
  fi
  apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmd slurmctld slurm-client munge; }
  ok=1
  apt_install >/tmp/vitq-slurm-apt.log 2>&1 ||
    { apt-get update -qq >>/tmp/vitq-slurm-apt.log 2>&1 && apt_install >>/tmp/vitq-slurm-apt.log 2>&1; } || ok=0
  if [ "$policy_rc" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; policy_rc=0; fi
  [ "$ok" -eq 1 ] || cannot "apt-get install slurmd slurmctld slurm-client munge failed: $(grep -E '^E:' /tmp/vitq-slurm-apt.log | tail -n 1)"
  rm -f /tmp/vitq-slurm-apt.log
  have_all || cannot "the Slurm and MUNGE commands are still missing after apt-get install"
fi

# --- The binary and the inputs ----------------------------------------------------------
vitq=$repo/.build/release/vitq
if [ "$check_only" -eq 0 ]; then
  [ -x "$vitq" ] || { say "building vitq (bash Deploy/setup.sh)"; bash Deploy/setup.sh; }
  for cmd in keygen coordinator worker quantize; do
    [[ $("$vitq" "$cmd" --help 2>&1) == *"USAGE: vitq $cmd"* ]] ||
      die "$vitq has no '$cmd' command: rebuild it (bash Deploy/setup.sh)"
  done
  for f in "$model" "$data"; do [ -r "$f" ] || die "cannot read $f (set VITQ_FIXTURES or pass --model/--data)"; done
  model=$(realpath "$model"); data=$(realpath "$data")
  if [ "$labels" = none ]; then labels=""; else
    [ -r "$labels" ] || die "cannot read $labels (or pass --labels none)"
    labels=$(realpath "$labels")
  fi
fi

# --- Cleanup, whatever happens ----------------------------------------------------------
# Every process of a run is found through its work directory /tmp/vitq-slurm.*: the daemons
# and the job's processes carry VITQ_LOCAL_SLURM=<work directory> in their environment (given
# to the daemons here, to the job with sbatch --export); slurmstepd overwrites its environment
# (setproctitle), so it is found by its open files (the slurmd log) there. Cleanup stops them
# all that way, and the next run stops the leftovers of a run killed with SIGKILL: those whose
# work directory's owner (the pid in its file "owner") is gone.
members() {     # "pid work-directory" for every process of any run, this script excepted
  local p env v dir comm fd target
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    if [ "$p" = "$$" ] || [ "$p" = "$BASHPID" ]; then continue; fi
    dir=""
    if mapfile -d '' env 2>/dev/null <"/proc/$p/environ"; then
      for v in "${env[@]}"; do [[ $v == VITQ_LOCAL_SLURM=/tmp/vitq-slurm.* ]] && { dir=${v#*=}; break; }; done
    fi
    if [ -z "$dir" ] && read -r comm 2>/dev/null <"/proc/$p/comm" && [ "$comm" = slurmstepd ]; then
      for fd in "/proc/$p/fd/"*; do
        target=$(readlink "$fd" 2>/dev/null) || continue
        [[ $target =~ ^(/tmp/vitq-slurm\.[A-Za-z0-9]+)/ ]] && { dir=${BASH_REMATCH[1]}; break; }
      done
    fi
    [ -z "$dir" ] || echo "$p $dir"
  done
}
# alive PID: running (not gone, not a zombie).
alive() { local s; s=$(grep -m1 '^State:' "/proc/$1/status" 2>/dev/null) && [[ $s != *zombie* ]]; }
# stop_pids PID...: TERM, up to 5 s, then KILL (slurmstepd ignores TERM).
stop_pids() {
  local p left
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 25); do
    left=0
    for p in "$@"; do alive "$p" && { left=1; break; }; done
    [ "$left" -eq 1 ] || return 0
    sleep 0.2
  done
  kill -KILL "$@" 2>/dev/null || true
}
remove_leftovers() {
  local p dir owner stale=()
  while read -r p dir; do
    [ "$dir" != "$work" ] || continue
    owner=$(cat "$dir/owner" 2>/dev/null || true)
    if ! [[ $owner =~ ^[0-9]+$ ]] || ! kill -0 "$owner" 2>/dev/null; then stale+=("$p"); fi
  done < <(members)
  [ ${#stale[@]} -eq 0 ] || { say "stopping ${#stale[@]} leftover process(es) of killed runs: ${stale[*]}"; stop_pids "${stale[@]}"; }
}
ours() { members | awk -v w="$work" '$2 == w { print $1 }'; }

work=$(mktemp -d /tmp/vitq-slurm.XXXXXX)
echo $$ >"$work/owner"
daemons=()       # slurmctld and slurmd pids (children of this script)
munged_pid=""
ctld_up=0
cleanup() {
  local rc=$? jobs_left p left
  trap - EXIT INT TERM
  [ "$policy_rc" -eq 0 ] || rm -f /usr/sbin/policy-rc.d
  if [ "$ctld_up" -eq 1 ]; then
    # Cancel what still runs (slurmstepd kills the job's processes), then stop the daemons.
    jobs_left=$(timeout 10 squeue -h -o %A 2>/dev/null || true)
    if [ -n "$jobs_left" ]; then
      # shellcheck disable=SC2086 # one job id per word
      timeout 10 scancel $jobs_left 2>/dev/null || true
      for _ in $(seq 50); do [ -z "$(timeout 5 squeue -h -t R,CG -o %A 2>/dev/null)" ] && break; sleep 0.2; done
    fi
    timeout 10 scontrol shutdown >/dev/null 2>&1 || true
    for _ in $(seq 50); do
      for p in "${daemons[@]}"; do alive "$p" && { sleep 0.1; continue 2; }; done
      break
    done
  fi
  stop_pids "${daemons[@]}"
  # shellcheck disable=SC2046 # one pid per word
  stop_pids $(ours | grep -vx "${munged_pid:-0}")            # slurmstepd, job processes
  [ -z "$munged_pid" ] || stop_pids "$munged_pid"            # last: the others talk to it
  wait 2>/dev/null || true
  left=$(ours | tr '\n' ' ')
  [ -z "$left" ] || say "warning: processes left: $left"
  # Keep config, logs and outputs for a failed run (or with --keep); "cannot run here" has nothing.
  if [ "$keep" -eq 1 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; }; then say "work directory kept: $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

remove_leftovers

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
show_logs() {
  local f
  for f in "$@"; do
    [ -s "$f" ] && { echo "--- $f (last 20 lines)"; tail -n 20 "$f"; }
  done >&2
  return 0
}
# Free TCP ports on 127.0.0.1: slurmctld, one per slurmd, the coordinator.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
base=""
for try in $(seq 0 49); do
  b=$((17000 + (($$ + try * 37) % 1200) * 10))
  ok=1
  for ((i = 0; i <= nodes + 1; i++)); do port_free $((b + i)) || { ok=0; break; }; done
  [ "$ok" -eq 0 ] || { base=$b; break; }
done
[ -n "$base" ] || die "found no $((nodes + 2)) free consecutive TCP ports on 127.0.0.1"
ctld_port=$base coord_port=$((base + nodes + 1))
node_name() { echo "vitq$1"; }                       # 1...nodes
node_port() { echo $((base + $1)); }

# --- MUNGE: a key of our own, the socket in the work directory ------------------------------
t_up=$(now)
chmod 755 "$work"                                    # munged wants the socket's directories searchable
mkdir -m 700 "$work/key"
mkdir -m 755 "$work/munge" "$work/log" "$work/run" "$work/state" "$work/spool" "$work/runs"
mungekey --create --keyfile "$work/key/munge.key" 2>"$work/log/mungekey.err" ||
  die "mungekey failed: $(cat "$work/log/mungekey.err")"
socket=$work/munge/munge.socket
VITQ_LOCAL_SLURM=$work munged --foreground --key-file "$work/key/munge.key" --socket "$socket" \
  --pid-file "$work/run/munged.pid" --log-file "$work/log/munged.log" --seed-file "$work/munge/munged.seed" \
  >"$work/log/munged.out" 2>&1 &
munged_pid=$!
munge_ok() { munge -n -S "$socket" 2>/dev/null | unmunge -S "$socket" >/dev/null 2>&1; }
for _ in $(seq 100); do munge_ok && break; alive "$munged_pid" || break; sleep 0.1; done
munge_ok || { show_logs "$work/log/munged.out"; die "munged did not start"; }

# --- slurm.conf: one controller, N nodes on 127.0.0.1, no cgroups, no accounting ---------
host=$(hostname -s)
export SLURM_CONF=$work/slurm.conf
{
  cat <<EOF
# Written by Deploy/slurm/local-cluster.sh: a throw-away cluster on one machine.
ClusterName=vitq-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool/%n
SlurmctldPidFile=$work/run/slurmctld.pid
SlurmdPidFile=$work/run/slurmd-%n.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd-%n.log
# No cgroups (containers often have none, or a read-only /sys/fs/cgroup): processes are
# tracked through /proc, tasks are not bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
# The emulated nodes declare fewer CPUs than the machine has; trust the configuration.
SlurmdParameters=config_overrides
InactiveLimit=0
KillWait=5
MinJobAge=600
EOF
  for ((i = 1; i <= nodes; i++)); do
    echo "NodeName=$(node_name "$i") NodeHostname=$host NodeAddr=127.0.0.1 Port=$(node_port "$i") CPUs=$cpus State=UNKNOWN"
  done
  echo "PartitionName=vitq Nodes=vitq[1-$nodes] Default=YES MaxTime=INFINITE State=UP"
} >"$SLURM_CONF"

# --- The daemons ----------------------------------------------------------------------
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
VITQ_LOCAL_SLURM=$work slurmctld -D -c >"$work/log/slurmctld.out" 2>&1 &
daemons+=($!)
ctld_up=1
for _ in $(seq 150); do port_open "$ctld_port" && break; alive "${daemons[0]}" || break; sleep 0.1; done
timeout 10 scontrol ping 2>/dev/null | grep -q ' is UP' ||
  { show_logs "$work/log/slurmctld.log" "$work/log/slurmctld.out"; die "slurmctld did not come up"; }
for ((i = 1; i <= nodes; i++)); do
  mkdir -p "$work/spool/$(node_name "$i")"     # slurmd does not make its spool directory
  VITQ_LOCAL_SLURM=$work slurmd -D -N "$(node_name "$i")" >"$work/log/slurmd-$(node_name "$i").out" 2>&1 &
  daemons+=($!)
done
idle=0
for _ in $(seq 150); do
  idle=$(timeout 10 sinfo -h -N -t idle -o %N 2>/dev/null | sort -u | grep -c . || true)
  [ "$idle" -lt "$nodes" ] || break
  sleep 0.2
done
if [ "$idle" -lt "$nodes" ]; then
  timeout 10 sinfo -N >&2 || true
  show_logs "$work/log/slurmctld.log" "$work"/log/slurmd-*.out
  die "only $idle of $nodes nodes came up"
fi
up_s=$(since "$t_up")
say "cluster up in ${up_s} s: munged, slurmctld on 127.0.0.1:$ctld_port, $nodes slurmd (vitq[1-$nodes] on ports $(node_port 1)-$(node_port "$nodes")), $cpus CPU(s) each"

if [ "$check_only" -eq 1 ]; then
  # shellcheck disable=SC2016 # expanded by each task's shell
  got=$(timeout 60 srun -N "$nodes" -n "$nodes" -l bash -c 'echo "$SLURMD_NODENAME"' 2>"$work/log/srun.err" | sort | tr '\n' ' ') ||
    { show_logs "$work/log/srun.err"; die "srun -N $nodes failed"; }
  want=$(for ((i = 1; i <= nodes; i++)); do echo "$((i - 1)): $(node_name "$i")"; done | sort | tr '\n' ' ')
  [ "$got" = "$want" ] || die "srun -N $nodes ran on '$got', expected '$want'"
  say "check passed: srun -N $nodes ran one task on each node ($got)"
  exit 0
fi

# --- The job: Deploy/slurm/calibrate.sbatch -------------------------------------------------
say "sbatch calibrate.sbatch: $nodes nodes (coordinator on $(node_name 1), $workers workers$([ "$on_coord" -eq 0 ] || echo ", one on $(node_name 1) too")), recipe $recipe, $calib images from $calib_offset"
t_job=$(now)
job_id=$(sbatch --parsable --nodes="$nodes" --output="$work/job-%j.out" \
  --export="ALL,VITQ_LOCAL_SLURM=$work,VITQ=$vitq,MODEL=$model,DATA=$data,LABELS=$labels,RECIPE=$recipe,CALIB=$calib,CALIB_OFFSET=$calib_offset,RUNS_DIR=$work/runs,PORT=$coord_port,WORKERS_ON_COORDINATOR=$on_coord" \
  Deploy/slurm/calibrate.sbatch 2>"$work/log/sbatch.err") || { show_logs "$work/log/sbatch.err"; die "sbatch failed"; }
job_id=${job_id%%;*}
job_out=$work/job-$job_id.out
job_dir=$work/runs/$job_id
state="" last_report=0
# sbatch --wait polls slowly; scontrol every second is quick.
while :; do
  info=$(timeout 10 scontrol show job -o "$job_id" 2>/dev/null || true)
  state=$(grep -oE 'JobState=[A-Z_]+' <<<"$info" | cut -d= -f2 || true)
  case "$state" in
    COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED) break ;;
  esac
  elapsed=$(since "$t_job"); elapsed=${elapsed%.*}
  if [ "$elapsed" -ge "$timeout_s" ]; then
    show_logs "$job_out" "$job_dir/coordinator.log"
    die "job $job_id still ${state:-unknown} after ${timeout_s}s"
  fi
  if [ $((elapsed - last_report)) -ge 30 ]; then
    last_report=$elapsed
    say "${elapsed}s: job $job_id ${state:-unknown}$([ -s "$job_dir/status.json" ] && echo ", $(tr -d '\n ' <"$job_dir/status.json" | grep -oE '"(phase|ops_done|ops_total)":("[^"]*"|[0-9]+)' | tr '\n' ' ')")"
  fi
  sleep 1
done
job_s=$(since "$t_job")
exit_code=$(grep -oE ' ExitCode=[0-9]+:[0-9]+' <<<"$info" | cut -d= -f2 || true)
if [ "$state" != COMPLETED ]; then
  show_logs "$job_out" "$job_dir/coordinator.log" "$job_dir"/worker-*.log "$work/log/slurmctld.log"
  die "job $job_id ended $state (exit code ${exit_code:-?}) after ${job_s} s (output: $job_out)"
fi
# calibrate.sbatch ends with "calibrate: wrote PATH" and sha256sum's "SHA  PATH".
out=$(sed -n 's/^calibrate: wrote //p' "$job_out" | tail -n 1)
job_sha=$(grep -oE '^[0-9a-f]{64}  ' "$job_out" | tail -n 1 | tr -d ' ' || true)
{ [ -n "$out" ] && [ -n "$job_sha" ]; } || { show_logs "$job_out"; die "job $job_id printed no output path and sha256"; }
[ "$(sha256sum "$out" | cut -d' ' -f1)" = "$job_sha" ] || die "$out does not have the sha256 the job printed"
worker_logs=$(find "$job_dir" -maxdepth 1 -name 'worker-*.log' | wc -l)
shards=$(grep -cE ' shard [0-9]+ → ' "$job_dir/coordinator.log" || true)
say "job $job_id COMPLETED in ${job_s} s ($worker_logs worker logs, $shards shards)"

# --- The same quantization in one process ---------------------------------------------
if [ -n "$expect" ]; then
  ref_sha=$expect ref="given with --expect"
else
  say "in-process: vitq quantize (same model, data, recipe, calibration images)"
  t_ref=$(now)
  label_args=()
  [ -z "$labels" ] || label_args=(--labels "$labels")
  "$vitq" quantize "$model" --data "$data" "${label_args[@]}" --calib-offset "$calib_offset" --calib "$calib" \
    --recipe "$recipe" --out "$work/in-process.safetensors" >"$work/in-process.log" 2>&1 ||
    { show_logs "$work/in-process.log"; die "vitq quantize failed (log: $work/in-process.log)"; }
  ref_sha=$(sha256sum "$work/in-process.safetensors" | cut -d' ' -f1)
  ref="in-process run, $(since "$t_ref") s"
fi
printf 'sha256 slurm job   %s  (job %s, %d nodes)\n' "$job_sha" "$job_id" "$nodes"
printf 'sha256 reference   %s  (%s)\n' "$ref_sha" "$ref"
[ "$job_sha" = "$ref_sha" ] || die "the outputs differ"
echo "slurm local cluster: up in ${up_s} s ($nodes nodes), job $job_id ($recipe, $calib images, $workers workers) COMPLETED in ${job_s} s, sha256 ${job_sha:0:16}… identical"
