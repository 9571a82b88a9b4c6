#!/usr/bin/env bash
# Makes the venv the loopback Web Push service runs in (crates/kaltalk-server/tests/peers/
# push_service.py): http_ece decrypts our aes128gcm payloads as a browser would,
# cryptography and PyJWT check the VAPID signature. It lives beside the build, at
# ${CARGO_TARGET_DIR:-target}/push-venv, made on first run; prints its python's path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

requirements=(http_ece==1.2.1 cryptography==50.0.2 PyJWT==2.15.1)
venv=$(realpath -m "${CARGO_TARGET_DIR:-target}/push-venv")
stamp="$venv/.requirements"
if [[ ! -x $venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "${requirements[*]}" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}"
  echo "${requirements[*]}" >"$stamp"
fi
echo "$venv/bin/python"
