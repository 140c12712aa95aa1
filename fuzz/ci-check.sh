#!/usr/bin/env bash
# The deterministic fuzzing check CI runs (.ci/run). No timed campaign (those are benchmarks):
#   1. AFL++ installed (apt) and the harness published and instrumented (fuzz/setup.sh);
#   2. afl-showmap of a seed shows coverage: non-zero tuples, for both harnesses;
#   3. the harness flags a known crashing input on its known-buggy target with the recorded
#      signature, persistent and out-of-process, and the same input passes on the reference;
#   4. the same crash under afl-showmap is reported as a crash (what afl-fuzz would save).
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz/setup.sh
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_QUIET=1
HARNESS="dotnet fuzz/build/Kmem.Fuzz.dll"
dotnet build src/Kmem.Cli -c Release --nologo -v quiet >/dev/null
KMEM="dotnet src/Kmem.Cli/bin/Release/net10.0/kmem-verify.dll"

work=$(mktemp -d /tmp/kmem-fuzz-ci.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "fuzz check FAILED: $*" >&2; exit 1; }

# 2. coverage
tuples() { # HARNESS-ARGS... < reads nothing; $1 = input file, rest = harness args
  local input=$1; shift
  rm -rf "$work/in" "$work/map"; mkdir -p "$work/in"; cp "$input" "$work/in/"
  afl-showmap -q -i "$work/in" -o "$work/map" -t 20000 -- $HARNESS "$@" >/dev/null 2>&1 || true
  cat "$work"/map/* 2>/dev/null | wc -l
}
seed=corpus/seeds/example-coalescing-after-frees.bin
n=$(tuples "$seed" scenario --target reference)
[ "$n" -gt 0 ] || fail "afl-showmap saw no coverage for $seed (scenario harness)"
echo "fuzz check: scenario harness, $seed: $n tuples"
n=$(tuples corpus/examples/hole.kmem parser)
[ "$n" -gt 0 ] || fail "afl-showmap saw no coverage for corpus/examples/hole.kmem (parser harness)"
echo "fuzz check: parser harness, corpus/examples/hole.kmem: $n tuples"

# 3. a known crash
regression=$(ls corpus/regressions/no-upper-coalesce-*.kmem | head -1)
target=$(sed -n 's/^# target: *//p' "$regression" | head -1)
signature=$(sed -n 's/^# signature: *//p' "$regression" | head -1)
[ -n "$target" ] && [ -n "$signature" ] || fail "$regression has no target/signature header"
$KMEM corpus encode "$regression" "$work/crash.bin" >/dev/null
for mode in persistent out-of-process; do
  set +e
  # (the `exit` keeps bash from exec'ing the harness, so its "Aborted" note goes to out.txt)
  ( $HARNESS scenario --target "$target" --mode $mode < "$work/crash.bin"; exit $? ) > "$work/out.txt" 2>&1
  rc=$?
  set -e
  [ $rc -ne 0 ] || fail "$mode: the harness did not flag $regression on $target"
  grep -q "FuzzViolationException: $signature:" "$work/out.txt" || { cat "$work/out.txt" >&2; fail "$mode: no '$signature' violation in the harness output"; }
  $HARNESS scenario --target reference --mode $mode < "$work/crash.bin" > "$work/out.txt" 2>&1 \
    || { cat "$work/out.txt" >&2; fail "$mode: $regression fails on the reference"; }
  echo "fuzz check: $mode harness flags $regression on $target as $signature, passes it on reference"
done

# 4. under AFL++'s fork server, the same input is a crash
rm -rf "$work/in" "$work/map"; mkdir -p "$work/in"; cp "$work/crash.bin" "$work/in/"
set +e
afl-showmap -i "$work/in" -o "$work/map" -t 20000 -- $HARNESS scenario --target "$target" > "$work/showmap.txt" 2>&1
set -e
grep -qiE "crash|signal" "$work/showmap.txt" || { cat "$work/showmap.txt" >&2; fail "afl-showmap did not see the crash"; }
echo "fuzz check: afl-showmap sees the crash on $target"
echo "fuzz check: ok"
