#!/usr/bin/env bash
# Run the headless-Chromium end-to-end tests against a built kaltalk binary.
#   KALTALK_BIN  path of the kaltalk binary (default: target/debug/kaltalk,
#                relative to the repository root)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

bash scripts/browser-setup.sh

KALTALK_BIN="${KALTALK_BIN:-target/debug/kaltalk}"
case "$KALTALK_BIN" in
  /*) ;;
  *) KALTALK_BIN="$repo_root/$KALTALK_BIN" ;;
esac
if [ ! -x "$KALTALK_BIN" ]; then
  echo "browser-test: kaltalk binary not found at $KALTALK_BIN (build it with: cargo build -p kaltalk)" >&2
  exit 1
fi
export KALTALK_BIN

mkdir -p tests/browser/artifacts
exec node --test tests/browser/
