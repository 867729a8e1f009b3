"""Slerp cost against a plain lerp on a batch of 8 latents of 4x128x128 (1024x1024 px in SD).

Prints one JSON line of ratios measured in this run (never absolute goals): the median time of
``slerp`` (per sample, float32) over the median time of ``lerp`` on the same tensors, and the same
for the whole-batch (source) scope and float16 inputs. Run: ``python benchmarks/bench_slerp.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for the pure `blendspace` package only

from blendspace.slerp import lerp, slerp  # noqa: E402


def median_time(fn, repeats: int = 15) -> float:
    repeats = int(os.environ.get("BLENDSPACE_BENCH_REPEATS", repeats))  # 1 in the test that runs the benchmarks
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    torch.manual_seed(0)
    a = torch.randn(8, 4, 128, 128)
    b = torch.randn(8, 4, 128, 128)
    t_lerp = median_time(lambda: lerp(a, b, 0.3))
    t_slerp = median_time(lambda: slerp(a, b, 0.3, per="sample"))
    t_whole = median_time(lambda: slerp(a, b, 0.3, per="tensor"))
    a16, b16 = a.half(), b.half()
    t_lerp16 = median_time(lambda: lerp(a16, b16, 0.3))
    t_slerp16 = median_time(lambda: slerp(a16, b16, 0.3, per="sample"))
    print(json.dumps({
        "benchmark": "slerp_vs_lerp_8x4x128x128",
        "slerp_per_sample_over_lerp": round(t_slerp / t_lerp, 3),
        "slerp_whole_batch_over_lerp": round(t_whole / t_lerp, 3),
        "slerp_fp16_over_lerp_fp16": round(t_slerp16 / t_lerp16, 3),
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
