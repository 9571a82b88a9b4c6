#!/usr/bin/env bash
# Print the raw and gzipped (gzip -9) size of each file in widget/ and fail when a
# file is over its budget: loader.js (served as /widget.js) 6 KB, chat.js 30 KB gzipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../widget"

status=0
for f in loader.js chat.js; do
  [ -f "$f" ] || { echo "widget-size: widget/$f is missing" >&2; status=1; }
done
printf '%-12s %8s %8s %8s\n' file raw gzip budget
for f in *; do
  [ -f "$f" ] || continue
  raw=$(wc -c <"$f")
  gz=$(gzip -9 -c "$f" | wc -c)
  case "$f" in
    loader.js) budget=6144 ;;
    chat.js) budget=30720 ;;
    *) budget= ;;
  esac
  printf '%-12s %8d %8d %8s\n' "$f" "$raw" "$gz" "${budget:--}"
  if [ -n "$budget" ] && [ "$gz" -gt "$budget" ]; then
    echo "widget-size: $f is $gz bytes gzipped, over its budget of $budget" >&2
    status=1
  fi
done
exit "$status"
