#!/usr/bin/env bash
# Renders the HTML report of a scenario (by default a regression file) and saves a PNG of it taken
# with headless Chromium, to check that the page really renders (self-contained: nothing fetched).
#
#   scripts/screenshot.sh [FILE.kmem [OUT.png [TARGET]]]
#
# FILE    default corpus/regressions/no-upper-coalesce-coalescing-free_pages.kmem
# OUT     default out/screenshots/<FILE name>.png (out/ is git-ignored); the HTML goes next to it
# TARGET  default the file's '# target:' header line, else reference
#
# Installs Debian's chromium when it is missing (apt-get, as root). Flags: shared/design/toolchain-notes.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
file=${1:-$root/corpus/regressions/no-upper-coalesce-coalescing-free_pages.kmem}
name=$(basename "$file" .kmem)
out=${2:-$root/out/screenshots/$name.png}
target=${3:-$(sed -n 's/^# *target: *//p' "$file" | head -n 1)}
target=${target:-reference}
[ "$target" = none ] && target=reference

if ! command -v chromium >/dev/null 2>&1; then
  echo "screenshot: installing chromium (apt-get)" >&2
  if [ "$(id -u)" -ne 0 ]; then echo "screenshot: chromium is missing and installing it needs root" >&2; exit 2; fi
  apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
fi

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
html=${out%.png}.html

# Exit 1 means the scenario failed on the target: that is what a regression does; 2 is an error.
set +e
dotnet run --project "$root/src/Kmem.Cli" -c Release -- replay "$file" --target "$target" --html "$html" >/dev/null
code=$?
set -e
if [ "$code" -gt 1 ] || [ ! -s "$html" ]; then echo "screenshot: replay failed (exit $code)" >&2; exit 2; fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" \
  --screenshot="$out" --window-size=1400,900 "file://$html" >/dev/null 2>&1
[ -s "$out" ] || { echo "screenshot: chromium wrote no $out" >&2; exit 2; }
echo "$out"
