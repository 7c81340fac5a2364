#!/bin/bash
# bench_ssl_busi.py default mode split over 6 processes (per seed: 1/8; 1/4 with the ceiling) sharing one GPU,
# then the aggregate over the seeds that finished (reusing their runs), then bench_train.py on the GPU with the
# time left. Finished runs land in the repository's ledger (benchmarks/_ledger.py), returned as ledger.tgz, and
# runs already in the ledger are not trained again. Used on a lent GPU machine with a time limit.
# Env: DATA (BUSI folder), EXTRA (more arguments for bench_ssl_busi.py; the ledger path below assumes the
# default 128 px / 40 epochs), SSL_LIMIT and TOTAL (seconds), PY, OUT (logs and a tarball of the run files).
set -u
T0=$(date +%s)
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT/logs"
DATA=${DATA:-bench-data/busi}; EXTRA=${EXTRA:-}; SSL_LIMIT=${SSL_LIMIT:-390}; TOTAL=${TOTAL:-570}
PY=${PY:-python3}
if [ -d .whl ] && [ -z "${NOWHL:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src
fi
export PYTHONUNBUFFERED=1
elapsed() { echo $(( $(date +%s) - T0 )); }
$PY -c "import torch, segmentation_models_pytorch, albumentations, imagehash, lightning, pydantic, teachseg; print('torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())" 2>&1 | tee "$OUT/logs/env.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$OUT/logs/env.txt" 2>&1
nproc >> "$OUT/logs/env.txt"
echo "[$(elapsed)s] ssl: 6 processes"
for s in 21 42 84; do
  timeout -k 15 "$SSL_LIMIT" $PY benchmarks/bench_ssl_busi.py --data "$DATA" --seeds $s --fractions 0.125 --no-ceiling \
    --workers 2 --threads 2 $EXTRA > "$OUT/logs/ssl_${s}_f8.log" 2>&1 &
  timeout -k 15 "$SSL_LIMIT" $PY benchmarks/bench_ssl_busi.py --data "$DATA" --seeds $s --fractions 0.25 \
    --workers 2 --threads 2 $EXTRA > "$OUT/logs/ssl_${s}_f4.log" 2>&1 &
done
wait
echo "[$(elapsed)s] ssl processes ended:"; for f in "$OUT"/logs/ssl_*_f*.log; do echo "== $f"; tail -3 "$f"; done
# aggregate over the seeds whose two processes both finished
SEEDS=""
for s in 21 42 84; do
  if grep -q "ssl_gap_closed_at_quarter\|ssl_best_gain_at_quarter" "$OUT/logs/ssl_${s}_f8.log" && grep -q "ssl_gap_closed_at_quarter" "$OUT/logs/ssl_${s}_f4.log"; then SEEDS="$SEEDS $s"; fi
done
echo "[$(elapsed)s] aggregate over seeds:$SEEDS"
if [ -n "$SEEDS" ]; then
  timeout -k 10 90 $PY benchmarks/bench_ssl_busi.py --data "$DATA" --seeds $SEEDS --workers 2 $EXTRA > "$OUT/ssl_all.log" 2>&1
  cat "$OUT/ssl_all.log" | grep -v "^\s*warning" | tail -40
fi
# the ledger (benchmarks/results/, finished runs without weights): unpack it into the checkout and commit it
$PY benchmarks/_ledger.py bench-output/ssl-busi/ssl benchmarks/results/ssl-busi-128px-40ep/ssl  # killed ones' runs
[ -d benchmarks/results ] && tar czf "$OUT/ledger.tgz" benchmarks/results
( cd bench-output && find ssl-busi \( -name '*.json' -o -name '*.csv' -o -name '*.yaml' \) -print0 | tar czf "$OUT/ssl_runs.tgz" --null -T - ) 2>&1 | tail -2
LEFT=$(( TOTAL - $(elapsed) - 15 ))
echo "[$(elapsed)s] bench_train with ${LEFT}s left"
if [ "$LEFT" -gt 60 ]; then
  timeout -k 10 "$LEFT" $PY benchmarks/bench_train.py --device cuda --data "$DATA" --steps 30 --warmup 6 > "$OUT/train.log" 2>&1
  tail -14 "$OUT/train.log"
fi
tar czf "$OUT/logs.tgz" -C "$OUT" logs && rm -rf "$OUT/logs"
echo "[$(elapsed)s] done"
