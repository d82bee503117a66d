#!/usr/bin/env bash
# Bounded soak on loopback: steady load against one argserve process while its resident memory is
# sampled; writes bench/results/<date>-<host>-soak.md (RSS series, trend, peak, errors).
#
#   bash bench/soak.sh                       # 10 minutes, default model
#   DURATION=600 CONCURRENCY=16 MODEL=path/to/model.pt bash bench/soak.sh
#   BIN_DIR=build-glibc/bin SERVER_FLAGS=--memory_release_interval=0 bash bench/soak.sh
#     (a build configured with -DARGSERVE_JEMALLOC=OFF, i.e. glibc's allocator, untrimmed)
#   SUFFIX=-x bash bench/soak.sh        # writes ...-soak-x.md instead
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-600}"          # seconds of load
CONCURRENCY="${CONCURRENCY:-16}"
INTERVAL="${INTERVAL:-10}"           # seconds between RSS samples
MODEL="${MODEL:-model/default/argserve-default.pt}"
BIN_DIR="${BIN_DIR:-build/bin}"
read -r -a server_flags <<< "${SERVER_FLAGS:-}"
FASTA="${BENCH_FASTA:-data/cluster40/test.fasta}"
[ -s "$FASTA" ] || FASTA=examples/proteins.fasta
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

"$BIN_DIR/argserve" --model="$MODEL" --address=127.0.0.1:0 --metrics_address=127.0.0.1:0 \
  --port_file="$work/ports" "${server_flags[@]}" 2> "$work/server.log" &
server_pid=$!
for _ in $(seq 1 600); do [ -s "$work/ports" ] && break; sleep 0.1; done
grpc_port="$(sed -n 's/.*grpc=\([0-9]*\).*/\1/p' "$work/ports")"
metrics_port="$(sed -n 's/.*metrics=\([0-9]*\).*/\1/p' "$work/ports")"

"$BIN_DIR/argserve-bench" --target="127.0.0.1:$grpc_port" --metrics_url_port="$metrics_port" --fasta="$FASTA" \
  --mode=closed --concurrency="$CONCURRENCY" --sequences_per_request=4 --warmup=0s --duration="${DURATION}s" \
  --json_out="$work/load.json" > "$work/load.txt" &
load_pid=$!
echo "seconds rss_kib" > "$work/rss.txt"
start=$(date +%s)
while kill -0 "$load_pid" 2>/dev/null; do
  echo "$(( $(date +%s) - start )) $(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")" >> "$work/rss.txt"
  sleep "$INTERVAL"
done
wait "$load_pid" || true
# Once the load has stopped the allocator may hand pages back; that sample is reported apart from
# the series under load.
sleep 1
echo "$(( $(date +%s) - start )) $(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")" > "$work/rss-after.txt"
allocator="$(sed -n 's/.*allocator=\([a-z]*\).*/\1/p' "$work/server.log" | head -1)"
peak="$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")"
kill -TERM "$server_pid"; wait "$server_pid" || true

out="bench/results/$(date +%Y-%m-%d)-$(hostname -s)-soak${SUFFIX:-}.md"
/usr/bin/python3 - "$work/rss.txt" "$work/load.json" "$peak" "$DURATION" "$CONCURRENCY" "$MODEL" \
  "$work/rss-after.txt" "$allocator" "${SERVER_FLAGS:-}" > "$out" <<'PYEOF'
import json, sys
rows = [tuple(map(float, line.split())) for line in open(sys.argv[1]).read().splitlines()[1:] if len(line.split()) == 2]
load = json.load(open(sys.argv[2]))
peak_kib, duration, concurrency, model = float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
after_seconds, after_kib = map(float, open(sys.argv[7]).read().split())
allocator = sys.argv[8] or "unknown"
server_flags = sys.argv[9] or "none beyond the defaults"
# Trend over the second half (after allocator pools and caches have grown to their working size).
half = [r for r in rows if r[0] >= rows[-1][0] / 2] or rows
n = len(half)
mx = sum(r[0] for r in half) / n
my = sum(r[1] for r in half) / n
slope = sum((r[0] - mx) * (r[1] - my) for r in half) / max(1e-9, sum((r[0] - mx) ** 2 for r in half))
lo, hi = min(r[1] for r in half), max(r[1] for r in half)
print(f"# argserve soak: {duration} s, {concurrency} concurrent callers, model `{model}`, allocator {allocator}\n")
print(f"- server flags: {server_flags}")
print(f"- requests answered OK: {load['requests_ok']}; status codes: {load['codes']}")
print(f"- throughput: {load['sequences_per_second']:.1f} sequences/s; latency p50 {load['latency_seconds']['p50']*1e3:.1f} ms,"
      f" p99 {load['latency_seconds']['p99']*1e3:.1f} ms")
print(f"- RSS second half: {lo/1024:.1f}–{hi/1024:.1f} MiB (spread {100*(hi-lo)/my:.1f}% of mean {my/1024:.1f} MiB);"
      f" trend {slope*3600/1024:+.2f} MiB/hour; peak RSS (VmHWM) {peak_kib/1024:.1f} MiB")
deviation = max(hi - my, my - lo) / my
print(f"- stable under load (every second-half sample within ±5% of their mean): {'yes' if deviation <= 0.05 else 'NO'}"
      f" (largest deviation {100*deviation:.1f}%)")
print(f"- RSS {after_seconds - rows[-1][0]:.0f} s after the load stopped: {after_kib/1024:.1f} MiB\n")
print("| seconds | RSS MiB |\n| ---: | ---: |")
for t, rss in rows:
    print(f"| {t:.0f} | {rss/1024:.1f} |")
PYEOF
echo "wrote $out"
