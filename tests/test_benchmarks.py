"""The benchmarks still run and report their ratios, each beside its FLOP limit and quotient (``--smoke``: one
repeat, one or two steps, the smallest sizes; no timing is asserted: the speed goals are read from `make bench`,
measured in one run), and the FLOP counter behind the limits counts what it claims."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from comfy_harness import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import flop_limits  # noqa: E402

RATIOS = {
    "bench_slerp.py": ("slerp_per_sample_over_lerp", "slerp_whole_batch_over_lerp", "slerp_fp16_over_lerp_fp16"),
    "bench_dual_style.py": ("epsilon_mix_over_plain", "unet_batch3_over_batch2", "epsilon_mix_over_unet_scaling",
                            "cross_attention_over_plain"),
    "bench_clip_guidance.py": tuple(f"{g}_{r}" for g in ("taesd", "fast", "exact")
                                    for r in ("over_plain", "over_plain_default_attention", "peak_memory_over_plain")),
    "bench_fanout.py": ("two_servers_speedup",),
    "bench_joint_attention.py": ("blend_over_plain", "attention_weight_mix_over_plain"),
    "bench_reference_mix.py": ("dial_w025_over_core_two_refs", "dial_w075_over_core_two_refs",
                               "dial_prompts_w025_over_core_two_refs", "attention_bias_over_plain"),
}
LIMITED = {
    "bench_dual_style.py": ("epsilon_mix", "unet_batch3", "epsilon_mix_over_unet_scaling", "cross_attention"),
    "bench_clip_guidance.py": ("taesd", "fast", "exact"),
    "bench_joint_attention.py": ("blend", "attention_weight_mix"),
    "bench_reference_mix.py": ("dial_w025", "dial_w075", "dial_prompts_w025", "attention_bias"),
}
"""The ratios that have a FLOP limit: ``{name}_limit`` and ``{name}_quotient`` are in the report."""
NEEDS_CURRENT = {"bench_joint_attention.py", "bench_reference_mix.py"}
SMOKE_TIMEOUT = 600


def _current_comfyui() -> bool:
    from blendspace_tools.comfyui_locator import comfyui_root
    return (comfyui_root() / "comfy" / "ldm" / "flux").is_dir()


def _run(args: list[str], timeout: int = SMOKE_TIMEOUT, tmpdir: str | None = None) -> subprocess.CompletedProcess:
    """Run a benchmark script (with its own system temp folder ``tmpdir`` when given); on a timeout, fail with
    what it had printed."""
    env = dict(os.environ, BLENDSPACE_BENCH_REPEATS="1", BLENDSPACE_BENCH_SMOKE="1")
    if tmpdir is not None:
        env["TMPDIR"] = tmpdir
    try:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=str(REPO),
                              timeout=timeout)
    except subprocess.TimeoutExpired as err:
        def text(b):
            return (b.decode(errors="replace") if isinstance(b, bytes) else b or "")[-3000:]
        pytest.fail(f"{args[0]} ran over {timeout} s; stdout: {text(err.stdout)}\nstderr: {text(err.stderr)}")


@pytest.mark.parametrize("script", sorted(RATIOS))
def test_benchmark_runs_and_reports_ratios(script, tmp_path):
    res = _run([str(REPO / "benchmarks" / script)], tmpdir=str(tmp_path))
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(("vae_approx-", "blendspace"))]
    assert not left, f"{script} left {left} in the system temp folder"
    if script in NEEDS_CURRENT and not _current_comfyui():
        assert res.returncode != 0 and "COMFYUI_PATH" in res.stderr, (res.returncode, res.stderr[-2000:])
        pytest.skip(f"{script} needs a current ComfyUI (it says so on this one)")
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    for key in RATIOS[script]:
        assert isinstance(report[key], float) and math.isfinite(report[key]) and report[key] > 0, (key, report)
    for name in LIMITED.get(script, ()):
        limit, quotient = report[f"{name}_limit"], report[f"{name}_quotient"]
        assert limit >= 1.0 and math.isfinite(limit), (name, report)
        assert quotient > 0 and math.isfinite(quotient), (name, report)
    if script in LIMITED:
        assert "1.15" in report["goal"], report


@pytest.mark.parametrize("script", ["bench_clip_guidance.py", "bench_dual_style.py"])
def test_benchmark_options_are_checked_before_any_model_is_built(script):
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--size", "full", "--models", "sd21"],
                         capture_output=True, text=True, cwd=str(REPO), timeout=120)
    assert res.returncode == 2 and "--models" in res.stderr and "sd15" in res.stderr, res.stderr[-2000:]


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_flop_counter_counts_attention_as_its_two_products(device):
    """SDPA's forward is two products, Q·Kᵀ (B·H·Lq·Lk·D multiply-adds) and P·V (as many): 4·B·H·Lq·Lk·D FLOPs at
    2 per multiply-add. Plain FlopCounterMode counts the CPU kernel as 0."""
    b, h, lq, lk, d = 2, 3, 5, 7, 4
    q = torch.randn(b, h, lq, d, device=device)
    k, v = torch.randn(b, h, lk, d, device=device), torch.randn(b, h, lk, d, device=device)
    assert flop_limits.count_flops(F.scaled_dot_product_attention, q, k, v) == 4 * b * h * lq * lk * d
    if device == "cpu":
        with torch.utils.flop_counter.FlopCounterMode(display=False) as plain:
            F.scaled_dot_product_attention(q, k, v)
        assert plain.get_total_flops() == 0  # why the formula is registered


def test_flop_counter_counts_groupnorm_silu_and_resizes_per_element():
    x = torch.randn(2, 8, 6, 6)
    gn = torch.nn.GroupNorm(4, 8)
    ops = {"groupnorm": lambda t: gn(t), "silu": F.silu,
           "nearest": lambda t: F.interpolate(t, scale_factor=2, mode="nearest"),
           "bilinear": lambda t: F.interpolate(t, size=(9, 9), mode="bilinear")}
    for name, op in ops.items():
        with torch.utils.flop_counter.FlopCounterMode(display=False) as plain:
            op(x)
        small, big = flop_limits.count_flops(op, x), flop_limits.count_flops(op, torch.cat([x, x]))
        assert plain.get_total_flops() == 0 and small > 0 and big == 2 * small, (name, small, big)


def test_backward_to_the_input_of_a_frozen_linear_costs_one_forward():
    """With frozen weights only the input gradient is computed: one product of the forward's size."""
    lin = torch.nn.Linear(16, 32, bias=False)
    p = flop_limits.module_pass(flop_limits.meta_twin(lin), (5, 16))
    assert p.forward == 2 * 5 * 16 * 32 and p.backward == p.forward


