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
    "bench_dual_style.py": ("epsilon_mix_over_plain", "unet_batch3_over_batch2", "epsilon_mix_over_unet_scaling",
                            "cross_attention_over_plain"),
    "bench_clip_guidance.py": tuple(f"{g}_{r}" for g in ("taesd", "fast", "exact")
                                    for r in ("over_plain", "over_plain_default_attention", "peak_memory_over_plain")),
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


@pytest.mark.parametrize("script", ["bench_clip_guidance.py", "bench_dual_style.py"])
def test_benchmark_options_are_checked_before_any_model_is_built(script):
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--size", "full", "--models", "sd21"],
                         capture_output=True, text=True, cwd=str(REPO), timeout=120)
    assert res.returncode == 2 and "--models" in res.stderr and "sd15" in res.stderr, res.stderr[-2000:]


def test_gpu_script_dry_run_writes_the_ratios(tmp_path):
    """benchmarks/gpu.sh --dry: the GPU table's plan on the CPU with the tests' tiny models (one line per U-Net
    dtype), its JSON lines and markdown table."""
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable)
    res = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), "--dry"], capture_output=True, text=True,
                         env=env, cwd=str(REPO), timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + (tmp_path / "log.txt").read_text()[-3000:]
    reports = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(reports) == 2 and all(r["device"].startswith("cpu") for r in reports)
    for report in reports:  # the tiny models' RSS over the base can be below it (trimmed heap): finite only
        for key in RATIOS["bench_clip_guidance.py"]:
            assert isinstance(report[key], float) and math.isfinite(report[key]), (key, report)
            assert report[key] > 0 or "memory" in key, (key, report)
    table = (tmp_path / "table.md").read_text()
    assert table.count("| the tests' tiny SD1.x U-Net") == 2 and "plain ms/step" in table
