#!/usr/bin/env bash
# Fuzzes the API with schemathesis (`--checks all`) as a new user would: a fresh
# in-memory server, rate limits off, a registered account's bearer token, bounded time.
# The account is an administrator (ADMIN_EMAILS), so the admin routes are fuzzed too.
# Any failure fails the script. Configuration: scripts/schemathesis.toml.
#
#   scripts/fuzz-api.sh            # MAX_TIME=180 seconds by default
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_TIME=${MAX_TIME:-180}
PORT=${PORT:-18290}

if ! command -v st >/dev/null 2>&1; then
  echo "fuzz-api: installing schemathesis from PyPI"
  python3 -m pip install --quiet 'schemathesis>=4,<5'
fi
cargo build -q -p hoplink-server --bin hoplink
bin=${CARGO_TARGET_DIR:-target}/debug/hoplink
log=$(mktemp)
RUST_LOG=warn BIND=127.0.0.1:$PORT ADMIN_EMAILS=fuzz@example.com RATE_LIMIT_ANON=off RATE_LIMIT_AUTH=off RATE_LIMIT_REGISTER=off \
  RATE_LIMIT_LOGIN=off RATE_LIMIT_REDIRECT=off "$bin" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done

base=http://127.0.0.1:$PORT
account='{"email": "fuzz@example.com", "password": "fuzzing password"}'
curl -sf "$base/api/v1/auth/register" -H 'content-type: application/json' -d "$account" >/dev/null
token=$(curl -sf "$base/api/v1/auth/login" -H 'content-type: application/json' -d "$account" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

echo "fuzz-api: schemathesis --checks all for up to $MAX_TIME s"
st --config-file scripts/schemathesis.toml run "$base/openapi.json" --checks all \
  -H "Authorization: Bearer $token" --max-time "$MAX_TIME" --no-color
if grep -q "panicked" "$log"; then
  echo "fuzz-api: the server panicked:"; grep -A5 panicked "$log"; exit 1
fi
