"""The markdown table of ``benchmarks/gpu.sh``: one row per JSON line of ``bench_clip_guidance.py`` (model, image,
U-Net dtype; plain milliseconds per step; taesd, fast and exact over plain in time, each with its quotient
measured / FLOP limit, and in peak memory).

Run: ``python benchmarks/gpu_table.py RESULTS.jsonl > TABLE.md``.
"""

from __future__ import annotations

import json
import sys

PATHS = ("taesd", "fast", "exact")


def _ratio(report: dict, key: str) -> str:
    value = report.get(key)
    return "—" if value is None else f"{value:.2f}×"


def _timed(report: dict, path: str) -> str:
    """``path``'s time ratio with its quotient of the FLOP limit, e.g. ``1.12× (0.97)``."""
    quotient = report.get(f"{path}_quotient")
    return _ratio(report, f"{path}_over_plain") + ("" if quotient is None else f" ({quotient:.2f})")


def row(report: dict) -> str:
    """One table row of a ``clip_guidance_over_plain_sampling`` JSON line."""
    per_step = report.get("seconds_per_step_sdpa", {})
    peaks = report.get("peak_memory_mib", {})
    plain_ms = per_step.get("plain")
    cells = [report.get("model", "?"), f"{report.get('image', '?')} px", report.get("unet_dtype", "?"),
             "—" if plain_ms is None else f"{1000 * plain_ms:.0f}",
             *(_timed(report, p) for p in PATHS),
             *(_ratio(report, f"{p}_peak_memory_over_plain") for p in PATHS),
             "—" if "plain" not in peaks else f"{peaks['plain'] / 1024:.1f}"]
    return "| " + " | ".join(str(c) for c in cells) + " |"


HEADER = ("| model | image | U-Net dtype | plain ms/step | taesd (quotient) | fast (quotient) | exact (quotient) | "
          "taesd memory | fast memory | "
          "exact memory | plain peak GiB |\n|---|---|---|---|---|---|---|---|---|---|---|")


def table(lines: list[str], device: str = "") -> str:
    reports = [json.loads(line) for line in lines if line.strip().startswith("{")]
    reports = [r for r in reports if r.get("benchmark") == "clip_guidance_over_plain_sampling"]
    device = device or (reports[0].get("device", "") if reports else "")
    head = (f"CLIP guidance over plain sampling (SDPA; in brackets measured / FLOP limit, goal <= 1.15), peak memory "
            f"over plain; {device}\n\n")
    return head + HEADER + "\n" + "\n".join(row(r) for r in reports) + "\n"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: gpu_table.py RESULTS.jsonl")
    with open(sys.argv[1]) as f:
        sys.stdout.write(table(f.readlines()))


if __name__ == "__main__":
    main()
