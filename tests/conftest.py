"""Shared fixtures: the pure ``blendspace`` package, a real ComfyUI with the pack loaded, tiny models; the test tiers.

Every test has one tier, a pytest marker, so that one tier can run alone (``pytest -m math``):

- ``math``: no ComfyUI at all, seconds (the pure ``blendspace`` math, the tooling's logic);
- ``comfy``: an in-process ComfyUI (any test using the ``comfy`` fixture, or marked so because it starts one
  in a child process);
- ``server``: real ComfyUI servers on 127.0.0.1;
- ``frontend``: ComfyUI's web frontend in headless Chromium;
- ``bench``: the benchmarks' smoke runs.

The tier is given by a test's own marker, else by its file (``FILE_TIERS``), else by the fixtures it uses
(``comfy`` → ``comfy``), else ``math``. A run of the math tier alone fails if anything imported ComfyUI.

Every test body runs under ``torch.inference_mode()``, as ComfyUI's executor runs nodes. At the end of a
run, a summary names every file that had skipped tests and why, and the time each tier took.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path

import comfy_harness  # noqa: E402,F401  (loads the pure `blendspace` package)
import pytest
import torch

TEST_TIERS = {"math": "no ComfyUI, the pure math and the tooling's logic (seconds)",
              "comfy": "an in-process ComfyUI with tiny random models",
              "server": "real ComfyUI servers on 127.0.0.1",
              "frontend": "ComfyUI's web frontend in headless Chromium",
              "bench": "the benchmarks' smoke runs"}
FILE_TIERS = {"test_frontend.py": "frontend", "test_servers.py": "server", "test_benchmarks.py": "bench",
              "test_readme_commands.py": "server"}  # the README's commands start ComfyUI and servers
COMFY_FIXTURES = {"comfy", "tiny_models"}
COMFYUI_TOP_MODULES = ("comfy", "comfy_extras", "comfy_execution", "folder_paths", "latent_preview", "execution")


def tier_of(item) -> str:
    """The tier of a collected test: its own tier marker, else its file's, else its fixtures', else math."""
    own = [m.name for m in item.iter_markers() if m.name in TEST_TIERS]
    if own:
        return own[0]
    name = Path(str(item.fspath)).name
    if name in FILE_TIERS:
        return FILE_TIERS[name]
    return "comfy" if COMFY_FIXTURES & set(getattr(item, "fixturenames", ())) else "math"


def pytest_configure(config):
    for name, what in TEST_TIERS.items():
        config.addinivalue_line("markers", f"{name}: {what}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Give every test its tier marker before ``-m`` selects by it."""
    for item in items:
        tier = tier_of(item)
        if not item.get_closest_marker(tier):
            item.add_marker(getattr(pytest.mark, tier))
        item.user_properties.append(("tier", tier))


def pytest_collection_finish(session):
    session.config._blendspace_tiers = {tier_of(item) for item in session.items}


def pytest_sessionfinish(session, exitstatus):
    """The math tier must not import ComfyUI: fail a math-only run that did."""
    tiers = getattr(session.config, "_blendspace_tiers", set())
    imported = sorted(m for m in COMFYUI_TOP_MODULES if m in sys.modules)
    if tiers == {"math"} and imported and session.testscollected:
        session.config._blendspace_math_leak = imported
        session.exitstatus = 1


# Test files whose description says more than their name; the others are named by their file.
FILE_NAMES = {
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


def _file(report) -> str:
    return Path(report.nodeid.split("::")[0]).name


def skipped_by_file(reports) -> dict[str, Counter]:
    """``{test file: Counter({reason: number of tests})}`` of skip reports."""
    files: dict[str, Counter] = {}
    for report in reports:
        files.setdefault(_file(report), Counter())[_skip_reason(report)] += 1
    return files


def _tier_times(stats) -> dict[str, float]:
    """Seconds spent per tier (setup, call and teardown of its tests), from the test reports."""
    times: dict[str, float] = defaultdict(float)
    for reports in stats.values():
        for r in reports:
            tier = dict(getattr(r, "user_properties", ())).get("tier")
            if tier is not None and hasattr(r, "duration"):
                times[tier] += r.duration
    return times


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say plainly which test files were skipped, wholly or in part, and why, so that a missing browser or an
    incompatible library never passes for a green run; then the time each test tier took."""
    leak = getattr(config, "_blendspace_math_leak", None)
    if leak:
        terminalreporter.section("math tier imported ComfyUI", red=True)
        terminalreporter.line(f"a run of the math tier alone imported {', '.join(leak)}: mark the test that does so "
                              "with its tier (comfy, server, ...)")
    times = _tier_times(terminalreporter.stats)
    if times:
        terminalreporter.section("test tiers")
        for tier in TEST_TIERS:
            if tier in times:
                terminalreporter.line(f"{tier}: {times[tier]:.1f} s ({TEST_TIERS[tier]})")
    _skipped_summary(terminalreporter)


def _skipped_summary(terminalreporter) -> None:
    stats = terminalreporter.stats
    reports = [r for r in stats.get("skipped", []) if getattr(r, "nodeid", None)]
    ran: dict[str, set] = {}
    for key in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        for r in stats.get(key, []):
            if getattr(r, "nodeid", None):
                ran.setdefault(_file(r), set()).add(r.nodeid)
    terminalreporter.section("skipped tests")
    if not reports:
        terminalreporter.line("none: every collected test ran")
        return
    for name, reasons in sorted(skipped_by_file(reports).items()):
        label = f"{name} ({FILE_NAMES[name]})" if name in FILE_NAMES else name
        skipped, total = sum(reasons.values()), len(ran.get(name, ()))
        terminalreporter.line(f"{label}: {'all ' if skipped == total else ''}{skipped} of {total} tests skipped")
        for reason, count in reasons.most_common():
            terminalreporter.line(f"    {count} × {reason}")
