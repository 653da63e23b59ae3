#!/bin/bash
# HTTP boot: dgxie serve (boot fast path) vs nginx, side by side, wrk on loopback.
#   bench/http/run.sh     (root; server pinned to CPU 0, wrk to CPU 1; DUR seconds per case)
# 1. a 256 MiB image file, 4 connections (MiB/s)
# 2. the per-node iPXE script, 50 connections (requests/s); nginx serving the same script as a
#    static file is the ceiling.
set -euo pipefail
cd "$(dirname "$0")/../.."
DGXIE=${DGXIE:-.venv/bin/dgxie}; DUR=${DUR:-10}
W=$(mktemp -d /tmp/dgxie-bench-http.XXXXXX); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT
chmod 755 "$W"; mkdir -p "$W/www"   # nginx workers run as nobody
head -c $((256 << 20)) /dev/urandom > "$W/www/big.bin"; head -c 4096 /dev/urandom > "$W/initrd.img"
cat > "$W/dgxie.yaml" <<YAML
database_url: sqlite:///$W/dgxie.db
data_dir: $W/data
public_url: http://127.0.0.1:18280
api: {listen: "127.0.0.1:18280"}
log_level: warning
profiles: {bench: {image: bench}}
YAML
$DGXIE --config "$W/dgxie.yaml" image add bench --kernel "$W/www/big.bin" --initrd "$W/initrd.img" \
  --cmdline "console=ttyS0 ds=nocloud-net;s={base}" 2>/dev/null
$DGXIE --config "$W/dgxie.yaml" node add bench-n1 --mac 52:54:00:aa:00:01 --profile bench 2>/dev/null
cat > "$W/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $W/nginx.pid; error_log $W/nginx.err;
events { worker_connections 1024; }
http { access_log off; sendfile on; tcp_nopush on; default_type application/octet-stream;
  server { listen 127.0.0.1:18281; root $W/www; } }
NGX
taskset -c 0 nginx -c "$W/nginx.conf" & PIDS+=($!)
taskset -c 0 $DGXIE --config "$W/dgxie.yaml" serve >"$W/serve.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do curl -sf -m 1 http://127.0.0.1:18280/healthz >/dev/null && break; sleep 0.3; done
curl -sf "http://127.0.0.1:18280/boot/ipxe?mac=52:54:00:aa:00:01" > "$W/www/ipxe.txt"
cmp <(curl -sf http://127.0.0.1:18280/images/bench/big.bin) "$W/www/big.bin"   # same bytes, both 200
cmp <(curl -sf http://127.0.0.1:18281/big.bin) "$W/www/big.bin"
curl -sf http://127.0.0.1:18281/ipxe.txt >/dev/null
rate() { taskset -c 1 wrk -t1 -c"$1" -d"${DUR}s" --timeout 30s "$2" > "$W/wrk.out"; cat "$W/wrk.out" >> "$W/wrk.all"
  grep -q -E "Non-2xx|Socket errors" "$W/wrk.out" && { echo "wrk reported errors:" >&2; cat "$W/wrk.out" >&2; }
  awk -v k="$3" '$1==k":" {print $2}' "$W/wrk.out"; }
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "nginx image 256MiB c=4: $(rate 4 http://127.0.0.1:18281/big.bin Transfer/sec)"
echo "dgxie image 256MiB c=4: $(rate 4 http://127.0.0.1:18280/images/bench/big.bin Transfer/sec)"
echo "nginx static ipxe.txt c=50: $(rate 50 http://127.0.0.1:18281/ipxe.txt Requests/sec) req/s"
echo "dgxie /boot/ipxe c=50: $(rate 50 'http://127.0.0.1:18280/boot/ipxe?mac=52:54:00:aa:00:01' Requests/sec) req/s"
