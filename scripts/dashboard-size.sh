#!/usr/bin/env bash
# The inbox page's weight: print the raw and gzipped (gzip -9, as the server sends them)
# size of every stylesheet and script the inbox page loads, and fail when their gzipped
# total is over 60 KB. `--list` prints just the file names: the browser test
# tests/browser/workspace.test.mjs checks that they are exactly what the page requests,
# so this list cannot fall behind the templates.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../crates/kaltalk-server/assets"

files=(app.css htmx-2.0.11.min.js app.js inbox.js composer.js mentions.js)
budget=61440

if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${files[@]}"
  exit 0
fi

total=0
printf '%-22s %8s %8s\n' file raw gzip
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "dashboard-size: assets/$f is missing" >&2; exit 1; }
  raw=$(wc -c <"$f")
  gz=$(gzip -9 -c "$f" | wc -c)
  total=$((total + gz))
  printf '%-22s %8d %8d\n' "$f" "$raw" "$gz"
done
printf '%-22s %8s %8d (budget %d)\n' total '' "$total" "$budget"
if [ "$total" -gt "$budget" ]; then
  echo "dashboard-size: the inbox page's CSS and JS are $total bytes gzipped, over the budget of $budget" >&2
  exit 1
fi
