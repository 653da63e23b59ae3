#!/bin/bash
# TFTP: dgxie's server vs tftpd-hpa (and tftpy if installed), side by side, curl as the client.
#   bench/tftp/run.sh            (root; loopback only; servers pinned to CPU 0, clients to CPU 1)
# Prints one line per case; numbers are the median of $REPS runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}; REPS=${REPS:-3}; CONC=${CONC:-50}; NCONC=${NCONC:-200}
W=$(mktemp -d /tmp/dgxie-bench-tftp.XXXXXX); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/root"
head -c $((64 << 20)) /dev/urandom > "$W/root/64m.bin"; head -c $((1 << 20)) /dev/urandom > "$W/root/1m.bin"

taskset -c 0 /usr/sbin/in.tftpd -L -a 127.0.0.1:16901 -s "$W/root" & PIDS+=($!)
taskset -c 0 "$PY" -c "
import asyncio, sys
from pathlib import Path
from dgxie.netboot.tftp import TftpServer
async def main():
    await TftpServer([Path('$W/root')], '127.0.0.1', 16902).start()
    await asyncio.Event().wait()
asyncio.run(main())" & PIDS+=($!)
SERVERS="tftpd-hpa:16901 dgxie:16902"
if "$PY" -c "import tftpy" 2>/dev/null; then
  taskset -c 0 "$PY" -c "
import logging, tftpy
logging.disable(logging.CRITICAL)
tftpy.TftpServer('$W/root').listen('127.0.0.1', 16903)" & PIDS+=($!)
  SERVERS+=" tftpy:16903"
fi
[[ ${REVERSE:-0} == 1 ]] && SERVERS=$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' ')
sleep 2

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
one() {  # one transfer: seconds
  local port=$1 file=$2 bs=$3
  /usr/bin/time -f %e taskset -c 1 curl -s -m 120 --tftp-blksize "$bs" -o /dev/null "tftp://127.0.0.1:$port/$file" 2>&1 | tail -1
}
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
# servers interleaved within each repetition, so load from other jobs hits them alike
[[ ${ONLY_CONC:-0} == 1 ]] || for f in 64m.bin 1m.bin; do for bs in 512 1468; do
  for rep in $(seq "$REPS"); do for s in $SERVERS; do
    echo "${s%%:*} $(one "${s##*:}" "$f" "$bs")" >> "$W/times"
  done; done
  for s in $SERVERS; do
    echo "${s%%:*} $f blksize=$bs: $(awk -v n="${s%%:*}" '$1==n {print $2}' "$W/times" | median)s"
  done
  rm -f "$W/times"
done; done
for round in $(seq "${CONC_ROUNDS:-1}"); do for s in $SERVERS; do
  start=$(date +%s.%N)
  seq "$NCONC" | taskset -c 1 xargs -P "$CONC" -I{} curl -s -m 120 --tftp-blksize 1468 -o /dev/null \
      "tftp://127.0.0.1:${s##*:}/1m.bin"
  end=$(date +%s.%N)
  echo "${s%%:*} ${CONC}-concurrent 1m.bin blksize=1468 (round $round): $(echo "$NCONC / ($end - $start)" | bc -l | xargs printf '%.1f') transfers/s"
done; done
