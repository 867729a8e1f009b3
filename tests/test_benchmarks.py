"""The benchmarks still run and report their ratios (one repeat each; no timing is asserted: the speed
goals are read from `make bench`, measured in one run)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from comfy_harness import REPO

RATIOS = {
    "bench_slerp.py": ("slerp_per_sample_over_lerp", "slerp_whole_batch_over_lerp", "slerp_fp16_over_lerp_fp16"),
    "bench_dual_style.py": ("epsilon_mix_over_plain", "unet_batch3_over_batch2", "cross_attention_over_plain"),
    "bench_clip_guidance.py": ("exact_over_plain", "fast_over_plain", "exact_over_plain_both_sdpa"),
    "bench_fanout.py": ("two_servers_speedup",),
}


@pytest.mark.parametrize("script", sorted(RATIOS))
def test_benchmark_runs_and_reports_ratios(script):
    env = dict(os.environ, BLENDSPACE_BENCH_REPEATS="1")
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / script)], capture_output=True, text=True, env=env,
                         cwd=str(REPO), timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    for key in RATIOS[script]:
        assert isinstance(report[key], float) and math.isfinite(report[key]) and report[key] > 0, (key, report)