def test_guidance_limits_are_ordered():
    unet, decoder, tiny, clip = (flop_limits.Pass(f, 1.1 * f) for f in (1.0, 3.0, 0.2, 0.2))
    g = flop_limits.GuidanceCounts(unet=unet, rows=2, decoder=decoder, tiny=tiny, clip=clip)
    plain = flop_limits.guidance_limits(g)
    ckpt, extra = flop_limits.guidance_limits(g, checkpointing=True), flop_limits.guidance_limits(g, extra_pass=True)
    assert 1.0 < plain["taesd"] < plain["fast"] < plain["exact"]
    assert all(ckpt[k] > plain[k] for k in ("taesd", "fast", "exact")) and extra["exact"] > plain["exact"]
    assert extra["fast"] == plain["fast"]
    one_row = flop_limits.guidance_limits(flop_limits.GuidanceCounts(unet, 1, decoder, tiny, clip))
    assert all(one_row[k] > plain[k] for k in plain)  # cfg 1: the same extra work over half the plain step


def _table_rows(stdout: str) -> dict:
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and "px" in cells[0] and cells[-1].endswith("×"):
            rows[cells[0]] = cells
    return rows


def test_predicted_table_runs_on_the_meta_device_in_seconds():
    res = _run([str(REPO / "benchmarks" / "flop_limits.py"), "--table"], timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = _table_rows(res.stdout)
    expected = ["SD1.5, 512 px", "SDXL, 1024 px"]
    if _current_comfyui():
        expected += ["SD3.5 Medium, 1024 px", "SD3.5 Large, 1024 px", "Flux dev, 1024 px"]
    else:
        assert "not in this ComfyUI" in res.stdout and "COMFYUI_PATH" in res.stdout
    assert sorted(rows) == sorted(expected), res.stdout
    for name, cells in rows.items():
        taesd, fast, exact = (float(c.rstrip("×")) for c in cells[6:9])
        ckpt = [float(c.strip().rstrip("×")) for c in cells[9].split(",")]
        assert 1.0 < taesd < fast < exact and ckpt[0] > taesd and ckpt[1] > fast, (name, cells)
    sd15 = float(rows["SD1.5, 512 px"][2].split("/")[0])
    assert abs(sd15 - 0.80) < 0.04, rows  # issue 26's own meta-device count of the SD1.5 U-Net at 512 px


def test_joint_attention_hand_count_agrees_with_the_meta_count(comfy):
    """bench_joint_attention.py's own FLOP count of a Flux forward against FlopCounterMode on ComfyUI's Flux."""
    if not comfy.is_current:
        pytest.skip("Flux needs a current ComfyUI")
    import bench_joint_attention as joint
    net = flop_limits.meta_diffusion_model("Flux", joint.SMALL)
    counted = flop_limits.diffusion_pass(net, (1, 16, 32, 32), backward=False,
                                         context=(1, joint.TEXT_A, joint.SMALL["context_in_dim"]), y=(1, 768),
                                         guidance=(1,)).forward
    assert abs(joint.flux_flops(joint.SMALL, joint.TEXT_A, 16 * 16) / counted - 1) < 0.02


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
    assert all(f"{r['taesd_over_plain']:.2f}× ({r['taesd_quotient']:.2f})" in table for r in reports), table
