#!/usr/bin/env bash
# Instruction counts of a redirect: hoplink (memory backends, click analytics on) and the
# bare hyper baseline each run under valgrind's callgrind, take the same random redirects
# from wrk, and their instructions per redirect and heaviest functions (inclusive, with
# the call tree folded by callgrind_annotate) are written to OUT. Instruction counts
# don't depend on what else the machine is doing, so two builds compare exactly.
#
#   scripts/profile-redirect.sh                 # OUT=target/profile-redirect.txt
#   REQUESTS_SECONDS=20 OUT=docs/profiles/redirect.txt scripts/profile-redirect.sh
#
# Builds with line tables (CARGO_PROFILE_RELEASE_DEBUG=line-tables-only) into
# CARGO_TARGET_DIR (default target/profile), so the normal release build is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_OF_LOAD=${REQUESTS_SECONDS:-10}
LINKS=${LINKS:-1000}
OUT=${OUT:-target/profile-redirect.txt}
HOPLINK_PORT=${HOPLINK_PORT:-18190}
BASELINE_PORT=${BASELINE_PORT:-18191}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/profile}
for tool in valgrind callgrind_annotate callgrind_control wrk; do
  command -v "$tool" >/dev/null || { echo "profile: $tool is missing (apt-get install valgrind wrk)"; exit 1; }
done

echo "profile: building release binaries with line tables"
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release -q -p hoplink-server -p hoplink-benches --bins
bin=$CARGO_TARGET_DIR/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened"; exit 1; }

# Both servers start under callgrind with instrumentation off; it is switched on for the load
# only (link creation and start-up stay out of the counts).
RUST_LOG=warn BIND=127.0.0.1:$HOPLINK_PORT RATE_LIMIT_ANON=off RATE_LIMIT_AUTH=off RATE_LIMIT_REDIRECT=1000000000/60 \
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/hoplink.out" \
  "$bin/hoplink" >"$work/hoplink.log" 2>&1 &
pids+=($!)
wait_port "$HOPLINK_PORT"
python3 scripts/create-links.py "$HOPLINK_PORT" "$LINKS" "$work/codes.txt" "$work/token.txt" | sed 's/^/profile: /'
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/baseline.out" \
  "$bin/baseline-hyper" "127.0.0.1:$BASELINE_PORT" "$work/codes.txt" >"$work/baseline.log" 2>&1 &
pids+=($!)
wait_port "$BASELINE_PORT"

cat >"$work/codes.lua" <<LUA
local codes = {}
for line in io.lines("$work/codes.txt") do codes[#codes + 1] = line:match("^(%S+)") end
math.randomseed(42)
request = function() return wrk.format("GET", "/" .. codes[math.random(#codes)]) end
done = function(summary) io.write(string.format("REQUESTS %d\n", summary.requests)) end
LUA

# Load with collection on; the request count is what wrk completed.
measure() {
  local name=$1 port=$2 pid=$3
  callgrind_control -i on "$pid" >/dev/null
  local n; n=$(wrk -t1 -c8 -d"${SECONDS_OF_LOAD}s" --timeout 10s -s "$work/codes.lua" "http://127.0.0.1:$port" | awk '/^REQUESTS/ {print $2}')
  callgrind_control -i off "$pid" >/dev/null
  callgrind_control -d "$pid" >/dev/null
  echo "$n" >"$work/$name.requests"
  echo "profile: $name answered $n redirects under callgrind"
}
measure hoplink "$HOPLINK_PORT" "${pids[0]}"
measure baseline "$BASELINE_PORT" "${pids[1]}"
kill "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true

mkdir -p "$(dirname "$OUT")"
{
  echo "# Instructions per redirect under callgrind ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD))"
  echo "# wrk -t1 -c8 for ${SECONDS_OF_LOAD} s of random codes among $LINKS; counts from the load only"
  for name in hoplink baseline; do
    n=$(cat "$work/$name.requests")
    file=$(ls "$work/$name.out"* | tail -n1)
    total=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ && !seen {gsub(",", "", $1); print $1; seen = 1}')
    echo
    echo "## $name: $total instructions for $n redirects: $((total / (n > 0 ? n : 1))) per redirect"
    echo
    echo "### self cost (instructions in the function itself)"
    callgrind_annotate "$file" 2>/dev/null | sed -n '/file:function/,$p' | sed -n '3,42p' || true
    echo
    echo "### inclusive cost (the function and what it calls)"
    callgrind_annotate --inclusive=yes "$file" 2>/dev/null | sed -n '/file:function/,$p' | sed -n '3,42p' || true
  done
} | sed -e "s|$HOME/.cargo/registry/src/[^/]*/||g" -e 's|/rustc/[0-9a-f]*/library/|std:|g' \
      -e "s| \[$bin/[a-z-]*\]||g" -e "s|$PWD/||g" >"$OUT"
echo "profile: written to $OUT (callgrind files in $work when KEEP=1)"
grep '^## ' "$OUT"
