#!/usr/bin/env bash
# Redirect load test on loopback: creates 10,000 links, then measures redirects/s and
# p50/p99 latency of hoplink for DURATION seconds with wrk, and the same against a bare
# hyper server answering 302 from a HashMap, and prints the ratio. A bare poem server
# (the framework alone) runs too, and each server's CPU time per request (user and
# kernel) is printed, so the ratio can be split into framework and hoplink's own work.
#
# With BEFORE=path/to/an/earlier/hoplink, that build runs in every round too (the same
# links, the same settings), so a change is measured against its predecessor side by side.
#
# Then each server takes a steady FIXED_RATE redirects/s (default 20,000) for DURATION
# seconds (`fixed-rate`, a bounded load generator), and its CPU time per redirect at that
# load is printed: what a redirect costs when the machine is not saturated.
#
#   scripts/loadtest.sh            # DURATION=10 THREADS=2 CONNECTIONS=64 ROUNDS=5 by default
#   BEFORE=/tmp/hoplink-main scripts/loadtest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-5}
FIXED_RATE=${FIXED_RATE:-20000}
HOPLINK_PORT=${HOPLINK_PORT:-18180}
BASELINE_PORT=${BASELINE_PORT:-18181}
POEM_PORT=${POEM_PORT:-18182}
BEFORE_PORT=${BEFORE_PORT:-18183}
BEFORE=${BEFORE:-}
LINKS=10000

if ! command -v wrk >/dev/null 2>&1; then
  echo "loadtest: installing wrk"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
fi

echo "loadtest: building release binaries"
cargo build --release -q -p hoplink-server -p hoplink-benches --bins
bin=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened"; exit 1; }

# The flood guard stays on (so its cost is measured) with a limit one client can't reach.
RUST_LOG=warn BIND=127.0.0.1:$HOPLINK_PORT RATE_LIMIT_ANON=off RATE_LIMIT_AUTH=off RATE_LIMIT_REDIRECT=1000000000/60 \
  "$bin/hoplink" >"$work/hoplink.log" 2>&1 &
pids+=($!)
wait_port "$HOPLINK_PORT"

echo "loadtest: creating $LINKS links"
python3 scripts/create-links.py "$HOPLINK_PORT" "$LINKS" "$work/codes.txt" "$work/token.txt" | sed 's/^/loadtest: /'

"$bin/baseline-hyper" "127.0.0.1:$BASELINE_PORT" "$work/codes.txt" 2>"$work/baseline.log" &
pids+=($!)
"$bin/baseline-poem" "127.0.0.1:$POEM_PORT" "$work/codes.txt" 2>"$work/poem.log" &
pids+=($!)
wait_port "$BASELINE_PORT"
wait_port "$POEM_PORT"
if [ -n "$BEFORE" ]; then
  # The earlier build gets the same links: the codes file through its own bulk API.
  RUST_LOG=warn BIND=127.0.0.1:$BEFORE_PORT RATE_LIMIT_ANON=off RATE_LIMIT_AUTH=off RATE_LIMIT_REDIRECT=1000000000/60 \
    "$BEFORE" >"$work/before.log" 2>&1 &
  pids+=($!)
  wait_port "$BEFORE_PORT"
  python3 scripts/create-links.py "$BEFORE_PORT" "$work/codes.txt" "$work/before-codes.txt" "$work/before-token.txt" | sed 's/^/loadtest: before: /'
fi
pid_on() { case "$1" in "$HOPLINK_PORT") echo "${pids[0]}" ;; "$BASELINE_PORT") echo "${pids[1]}" ;; "$POEM_PORT") echo "${pids[2]}" ;; *) echo "${pids[3]}" ;; esac; }

