#!/usr/bin/env bash
# The full-size CLIP guidance table on one GPU, within 8 minutes: random-weight SD1.5 at 512 px and SDXL at
# 1024 px, U-Net in fp16 and in bf16 (the fast and taesd gradients under bf16 autocast where the GPU has it),
# per-step milliseconds and peak memory (torch.cuda.max_memory_allocated) of taesd, fast and exact over plain.
# Each run boots ComfyUI through the benchmarks' harness (bench_common.start) with --device cuda.
#
#   benchmarks/gpu.sh          # needs CUDA and ComfyUI (COMFYUI_PATH, else the harness's 2024 copy)
#   benchmarks/gpu.sh --dry    # the same plan on the CPU with the tests' tiny models, in seconds
#
# Writes results.jsonl (one JSON line per model and dtype), table.md, stdout.txt and log.txt to $OUT if set, else to
# benchmarks/gpu-results/. PYTHON picks the interpreter (default: .venv/bin/python if present, else python3).
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
case "${1:-}" in
  --dry) DRY=1 ;;
  "") ;;
  *) echo "usage: benchmarks/gpu.sh [--dry]" >&2; exit 2 ;;
esac
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
DIR=${OUT:-benchmarks/gpu-results}
mkdir -p "$DIR"
: > "$DIR/log.txt"

BUDGET=${GPU_BENCH_BUDGET_S:-450}   # 8 minutes less the table and the start
START=$(date +%s)
# One process (one ComfyUI boot): SD1.5 in fp16 and bf16, then SDXL in fp16 and bf16; each JSON line is written as
# its model finishes, so a run cut by the time limit keeps what it measured.
if [ "$DRY" = 1 ]; then
  args=(--device cpu --tiny --steps 1 --repeats 1 --dtype fp16,bf16)
else
  args=(--device cuda --size full --models sd15,sdxl --steps 4 --repeats 2 --dtype fp16,bf16)
fi
echo "gpu.sh: $PY benchmarks/bench_clip_guidance.py ${args[*]} (at most ${BUDGET}s)" | tee -a "$DIR/log.txt"
timeout "$BUDGET" "$PY" benchmarks/bench_clip_guidance.py "${args[@]}" > "$DIR/stdout.txt" 2>> "$DIR/log.txt" \
  || echo "gpu.sh: the benchmark ended early (status $?): see $DIR/log.txt" | tee -a "$DIR/log.txt"
grep '^{' "$DIR/stdout.txt" > "$DIR/results.jsonl"
"$PY" benchmarks/gpu_table.py "$DIR/results.jsonl" > "$DIR/table.md"
cat "$DIR/table.md"
echo "gpu.sh: $(( $(date +%s) - START )) s; results in $DIR"
grep -q '^{' "$DIR/results.jsonl"   # fails when nothing was measured
