#!/usr/bin/env bash
# Sets up fuzzing from nothing: AFL++ (apt), the SharpFuzz instrumenter (local dotnet tool), and the
# instrumented harness in fuzz/build/ (never committed).
#
#   fuzz/setup.sh            install what is missing, publish, instrument
#   fuzz/setup.sh --no-apt   fail instead of installing afl++
#
# What is instrumented (and why): the assemblies whose behaviour we want AFL++ to steer by:
#   Kmem.Scenarios  the binary decoder and the .kmem parser (the parser harness's code under test)
#   Kmem.Target     MachineConfig: boot parameters -> machine
#   Kmem.Model      the specification (its branches: which outcomes are allowed, invariants)
#   Kmem.Reference  the reference allocator
#   Kmem.Zoo        the known-buggy targets
#   Kmem.Runner     the lockstep runner (and the shrinker, unused while fuzzing)
# Not instrumented: Kmem.Fuzz (the harness), Kmem.Engines (harness glue and FsCheck generators:
# not code under test), SharpFuzz, FsCheck, FSharp.Core and the framework.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_ok=1
[ "${1:-}" = "--no-apt" ] && apt_ok=0

if ! command -v afl-fuzz >/dev/null 2>&1; then
  if [ "$apt_ok" = 1 ]; then
    echo "setup: installing afl++ with apt-get"
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq afl++ >/dev/null
  else
    echo "setup: afl-fuzz is missing; install it with: apt-get install -y afl++" >&2
    exit 2
  fi
fi
echo "setup: $(afl-fuzz -h 2>&1 | head -1 | sed 's/\x1b\[[0-9;]*m//g')"

dotnet tool restore >/dev/null

BUILD=fuzz/build
INSTRUMENT="Kmem.Scenarios Kmem.Target Kmem.Model Kmem.Reference Kmem.Zoo Kmem.Runner"

# Always into an empty folder: instrumenting an assembly twice fails, and a stale instrumented copy
# must never be mixed with a fresh build.
rm -rf "$BUILD"
dotnet publish fuzz/Kmem.Fuzz/Kmem.Fuzz.csproj -c Release -o "$BUILD" --nologo -v quiet >/dev/null
for a in $INSTRUMENT; do
  dotnet sharpfuzz "$BUILD/$a.dll" >/dev/null
done
{
  echo "instrumented: $INSTRUMENT"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo +dirty)"
  echo "date: $(date -u +%FT%TZ)"
} > "$BUILD/.instrumented"
echo "setup: instrumented harness in $BUILD ($INSTRUMENT)"
