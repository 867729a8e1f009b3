"""Real ComfyUI servers for the tests, started as a user would: ``python -m blendspace serve`` on 127.0.0.1.

Each server gets a free port, its own work folder (pack links, output, temp, user settings, input)
and its own process group; ``stop`` sends SIGTERM to the server and then SIGKILL to its whole group, so nothing
outlives the test. Every server started in this test session is listed in ``STARTED``, so a test
can check that none of their processes is left (``leftover_processes``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
STARTED: list[ServerProcess] = []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """A ``python -m blendspace serve`` process (which becomes ComfyUI) and where it keeps its files."""

    port: int
    proc: subprocess.Popen
    work: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, tail: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.is_file() else ""

    def get(self, route: str, timeout: float = 5) -> dict:
        with urllib.request.urlopen(self.url + route, timeout=timeout) as answer:
            return json.loads(answer.read())

    def wait_ready(self, timeout: float = 240, route: str = "/object_info/SlerpLatents") -> None:
        """Until ComfyUI answers with the pack loaded; fails with the end of its log if it exits or is too slow."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI on port {self.port} exited ({self.proc.returncode}): {self.log()}")
            try:
                if self.get(route, timeout=2):
                    return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"ComfyUI on port {self.port} did not answer in {timeout} s: {self.log()}")
            time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL to the whole process group: the server dies as in a crash."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def stop(self, grace: float = 20) -> None:
        """SIGTERM to the server process only (``serve`` has become ComfyUI), then SIGKILL to its group if
        anything of it is still there."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=30)


def share_cores(servers: int) -> dict[str, str]:
    """Environment giving each of ``servers`` servers its share of this machine's cores (torch's thread pools)."""
    threads = str(max(1, (os.cpu_count() or 2) // servers))
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def start_server(work: Path, *, with_test_pack: bool = False, api_only: bool = False, input_dir: Path | None = None,
                 env: dict | None = None, comfyui: Path | None = None) -> ServerProcess:
    """Start ``python -m blendspace serve`` on a free port in a new session (process group); not yet ready. Its
    outputs go to ``work/output``; ``comfyui``: that ComfyUI instead of the test session's."""
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "blendspace", "serve", "--port", str(port), "--workdir", str(work),
           "--output", str(work / "output")]
    cmd += ["--with-test-pack"] * with_test_pack + ["--api-only"] * api_only
    if comfyui is not None:
        cmd += ["--comfyui", str(comfyui)]
    if input_dir is not None:
        input_dir.mkdir(parents=True, exist_ok=True)
        cmd += ["--input", str(input_dir)]
    log_path = work / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})
    server = ServerProcess(port, proc, work, log_path)
    STARTED.append(server)
    return server


def leftover_processes(servers: list[ServerProcess] | None = None) -> list[str]:
    """Processes still alive that belong to the given servers (default: every one this session started): their
    process ids, their process groups, or a ``main.py`` listening on one of their ports."""
    servers = STARTED if servers is None else servers
    ports = {str(s.port) for s in servers}
    pids = {s.proc.pid for s in servers}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = proc.info["cmdline"] or []
            ours = proc.pid in pids or os.getpgid(proc.pid) in pids
            serving = "main.py" in cmdline and any(cmdline[i + 1] in ports for i, a in enumerate(cmdline[:-1])
                                                   if a == "--port")
            if ours or serving:
                found.append(f"{proc.pid}: {' '.join(cmdline)}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            continue
    return found


def tiny_img2img_workflow(server: ServerProcess, steps: int = 2) -> dict:
    """A small img2img UI workflow on the test pack's tiny checkpoint, built from the server's own node
    definitions: Load Image ``start.png`` → VAE Encode → KSampler (titled ``Sampler``, node 6) → Save Image."""
    from blendspace_tools.workflow import UIGraph
    info = server.get("/object_info", timeout=120)
    g = UIGraph({k: v["input"] for k, v in info.items()}, {k: v["output"] for k, v in info.items()})
    ckpt = g.add("BlendspaceTest_TinyCheckpoint", {"weights_seed": 0})
    positive = g.add("CLIPTextEncode", {"text": "a cat"}, title="Prompt", inputs={"clip": (ckpt, 1)})
    negative = g.add("CLIPTextEncode", {"text": ""}, title="Negative", inputs={"clip": (ckpt, 1)})
    image = g.add("LoadImage", {"image": "start.png"}, title="Start image")
    latent = g.add("VAEEncode", inputs={"pixels": (image, 0), "vae": (ckpt, 2)})
    sampled = g.add("KSampler", {"seed": 1, "steps": steps, "cfg": 5.0, "sampler_name": "euler",
                                 "scheduler": "normal", "denoise": 0.8}, title="Sampler",
                    inputs={"model": (ckpt, 0), "positive": (positive, 0), "negative": (negative, 0),
                            "latent_image": (latent, 0)})
    decoded = g.add("VAEDecode", inputs={"samples": (sampled, 0), "vae": (ckpt, 2)})
    g.add("SaveImage", {"filename_prefix": "tiny"}, inputs={"images": (decoded, 0)})
    return g.to_json()


def write_start_image(folder: Path, size: int = 64) -> Path:
    """The local image the tiny workflow loads (uploaded to the servers by the runs)."""
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (200, 120, 40)).save(folder / "start.png")
    return folder / "start.png"
