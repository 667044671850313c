#!/usr/bin/env bash
# The prepared accelerator run: paper-scale Beauty (LOO) training of the Table 3 methods, three
# seeds each, side by side on one GPU, plus the model speed bench and the ToI evaluation.
#   bash bench/gpu_beauty.sh DATA_DIR OUT_DIR [MAX_MINUTES_PER_RUN]
# Env: HIDDEN (diffusion models, default 3072 = the paper), DEVICE (default cuda), JOBS,
#      LR (every run, default 3e-4; 1e-3 ends the diffusion models' early plateau sooner),
#      METHODS (default the five of the core issue; all nine for the paper's Table 3).
set -uo pipefail
DATA=$1
OUT=$2
MINUTES=${3:-5}
HIDDEN=${HIDDEN:-3072}
DEVICE=${DEVICE:-cuda}
JOBS=${JOBS:-14}
GRID=${GRID:-/tmp/grid}
LR=${LR:-3e-4}
METHODS=${METHODS:-pasrec preferdiff sasrec gru4rec popularity}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$GRID/pasrec-tpp/seed0"
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi") \
  > "$GRID/machine.txt"
python3 -c "import torch, platform; print(platform.platform(), 'torch', torch.__version__)" \
  >> "$GRID/machine.txt"

python3 bench/model_speed.py --data "$DATA" --hidden "$HIDDEN" --device "$DEVICE" --steps 20 \
  --out "$GRID/bench_model_speed.json" > "$GRID/bench_model_speed.md" 2> "$GRID/bench.err"

python3 -m pasrec.cli.main train --data "$DATA" --name Beauty --split loo --truncate 11 \
  --train-samples last --model pasrec --toi-head tpp --hidden "$HIDDEN" --epochs 200 \
  --device "$DEVICE" --lr "$LR" --quiet --valid-limit 4096 --valid-ddim-steps 20 --max-minutes "$MINUTES" \
  --out "$GRID/pasrec-tpp/seed0" > "$GRID/pasrec-tpp/seed0/train.log" 2>&1 &
python3 -m pasrec.cli.main reproduce --table 3 --data "$DATA" --name Beauty --seeds 3 \
  --methods $METHODS --jobs "$JOBS" --device "$DEVICE" --lr "$LR" \
  --hidden "$HIDDEN" --baseline-hidden 256 --max-minutes "$MINUTES" --out "$GRID" \
  > "$GRID/reproduce.log" 2>&1
wait

for run in pasrec/seed0 pasrec-tpp/seed0; do
  name=${run%%/*}
  python3 -m pasrec.cli.main evaluate --checkpoint "$GRID/$run/checkpoint" --data "$DATA" \
    --name Beauty --split loo --truncate 11 --train-samples last --device "$DEVICE" --toi \
    --plot "$GRID/toi_errors_$name.png" > "$GRID/toi_$name.json" 2> "$GRID/toi_$name.err"
done
tar -czf "$OUT/beauty_grid.tar.gz" --exclude=checkpoint -C "$GRID" .
cat "$GRID/machine.txt" "$GRID/bench_model_speed.md" "$GRID"/table3_Beauty.md 2>/dev/null
