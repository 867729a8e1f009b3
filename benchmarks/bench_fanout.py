"""Speed-up of a sweep fanned out over two local ComfyUI servers against the same sweep on one.

Starts two servers with ``python -m blendspace serve --with-test-pack --api-only`` on 127.0.0.1 (CPU, tiny
random models), each limited to half of this machine's cores so that two servers stand for two
GPUs, warms both, then times ``python -m blendspace run --server …`` on a seed sweep of the tiny
img2img workflow: once on one server, once on both (other seeds, so nothing is served from
ComfyUI's cache). Prints a JSON line; the ratio is the one-server time over the two-server time,
measured in this run. ``BLENDSPACE_BENCH_JOBS`` sets the number of jobs (default 12; 4 when
``BLENDSPACE_BENCH_REPEATS=1``, as the test suite runs it).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from comfy_harness import load_pure_package  # noqa: E402
from comfy_servers import share_cores, start_server, tiny_img2img_workflow, write_start_image  # noqa: E402

load_pure_package()
from blendspace_tools.cli import main  # noqa: E402

STEPS = 8


def _jobs() -> int:
    default = 4 if os.environ.get("BLENDSPACE_BENCH_REPEATS") == "1" else 12
    return int(os.environ.get("BLENDSPACE_BENCH_JOBS", default))


def timed_sweep(workflow: Path, urls: list[str], first_seed: int, jobs: int, output: Path) -> float:
    """Seconds for ``run --server … --sweep Sampler.seed=…`` (in this process, its printing swallowed)."""
    args = ["run", str(workflow), "--input", str(workflow.parent), "--output", str(output), "--quiet",
            "--sweep", f"Sampler.seed={first_seed}..{first_seed + jobs - 1}"]
    for url in urls:
        args += ["--server", url]
    start = time.perf_counter()
    with redirect_stderr(StringIO()) as err, redirect_stdout(StringIO()):
        status = main(args)
    if status != 0:
        raise RuntimeError(f"the sweep failed: {err.getvalue()[-2000:]}")
    return time.perf_counter() - start


def measure(work: Path, jobs: int) -> dict:
    env = share_cores(2)
    servers = [start_server(work / name, with_test_pack=True, api_only=True, input_dir=work / name / "input", env=env)
               for name in "ab"]
    try:
        for server in servers:
            server.wait_ready()
        write_start_image(work / "wf")
        workflow = work / "wf" / "tiny.json"
        workflow.write_text(json.dumps(tiny_img2img_workflow(servers[0], steps=STEPS)))
        urls = [s.url for s in servers]
        for url in urls:  # load the tiny models on each server before timing
            timed_sweep(workflow, [url], 0, 1, work / f"warm-{url[-5:]}")
        one = timed_sweep(workflow, urls[:1], 1000, jobs, work / "one")
        two = timed_sweep(workflow, urls, 2000, jobs, work / "two")
    finally:
        for server in servers:
            server.stop()
    return {"jobs": jobs, "steps": STEPS, "threads_per_server": int(env["OMP_NUM_THREADS"]), "one_server_s": round(one, 2),
            "two_servers_s": round(two, 2), "two_servers_speedup": round(one / two, 3)}


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="blendspace-bench-fanout-") as tmp:
        print(json.dumps(measure(Path(tmp), _jobs())))
