#!/usr/bin/env bash
# A real multi-host calibration on one machine: one coordinator "host" and N worker "hosts",
# each a Linux network namespace with its own address on 10.77.0.0/24 (coordinator 10.77.0.1,
# workers 10.77.0.11, .12, ...), joined by veth pairs through a bridge. The coordinator binds
# tcp://10.77.0.1:5555 (not loopback, so CURVE keys are required); the same quantization then
# runs in-process and both outputs' sha256 must be identical.
#
# Usage: sudo bash Deploy/netns-cluster.sh [--workers N] [--recipe R] [--calib C] [--calib-offset K]
#          [--threads T] [--ship inline|path] [--model M] [--data D] [--labels L|none]
#          [--timeout SECONDS] [--keep] [--check]
#   --check   only build the network, test that the hosts reach each other, tear it down.
#   --keep    keep the work directory (keys, logs, outputs, status.json) after success.
# Exit status: 0 identical outputs (or --check passed); 1 failure or different outputs;
#              2 cannot run here (not root, no `ip`, no network namespaces / bridge / veth).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

fixtures=${VITQ_FIXTURES:-$repo/../shared/fixtures}
workers=3 recipe=ptq4vit-fast calib="" calib_offset=0 threads="" ship=inline
model=$fixtures/vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors
data=$fixtures/imagenet_sample/even500_images_u8_nhwc.npy
labels=$fixtures/imagenet_sample/even500_labels.npy
timeout_s=3600 keep=0 check_only=0

say() { echo "netns-cluster: $*" >&2; }
die() { say "error: $*"; exit 1; }
cannot() { say "cannot run here: $*"; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --recipe) recipe=$2; shift 2 ;;
    --calib) calib=$2; shift 2 ;;
    --calib-offset) calib_offset=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --ship) ship=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --labels) labels=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --check) check_only=1; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
# need_int OPTION VALUE MIN MAX
need_int() {
  if ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt "$3" ] || [ "$2" -gt "$4" ]; then die "$1 must be an integer in $3...$4"; fi
}
need_int --workers "$workers" 1 64
# Default: one 8-image shard per worker, so that every worker host holds a shard.
[ -n "$calib" ] || calib=$(( 8 * workers ))
need_int --calib "$calib" 1 1000000
need_int --calib-offset "$calib_offset" 0 1000000000
need_int --timeout "$timeout_s" 1 1000000
case "$ship" in inline|path) ;; *) die "--ship must be inline or path" ;; esac
# Default threads per worker: the cores shared out among the workers (at least 1).
if [ -z "$threads" ]; then threads=$(( $(nproc) / workers )); [ "$threads" -ge 1 ] || threads=1; fi
need_int --threads "$threads" 1 4096

# --- Can we run here? -------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || cannot "needs root for network namespaces (run: sudo bash $0 ...)"
command -v ip >/dev/null 2>&1 || cannot "needs the 'ip' command (apt-get install iproute2)"

# Unique names: vitq-<our pid in hex>-..., at most 15 characters (interface name limit).
id=$(printf '%x' $$)
ns_of() { if [ "$1" -eq 0 ]; then echo "vitq-$id-c"; else echo "vitq-$id-w$1"; fi; }
if_of() { echo "vitq-$id-$1"; }            # host side of host i's veth (0 = coordinator)
addr_of() { if [ "$1" -eq 0 ]; then echo 10.77.0.1; else echo "10.77.0.$((10 + $1))"; fi; }
br="vitq-$id-br"
coord_addr=$(addr_of 0)

# Leftovers of runs whose script is gone (killed with SIGKILL, or the machine lost power).
stale() { [[ $1 =~ ^vitq-([0-9a-f]+)- ]] && [ "${BASH_REMATCH[1]}" != "$id" ] && ! kill -0 "$((16#${BASH_REMATCH[1]}))" 2>/dev/null; }
remove_leftovers() {
  local n rule
  for n in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    stale "$n" && { say "removing leftover link $n"; ip link del "$n" 2>/dev/null || true; }
  done
  for n in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    stale "$n" && { say "removing leftover namespace $n"; ip netns del "$n" 2>/dev/null || true; }
  done
  if command -v iptables >/dev/null 2>&1; then
    while read -r rule; do
      n=$(sed -E 's/.*-i (vitq-[0-9a-f]+-br).*/\1/' <<<"$rule")
      # shellcheck disable=SC2086 # the rule's words are the arguments
      stale "$n" && { say "removing leftover firewall rule for $n"; iptables ${rule/-A /-D } 2>/dev/null || true; }
    done < <(iptables -S FORWARD 2>/dev/null | grep -E -- '-i vitq-[0-9a-f]+-br ' || true)
  fi
}

