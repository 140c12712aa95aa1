#!/usr/bin/env bash
# Mutation-testing benchmark of the reference allocator (src/Kmem.Reference) with Stryker.NET 5.1.
# NOT part of CI: a full run takes a long time (about 1,750 mutants at the Standard level).
#
#   scripts/mutation.sh [extra dotnet-stryker options...]
#
# e.g.  scripts/mutation.sh --mutation-level Basic
#       scripts/mutation.sh --mutate 'src/Kmem.Reference/BitTree.cs'
#
# Config: properties/stryker-config.json (mutates src/Kmem.Reference/**/*.cs only; runs only the
# ReferenceTests / ReferenceAllocatorsTests / InvariantProperties / CorpusTests subset of
# properties/Kmem.Properties, per-test coverage). Stryker runs from the repository root in solution
# mode because Kmem.Properties reaches Kmem.Reference only transitively (via Kmem.Zoo), and in
# project mode Stryker 5.1 looks at direct project references only ("No project found").
# Output: mutation-out/ (git-ignored): reports/mutation-report.{json,html}, logs/.
# Score = (Killed + Timeout) / (Killed + Timeout + Survived + NoCoverage).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${MUTATION_OUT:-$root/mutation-out}
cd "$root"
dotnet tool restore >/dev/null
start=$(date +%s)
status=0
dotnet stryker --config-file properties/stryker-config.json --output "$out" --skip-version-check "$@" || status=$?
end=$(date +%s)

report=$out/reports/mutation-report.json
if [ ! -f "$report" ]; then
  echo "mutation.sh: no report at $report (stryker exit $status)" >&2
  exit "${status/#0/1}"
fi
python3 - "$report" "$((end - start))" <<'PY'
import json, sys, collections
r = json.load(open(sys.argv[1]))
c = collections.Counter(m["status"] for f in r["files"].values() for m in f["mutants"])
k, t, s, n = c["Killed"], c["Timeout"], c["Survived"], c["NoCoverage"]
den = k + t + s + n
print("mutation score: %.2f%%  (killed %d, timeout %d, survived %d, no coverage %d; other: %s)  in %ss"
      % (100.0 * (k + t) / den if den else 0.0, k, t, s, n,
         {x: y for x, y in c.items() if x not in ("Killed", "Timeout", "Survived", "NoCoverage")}, sys.argv[2]))
PY
exit "$status"
