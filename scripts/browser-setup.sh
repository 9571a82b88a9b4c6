#!/usr/bin/env bash
# Prepare the machine for the headless-Chromium tests in tests/browser/.
# Idempotent and non-interactive: installs Debian's chromium when it is
# missing and the npm dependencies when node_modules is missing or stale.
# Browsers are never downloaded by Playwright (no `npx playwright install`):
# only the package registries are reachable.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
browser_dir="$repo_root/tests/browser"

if [ ! -x /usr/bin/chromium ]; then
  echo "browser-setup: installing chromium from Debian" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "browser-setup: node and npm are required (node 20 or newer)" >&2
  exit 1
fi

cd "$browser_dir"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  echo "browser-setup: npm ci in tests/browser" >&2
  npm ci --no-audit --no-fund
  # npm ci may keep node_modules' mtime; mark it as fresh for the check above.
  touch node_modules
fi