# --- Cleanup, whatever happens ----------------------------------------------------------
work=$(mktemp -d /tmp/vitq-netns.XXXXXX)
pids=()          # background processes we started (coordinator, workers)
fw_rule=0        # 1 when we inserted a FORWARD rule for our bridge
cleanup() {
  local rc=$? pid i ns
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  for ((i = 0; i <= workers; i++)); do
    ns=$(ns_of "$i")
    # Anything still running inside our own namespaces was started by this run.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip link del "$(if_of "$i")" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "$br" 2>/dev/null || true
  ip netns del "vitq-$id-p" 2>/dev/null || true
  [ "$fw_rule" -eq 0 ] || iptables -D FORWARD -i "$br" -o "$br" -j ACCEPT 2>/dev/null || true
  # Keep keys, logs and outputs for a failed run (or with --keep); "cannot run here" has nothing.
  if [ "$keep" -eq 1 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; }; then say "work directory kept: $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

remove_leftovers
# Quick probe: can we create a namespace at all (containers without CAP_SYS_ADMIN cannot)?
ip netns add "vitq-$id-p" 2>"$work/probe.err" || cannot "cannot create a network namespace: $(cat "$work/probe.err")"
ip netns del "vitq-$id-p"

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
  label_args=()
  if [ "$labels" != none ]; then
    [ -r "$labels" ] || die "cannot read $labels (or pass --labels none)"
    label_args=(--labels "$(realpath "$labels")")
  fi
fi

# --- The network: bridge, one veth pair and one namespace per host ----------------------
net() { "$@" 2>"$work/net.err" || cannot "'$*' failed: $(cat "$work/net.err")"; }
net ip link add "$br" type bridge
net ip link set "$br" up
for ((i = 0; i <= workers; i++)); do
  ns=$(ns_of "$i")
  net ip netns add "$ns"
  net ip link add "$(if_of "$i")" type veth peer name eth0 netns "$ns"
  net ip link set "$(if_of "$i")" master "$br" up
  net ip -n "$ns" link set lo up
  net ip -n "$ns" addr add "$(addr_of "$i")/24" dev eth0
  net ip -n "$ns" link set eth0 up
done

# TCP reachability of the coordinator host from host $1: "connection refused" proves a round trip.
reach() {
  local out
  out=$(timeout 3 ip netns exec "$(ns_of "$1")" bash -c "exec 3<>/dev/tcp/$2/9" 2>&1) && return 0
  [[ $out == *refused* ]]
}
reach_all() {
  local i ok
  for ((i = 1; i <= workers; i++)); do
    ok=0
    for _ in 1 2 3 4 5; do reach "$i" "$coord_addr" && { ok=1; break; }; sleep 0.5; done
    [ "$ok" -eq 1 ] || return 1
  done
  reach 0 127.0.0.1    # loopback inside the coordinator's namespace
}
if ! reach_all; then
  # Docker and others set a FORWARD drop policy that also filters bridged traffic
  # (br_netfilter); let our own bridge through and try again.
  if command -v iptables >/dev/null 2>&1 && iptables -I FORWARD -i "$br" -o "$br" -j ACCEPT 2>/dev/null; then
    fw_rule=1
    reach_all || cannot "the namespaces cannot reach each other over bridge $br"
  else
    cannot "the namespaces cannot reach each other over bridge $br (a firewall filtering bridged traffic?)"
  fi
fi
say "network up: coordinator $coord_addr ($(ns_of 0)), $workers workers 10.77.0.11-$((10 + workers)), bridge $br"
if [ "$check_only" -eq 1 ]; then say "check passed"; exit 0; fi

# --- CURVE keys: one pair for the coordinator, one per worker, the allow-list -----------
keys=$work/keys
mkdir -m 700 "$keys"
"$vitq" keygen --out "$keys/coordinator" >/dev/null
: >"$keys/allowed.pub"
for ((i = 1; i <= workers; i++)); do
  "$vitq" keygen --out "$keys/worker$i" >/dev/null
  cat "$keys/worker$i.pub" >>"$keys/allowed.pub"
done

# --- The distributed run --------------------------------------------------------------
common=("${label_args[@]}" --calib-offset "$calib_offset" --calib "$calib" --recipe "$recipe")
dist_out=$work/distributed.safetensors
local_out=$work/in-process.safetensors
say "coordinator: recipe $recipe, $calib images from $calib_offset, $workers workers x $threads threads, ship $ship"
ip netns exec "$(ns_of 0)" "$vitq" coordinator "$model" --data "$data" "${common[@]}" --out "$dist_out" \
  --bind "tcp://$coord_addr:5555" --expect-workers "$workers" \
  --curve-secret "$keys/coordinator.key" --allow "$keys/allowed.pub" \
  --status "$work/status.json" --ship "$ship" >"$work/coordinator.log" 2>&1 &
coord_pid=$!
pids+=("$coord_pid")
worker_pids=()
for ((i = 1; i <= workers; i++)); do
  mkdir -p "$work/spill$i"
  ip netns exec "$(ns_of "$i")" "$vitq" worker --connect "tcp://$coord_addr:5555" \
    --curve-secret "$keys/worker$i.key" --server-key "$keys/coordinator.pub" \
    --name "worker$i@$(addr_of "$i")" --threads "$threads" --spill-dir "$work/spill$i" \
    --once --wait 120 >"$work/worker$i.log" 2>&1 &
  worker_pids+=($!)
  pids+=($!)
done

show_logs() {
  local f
  for f in "$work"/coordinator.log "$work"/worker*.log; do
    [ -e "$f" ] && { echo "--- $(basename "$f") (last 20 lines)"; tail -n 20 "$f"; }
  done >&2
}
status_line() { tr -d '\n ' <"$1" | grep -oE '"(phase|ops_done|ops_total|eta_seconds)":("[^"]*"|[0-9]+)' | tr '\n' ' '; }
alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }

