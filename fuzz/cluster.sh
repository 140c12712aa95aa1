#!/usr/bin/env bash
# Secondary afl-fuzz instances on another host, joining a campaign through a shared folder.
#
#   on the main host:   kmem-verify fuzz --out /shared/kmem-campaign --jobs 2 [--target ...]
#   on each other host: fuzz/cluster.sh /shared/kmem-campaign [JOBS]
#
# /shared is a folder every host mounts (NFS, CIFS, ...). This script runs fuzz/setup.sh (skip
# with KMEM_NO_SETUP=1), reads the campaign's harness options from CAMPAIGN/harness.args (so
# every host runs exactly the harness the main runs), and starts JOBS secondaries named
# HOST-sec1..N in CAMPAIGN/afl, the main's sync folder. Each AFL++ instance writes only its own
# folder and reads the others' queues, so hosts exchange inputs through the shared folder.
# Crashes are triaged on the main host: `kmem-verify fuzz` scans every instance folder in the
# sync folder, this host's included, and writes CAMPAIGN/findings/. Ctrl-C (or SIGTERM) stops
# this host's instances; rerunning the script resumes them.
#
# Environment: KMEM_FUZZ_TIMEOUT (ms, default 5000, as the main's --timeout), KMEM_FUZZ_MODE
# (out-of-process | persistent, default out-of-process), KMEM_FUZZ_DURATION (seconds, default: none).
set -euo pipefail
cd "$(dirname "$0")/.."

campaign=${1:?usage: fuzz/cluster.sh CAMPAIGN_DIR [JOBS]}
jobs=${2:-1}
campaign=$(cd "$campaign" && pwd)
[ -f "$campaign/harness.args" ] || { echo "cluster: $campaign/harness.args missing: start the campaign on the main host first (kmem-verify fuzz --out $campaign)" >&2; exit 2; }
[ "${KMEM_NO_SETUP:-0}" = 1 ] || fuzz/setup.sh

mapfile -t hargs < "$campaign/harness.args"
hargs+=(--mode "${KMEM_FUZZ_MODE:-out-of-process}")
dict="$campaign/kmem.dict"; [ "${hargs[0]}" = parser ] && dict="$campaign/kmem-text.dict"
seeds="$campaign/seeds"; [ -d "$seeds" ] || seeds="$(pwd)/corpus/seeds"; [ "${hargs[0]}" = parser ] && seeds="$campaign/seeds-text"
host=$(hostname -s | tr -c 'A-Za-z0-9_\n-' '-')

export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
       AFL_TRY_AFFINITY=1 AFL_FAST_CAL=1 AFL_AUTORESUME=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_TieredPGO=0
mkdir -p "$campaign/logs"
pids=()
for i in $(seq 1 "$jobs"); do
  name="$host-sec$i"
  input="$seeds"; [ -d "$campaign/afl/$name/queue" ] && input=-
  extra=(); [ -n "${KMEM_FUZZ_DURATION:-}" ] && extra=(-V "$KMEM_FUZZ_DURATION")
  echo "cluster: starting $name (log $campaign/logs/$name.log)"
  afl-fuzz -i "$input" -o "$campaign/afl" -S "$name" -t "${KMEM_FUZZ_TIMEOUT:-5000}" -x "$dict" "${extra[@]}" \
    -- dotnet "$(pwd)/fuzz/build/Kmem.Fuzz.dll" "${hargs[@]}" >> "$campaign/logs/$name.log" 2>&1 &
  pids+=($!)
done
trap 'kill -INT "${pids[@]}" 2>/dev/null; wait' INT TERM
wait
