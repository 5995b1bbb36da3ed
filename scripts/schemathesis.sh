#!/usr/bin/env bash
# Property-based API fuzzing of the running server against its own OpenAPI
# document (schemathesis, every check). Fails on any 5xx, schema violation or
# other check failure. Needs target/debug/octogen (built by `cargo test`) and
# a Python with schemathesis (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${OCTOGEN_BIN:-target/debug/octogen}
ST=${SCHEMATHESIS:-st}
PORT=${PORT:-18765}
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

"$BIN" demo --data-dir "$work/data" --listen "127.0.0.1:$PORT" >"$work/demo.out" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  grep -q "API key" "$work/demo.out" 2>/dev/null && break
  sleep 0.2
done
key=$(grep "API key" "$work/demo.out" | awk '{print $NF}')
[ -n "$key" ] || { cat "$work/demo.out"; echo "the demo server did not start" >&2; exit 1; }
# The fuzzer sends far more than the default 600 requests a minute; lift the
# demo organization's budget so every case reaches the handlers.
org=$(grep "Organization:" "$work/demo.out" | sed 's/.*(\(.*\)).*/\1/')
OCTOGEN_SERVER="http://127.0.0.1:$PORT" OCTOGEN_DATA_DIR="$work/data" "$BIN" admin org set-rate-limit "$org" --per-minute 10000000 >/dev/null

# Every API version's document, with requests sent in that version.
for version in 2026-05-28 2026-10-01; do
  echo "== API version $version"
  SCHEMATHESIS_HOOKS=tests.schemathesis.hooks "$ST" run "http://127.0.0.1:$PORT/v1/openapi.json?version=$version" \
    --checks all \
    --header "Authorization: Bearer $key" \
    --header "Octogen-Version: $version" \
    --max-examples "${MAX_EXAMPLES:-300}" \
    --seed 20261128
done