start=$SECONDS idle=0
while kill -0 "$coord_pid" 2>/dev/null; do
  sleep 1
  elapsed=$((SECONDS - start))
  if [ "$elapsed" -ge "$timeout_s" ]; then show_logs; die "timed out after ${timeout_s}s"; fi
  # Without any worker left, the coordinator would wait for new ones forever.
  if alive "${worker_pids[@]}"; then idle=0; else idle=$((idle + 1)); fi
  if [ "$idle" -ge 15 ]; then show_logs; die "every worker exited but the coordinator is still running"; fi
  if [ $((elapsed % 30)) -eq 0 ] && [ -s "$work/status.json" ]; then
    say "${elapsed}s: $(status_line "$work/status.json")"
  fi
done
coord_rc=0; wait "$coord_pid" || coord_rc=$?
[ "$coord_rc" -eq 0 ] || { show_logs; die "coordinator exited with status $coord_rc (log: $work/coordinator.log)"; }
say "coordinator finished in $((SECONDS - start)) s"
# Workers started with --once exit 0 once the run is over.
for ((i = 1; i <= workers; i++)); do
  pid=${worker_pids[i - 1]}
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  rc=0; wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || { show_logs; die "worker $i exited with status $rc (log: $work/worker$i.log)"; }
done
[ -s "$work/status.json" ] && say "status: $(status_line "$work/status.json")"
# A shard is recipe.shard_images (8 for the built-in recipes) images; workers beyond the shard
# count are spares.
shards=$(grep -cE ' shard [0-9]+ → ' "$work/coordinator.log" || true)
if [ "$shards" -lt "$workers" ]; then
  say "note: $shards shard(s) for $workers workers, so $((workers - shards)) were spares; --calib $((8 * workers)) gives each a shard"
fi

# --- The same quantization in one process ---------------------------------------------
say "in-process: vitq quantize (same model, data, recipe, calibration images)"
start=$SECONDS
"$vitq" quantize "$model" --data "$data" "${common[@]}" --out "$local_out" >"$work/in-process.log" 2>&1 ||
  { tail -n 20 "$work/in-process.log" >&2; die "vitq quantize failed (log: $work/in-process.log)"; }
say "in-process finished in $((SECONDS - start)) s"

dist_sha=$(sha256sum "$dist_out" | cut -d' ' -f1)
local_sha=$(sha256sum "$local_out" | cut -d' ' -f1)
printf 'sha256 distributed  %s  (%d workers, CURVE over tcp://%s:5555)\n' "$dist_sha" "$workers" "$coord_addr"
printf 'sha256 in-process   %s\n' "$local_sha"
[ "$dist_sha" = "$local_sha" ] || die "the outputs differ"
echo "identical"