cat >"$work/codes.lua" <<LUA
local codes = {}
for line in io.lines("$work/codes.txt") do codes[#codes + 1] = line:match("^(%S+)") end
math.randomseed(42)
request = function() return wrk.format("GET", "/" .. codes[math.random(#codes)]) end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d rps=%.0f p50_us=%d p99_us=%d non2xx3xx=%d errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

ticks=$(getconf CLK_TCK)
# One wrk run against a port; the server's CPU time (from /proc) is added to the result.
run() {
  local pid; pid=$(pid_on "$1")
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  local result; result=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s -s "$work/codes.lua" "http://127.0.0.1:$1" | grep RESULT)
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  echo "$result user_ticks=$((u1 - u0)) sys_ticks=$((s1 - s0))"
}
echo "loadtest: warming up"
wrk -t1 -c8 -d2s -s "$work/codes.lua" "http://127.0.0.1:$HOPLINK_PORT" >/dev/null
wrk -t1 -c8 -d2s -s "$work/codes.lua" "http://127.0.0.1:$BASELINE_PORT" >/dev/null
wrk -t1 -c8 -d2s -s "$work/codes.lua" "http://127.0.0.1:$POEM_PORT" >/dev/null
[ -n "$BEFORE" ] && wrk -t1 -c8 -d2s -s "$work/codes.lua" "http://127.0.0.1:$BEFORE_PORT" >/dev/null
# The servers share the machine with wrk, and its speed drifts: rounds alternate
# between them.
hop_all=(); base_all=(); poem_all=(); before_all=()
for round in $(seq "$ROUNDS"); do
  hop=$(run "$HOPLINK_PORT"); echo "  round $round hoplink:     $hop"; hop_all+=("$hop")
  base=$(run "$BASELINE_PORT"); echo "  round $round bare hyper:  $base"; base_all+=("$base")
  poem=$(run "$POEM_PORT"); echo "  round $round bare poem:   $poem"; poem_all+=("$poem")
  if [ -n "$BEFORE" ]; then
    before=$(run "$BEFORE_PORT"); echo "  round $round before:      $before"; before_all+=("$before")
  fi
done
python3 - "$ROUNDS" "$ticks" "${hop_all[@]}" "${base_all[@]}" "${poem_all[@]}" "${before_all[@]}" <<'PY'
import re, statistics, sys
rounds, ticks = int(sys.argv[1]), int(sys.argv[2]); lines = sys.argv[3:]
parse = lambda l: {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", l)}
runs = [[parse(l) for l in lines[i * rounds:(i + 1) * rounds]] for i in range(len(lines) // rounds)]
med = lambda rs, k: statistics.median(r[k] for r in rs)
cpu = lambda rs, k: statistics.median(r[k] / ticks / r["requests"] * 1e6 for r in rs)
for name, rs in zip(["hoplink", "bare hyper", "bare poem", "before"], runs):
    print(f"loadtest: median of {rounds} rounds: {name} {med(rs, 'rps'):.0f} redirects/s (p50 {med(rs, 'p50_us'):.0f} us, p99 {med(rs, 'p99_us'):.0f} us, errors {sum(r['errors'] + r['non2xx3xx'] for r in rs):.0f}); server CPU per request {cpu(rs, 'user_ticks'):.1f} us user + {cpu(rs, 'sys_ticks'):.1f} us kernel")
# The machine's speed drifts over a run: each round's servers run back to back, so the
# ratio is taken within each round, and its median reported.
ratio = lambda i: statistics.median(100 * a["rps"] / b["rps"] for a, b in zip(runs[i], runs[1]))
print(f"loadtest: bare poem reaches {ratio(2):.1f} % of bare hyper (median of the rounds' ratios)")
rounds_text = ", ".join("%.0f %%" % (100 * a["rps"] / b["rps"]) for a, b in zip(runs[0], runs[1]))
print(f"loadtest: hoplink reaches {ratio(0):.1f} % of bare hyper (median of the rounds' ratios: {rounds_text})")
if len(runs) > 3:
    before_text = ", ".join("%.0f %%" % (100 * a["rps"] / b["rps"]) for a, b in zip(runs[3], runs[1]))
    print(f"loadtest: the earlier build reaches {ratio(3):.1f} % of bare hyper (rounds: {before_text})")
PY

# CPU per redirect at a fixed rate: the server's user + kernel time over what it answered.
fixed() {
  local pid; pid=$(pid_on "$1")
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  local result; result=$("$bin/fixed-rate" "127.0.0.1:$1" "$work/codes.txt" "$FIXED_RATE" "$DURATION" | grep RESULT)
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  python3 - "$result" "$((u1 - u0))" "$((s1 - s0))" "$ticks" <<'PY'
import re, sys
r = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", sys.argv[1])}
user, sys_, ticks = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
n = max(r["redirects"], 1)
print(f"{r['rps']:.0f} redirects/s ({r['other']:.0f} other answers); server CPU per redirect {user / ticks / n * 1e6:.1f} us user + {sys_ / ticks / n * 1e6:.1f} us kernel")
PY
}
echo "loadtest: at a fixed $FIXED_RATE redirects/s for ${DURATION} s each"
echo "loadtest: fixed rate hoplink:     $(fixed "$HOPLINK_PORT")"
echo "loadtest: fixed rate bare hyper:  $(fixed "$BASELINE_PORT")"
[ -n "$BEFORE" ] && echo "loadtest: fixed rate before:      $(fixed "$BEFORE_PORT")"
true
