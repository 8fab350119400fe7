#!/usr/bin/env bash
# Soak run on loopback: two hoplink instances sharing PostgreSQL and Redis (and Kafka when
# TEST_KAFKA_BROKERS is set, Redis Streams otherwise), DURATION seconds (default 600) of
# mixed traffic: 95 % redirects, 4 % creates, 1 % analytics summaries, from one wrk per
# instance. Reports throughput, p50/p99 latency, error counts and each process's memory
# over time. Not part of CI.
#
#   scripts/soak.sh          # DURATION=600 CONNECTIONS=32 by default
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-600}
CONNECTIONS=${CONNECTIONS:-32}
PORTS=(${SOAK_PORTS:-18280 18281})
DATABASE=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379}
LINKS=10000
# The mix, in per cent of requests (redirects take the rest).
CREATES=${CREATES:-4}
ANALYTICS=${ANALYTICS:-1}

command -v wrk >/dev/null 2>&1 || { echo "soak: installing wrk"; apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
echo "soak: building the release binary"
cargo build --release -q -p hoplink-server --bin hoplink
bin=${CARGO_TARGET_DIR:-target}/release/hoplink
work=$(mktemp -d)
run=$(date +%s)
schema="hoplink_soak_$run"
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done
  psql "$DATABASE" -q -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$DATABASE" -q -c "CREATE SCHEMA $schema" >/dev/null
sep='?'; [[ "$DATABASE" == *\?* ]] && sep='&'
export DATABASE_URL="${DATABASE}${sep}options[search_path]=$schema"
export REDIS_URL="$REDIS" REDIS_PREFIX="hoplink-soak-$run:" JWT_SECRET="soak run shared secret $run"
export RATE_LIMIT_ANON=off RATE_LIMIT_AUTH=off RATE_LIMIT_REDIRECT=1000000000/60 RUST_LOG=warn LOG_FORMAT=json
if [ -n "${TEST_KAFKA_BROKERS:-}" ]; then
  export EVENT_BUS=kafka KAFKA_BROKERS="$TEST_KAFKA_BROKERS" KAFKA_TOPIC="hoplink-soak-$run"
else
  export EVENT_BUS=redis
fi
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened"; exit 1; }
for port in "${PORTS[@]}"; do
  BIND=127.0.0.1:$port "$bin" >"$work/hoplink-$port.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
done
echo "soak: two instances on ${PORTS[*]} (event bus: $EVENT_BUS)"

python3 scripts/create-links.py "${PORTS[0]}" "$LINKS" "$work/codes.txt" "$work/token.txt" | sed 's/^/soak: /'

cat >"$work/mix.lua" <<LUA
local codes = {}
for line in io.lines("$work/codes.txt") do codes[#codes + 1] = line:match("^(%S+)") end
local token = io.open("$work/token.txt"):read("*a")
local n = 0
request = function()
  n = n + 1
  local r = math.random()
  local code = codes[math.random(#codes)]
  if r >= ($CREATES + $ANALYTICS) / 100 then
    return wrk.format("GET", "/" .. code, {["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"})
  elseif r < $CREATES / 100 then
    return wrk.format("POST", "/api/v1/urls", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token},
      '{"original_url":"https://example.com/soak/new/' .. n .. '"}')
  else
    return wrk.format("GET", "/api/v1/analytics/" .. code .. "/summary", {["Authorization"] = "Bearer " .. token})
  end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d rps=%.0f p50_us=%d p99_us=%d status_errors=%d socket_errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
declare -A start_rss
for p in "${pids[@]}"; do start_rss[$p]=$(rss "$p"); done
echo "soak: ${DURATION}s of $(( 100 - CREATES - ANALYTICS )) % redirects, $CREATES % creates, $ANALYTICS % analytics, ${CONNECTIONS} connections per instance"
wrk_pids=()
for port in "${PORTS[@]}"; do
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s "$work/mix.lua" "http://127.0.0.1:$port" >"$work/wrk-$port.txt" 2>&1 &
  wrk_pids+=($!)
done
elapsed=0
while [ "$elapsed" -lt "$DURATION" ]; do
  step=$(( DURATION - elapsed < 60 ? DURATION - elapsed : 60 ))
  sleep "$step"; elapsed=$(( elapsed + step ))
  line="soak: t=${elapsed}s rss"
  for p in "${pids[@]}"; do line+=" $(( $(rss "$p") / 1024 )) MiB"; done
  echo "$line"
done
wait "${wrk_pids[@]}" || true
for i in 0 1; do
  port=${PORTS[$i]}; p=${pids[$i]}
  result=$(grep RESULT "$work/wrk-$port.txt" || echo "RESULT missing: $(cat "$work/wrk-$port.txt")")
  echo "soak: instance $port: $result rss_start_mib=$(( start_rss[$p] / 1024 )) rss_end_mib=$(( $(rss "$p") / 1024 ))"
done
