#!/usr/bin/env bash
# Generates a Python client from openapi/openapi.json with openapi-python-client (PyPI)
# and runs scripts/python_client_flow.py through it against a fresh in-memory server:
# the committed document's shapes, nullability included, proven from a second language.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-18291}
if ! command -v openapi-python-client >/dev/null 2>&1; then
  echo "python-client: installing openapi-python-client from PyPI"
  python3 -m pip install --quiet 'openapi-python-client>=0.26'
fi
work=$(mktemp -d)
cargo build -q -p hoplink-server --bin hoplink
bin=${CARGO_TARGET_DIR:-target}/debug/hoplink
RUST_LOG=warn BIND=127.0.0.1:$PORT RATE_LIMIT_ANON=off RATE_LIMIT_AUTH=off RATE_LIMIT_REGISTER=off \
  RATE_LIMIT_LOGIN=off "$bin" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
echo "python-client: generating the client"
openapi-python-client generate --path openapi/openapi.json --output-path "$work/client" --overwrite >"$work/generate.log" 2>&1 ||
  { cat "$work/generate.log"; exit 1; }
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
PYTHONPATH="$work/client" python3 scripts/python_client_flow.py "http://127.0.0.1:$PORT"
