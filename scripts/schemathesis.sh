#!/usr/bin/env bash
# Fuzzes the API against its own OpenAPI document with schemathesis (from PyPI): starts
# the built binary on a throw-away data directory, creates an owner, an inbox and an API
# key with the CLI, then lets schemathesis call every operation with generated input.
# Fails on any 5xx and on any response that breaks the document.
#
#   KALTALK_BIN=target/debug/kaltalk bash scripts/schemathesis.sh
#
# The venv lives beside the build (${CARGO_TARGET_DIR:-target}/schemathesis-venv) and is
# made on first run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCHEMATHESIS_VERSION=4.32.5
# Examples per operation: enough to reach the validation paths, short enough to keep the
# whole run under two minutes on a 2-core machine.
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-40}

target_dir=${CARGO_TARGET_DIR:-target}
bin=${KALTALK_BIN:-$target_dir/debug/kaltalk}
venv=$(realpath -m "$target_dir/schemathesis-venv")
# What the checks accept, and why (absolute: schemathesis runs from another directory).
config=$(realpath scripts/schemathesis.toml)
if [[ ! -x $bin ]]; then
  echo "schemathesis.sh: no kaltalk binary at $bin; run 'cargo build -p kaltalk' first" >&2
  exit 1
fi
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

data_dir=$(mktemp -d "${TMPDIR:-/tmp}/kaltalk-schemathesis-XXXXXX")
log=$data_dir/server.log
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$data_dir"
}
trap cleanup EXIT

# The server reads every KALTALK_* variable as configuration and refuses unknown ones:
# pass only its own. `env` execs the binary, so a backgrounded `"${kaltalk[@]}" serve &`
# gives `$!` = the server's own pid (a shell function would give a subshell's, and the
# trap would kill the subshell and leave the server running).
kaltalk=(env -u KALTALK_BIN -u KALTALK_DATABASE_URL -u KALTALK_PUBLIC_URL
  KALTALK_DATA_DIR="$data_dir" "$bin")
value_of() { sed -n "s/^$1=//p"; }

org_id=$(printf 'correct horse battery staple\n' |
  "${kaltalk[@]}" admin create-user --email owner@example.com --name Owner --password-stdin --org Acme |
  value_of org_id)
"${kaltalk[@]}" admin create-inbox --org-id "$org_id" --name Website --domain example.com >/dev/null
key=$("${kaltalk[@]}" admin create-api-key --org-id "$org_id" --name schemathesis | tail -n 1)
[[ $key == kt_* ]] || { echo "schemathesis.sh: no API key from the CLI: $key" >&2; exit 1; }

KALTALK_LISTEN=127.0.0.1:0 KALTALK_SMTP_LISTEN=127.0.0.1:0 KALTALK_EMBEDDINGS__DOWNLOAD=false \
  KALTALK_LOG_FORMAT=text KALTALK_API__RATE_LIMIT_PER_MINUTE=1000000 \
  "${kaltalk[@]}" serve >"$log" 2>&1 &
server_pid=$!
# Readiness from the server's own log line; no port probing, no fixed sleep.
base=
for _ in $(seq 600); do
  base=$(grep -o 'listening on http://[0-9.:]*' "$log" | head -n 1 | sed 's/listening on //') || true
  [[ -n $base ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[[ -n $base ]] || { echo "schemathesis.sh: the server did not start:" >&2; cat "$log" >&2; exit 1; }

# scripts/schemathesis.toml says which answers the checks accept and why.
# Every check but negative_data_rejection: the document describes webhook URLs with a
# pattern narrower than what the server accepts (any http(s) URL with a host), so that
# generated examples are real URLs; URLs outside that pattern are rightly accepted.
# Not the stateful phase: it chains create → read → delete, but its POSTs carry generated
# Idempotency-Keys, and schemathesis reuses the same few keys and bodies, so a replayed
# "created" answer can name a resource an earlier step deleted; the 404 that follows is
# correct behaviour, reported as "created resource not found" (ST302).
# Run from the throw-away directory: schemathesis keeps a cache in its working directory.
status=0
(cd "$data_dir" && "$venv/bin/schemathesis" --config-file "$config" run "$base/api/v1/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks all \
  --exclude-checks negative_data_rejection \
  --phases examples,coverage,fuzzing \
  --max-examples "$MAX_EXAMPLES" \
  --seed 1 \
  --no-color) || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- server log ---" >&2
  tail -n 100 "$log" >&2
fi
exit "$status"
