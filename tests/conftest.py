"""Shared fixtures: the pure ``blendspace`` package, a real ComfyUI with the pack loaded, tiny models.

Every test body runs under ``torch.inference_mode()``, as ComfyUI's executor runs nodes. At the end of a
run, a summary names every tier (test file) that had skipped tests and why, above pytest's closing line.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import comfy_harness  # noqa: E402,F401  (loads the pure `blendspace` package)
import pytest
import torch

# Tiers whose name says more than their file's; the others are named by their file.
TIERS = {
    "test_frontend.py": "frontend: bundled workflows and help pages in headless Chromium",
    "test_open_clip.py": "open_clip models, CoCa captions and their parity with open_clip",
    "test_workflows.py": "bundled workflows",
}


@pytest.fixture(autouse=True)
def _inference_mode():
    with torch.inference_mode():
        yield


@pytest.fixture(scope="session")
def comfy():
    """ComfyUI booted once per session, with Blendspace and the test pack loaded by its loader."""
    with torch.inference_mode():
        return comfy_harness.boot()


@pytest.fixture(scope="session")
def tiny_models(comfy):
    """(model, clip, vae) built once, as the executor would (inside inference mode)."""
    with torch.inference_mode():
        return comfy.tiny.tiny_unet(0), comfy.tiny.tiny_clip(1), comfy.tiny.tiny_vae(2)


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _tier(report) -> str:
    return Path(report.nodeid.split("::")[0]).name


def skipped_tiers(reports) -> dict[str, Counter]:
    """``{tier: Counter({reason: number of tests})}`` of skip reports, a tier being a test file."""
    tiers: dict[str, Counter] = {}
    for report in reports:
        tiers.setdefault(_tier(report), Counter())[_skip_reason(report)] += 1
    return tiers


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say plainly which tiers were skipped, wholly or in part, and why, so that a missing browser or an
    incompatible library never passes for a green run."""
    stats = terminalreporter.stats
    reports = [r for r in stats.get("skipped", []) if getattr(r, "nodeid", None)]
    ran: dict[str, set] = {}
    for key in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        for r in stats.get(key, []):
            if getattr(r, "nodeid", None):
                ran.setdefault(_tier(r), set()).add(r.nodeid)
    terminalreporter.section("skipped tiers")
    if not reports:
        terminalreporter.line("none: every collected test ran")
        return
    for name, reasons in sorted(skipped_tiers(reports).items()):
        label = f"{name} ({TIERS[name]})" if name in TIERS else name
        skipped, total = sum(reasons.values()), len(ran.get(name, ()))
        terminalreporter.line(f"{label}: {'all ' if skipped == total else ''}{skipped} of {total} tests skipped")
        for reason, count in reasons.most_common():
            terminalreporter.line(f"    {count} × {reason}")
