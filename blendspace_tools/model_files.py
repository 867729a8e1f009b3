"""Which model files a workflow needs, where each goes, where to get it, and which are missing here.

ComfyUI's own templates answer this on every loader node: ``properties.models``, a list of
``{"name", "url", "directory"}`` (the file name as the loader's widget shows it, a download URL, the
``models/`` folder it goes in); the frontend then lists what is missing and offers the download.
``CATALOG`` holds the same facts for every file a bundled workflow names, with the publisher's
download URL and an approximate size; ``declare_models`` writes them onto a workflow's loaders,
``readme_table`` is the README's table and ``python -m blendspace models WORKFLOW`` (``report``)
lists what a workflow needs and whether this machine's ComfyUI has it, including files no loader
names: the tiny TAESD decoder of the taesd gradient (``models/vae_approx``) and, for
``blendspace evaluate``, OpenAI's ViT-B/32 and torchvision's VGG19.

Sizes are the published files' sizes, rounded. Pure Python; no ComfyUI import (the folders a
ComfyUI searches are read from its ``folder_paths`` module and ``extra_model_paths.yaml`` only).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HF = "https://huggingface.co"


@dataclass(frozen=True)
class ModelFile:
    """One downloadable file: its name in the ComfyUI folder, where it comes from and how big it is."""

    name: str
    directory: str  # the models/ folder, as ComfyUI's current templates name it
    url: str
    size_gb: float
    publisher: str
    family: str = ""  # the model family a checkpoint or diffusion model belongs to (for its TAESD decoder)

    def entry(self) -> dict[str, str]:
        """The ``properties.models`` entry, as ComfyUI's templates write it."""
        return {"name": self.name, "url": self.url, "directory": self.directory}


def _taesd(name: str) -> ModelFile:
    return ModelFile(f"{name}_decoder.pth", "vae_approx",
                     f"https://github.com/madebyollin/taesd/raw/main/{name}_decoder.pth", 0.005,
                     "madebyollin (TAESD)")


CATALOG: dict[str, ModelFile] = {m.name: m for m in (
    ModelFile("sd-v1-4.ckpt", "checkpoints", f"{HF}/CompVis/stable-diffusion-v-1-4-original/resolve/main/sd-v1-4.ckpt",
              4.27, "CompVis", "sd1"),
    ModelFile("v1-5-pruned-emaonly.safetensors", "checkpoints",
              f"{HF}/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/v1-5-pruned-emaonly.safetensors", 4.27,
              "stable-diffusion-v1-5 (RunwayML's SD 1.5, re-hosted)", "sd1"),
    ModelFile("512-base-ema.safetensors", "checkpoints",
              f"{HF}/stabilityai/stable-diffusion-2-base/resolve/main/512-base-ema.safetensors", 5.21, "Stability AI",
              "sd2"),
    ModelFile("v2-1_768-ema-pruned.safetensors", "checkpoints",
              f"{HF}/stabilityai/stable-diffusion-2-1/resolve/main/v2-1_768-ema-pruned.safetensors", 5.21,
              "Stability AI", "sd2"),
    ModelFile("sd_xl_base_1.0.safetensors", "checkpoints",
              f"{HF}/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/sd_xl_base_1.0.safetensors", 6.94,
              "Stability AI", "sdxl"),
    ModelFile("clip-vit-large-patch14.safetensors", "clip_vision",
              f"{HF}/openai/clip-vit-large-patch14/resolve/main/model.safetensors", 1.71, "OpenAI (CLIP ViT-L/14)"),
    ModelFile("clip_vision_g.safetensors", "clip_vision",
              f"{HF}/comfyanonymous/clip_vision_g/resolve/main/clip_vision_g.safetensors", 3.69,
              "comfyanonymous (LAION ViT-bigG/14 vision tower)"),
    ModelFile("sigclip_vision_patch14_384.safetensors", "clip_vision",
              f"{HF}/Comfy-Org/sigclip_vision_384/resolve/main/sigclip_vision_patch14_384.safetensors", 0.86,
              "Comfy-Org (Google SigLIP so400m, repackaged)"),
    ModelFile("CLIP-ViT-B-32-laion2B-s34B-b79K/open_clip_model.safetensors", "open_clip",
              f"{HF}/laion/CLIP-ViT-B-32-laion2B-s34B-b79K/resolve/main/open_clip_model.safetensors", 0.61, "LAION"),
    ModelFile("CoCa-ViT-L-14-laion2B-s13B-b90k/open_clip_pytorch_model.bin", "open_clip",
              f"{HF}/laion/CoCa-ViT-L-14-laion2B-s13B-b90k/resolve/main/open_clip_pytorch_model.bin", 2.55, "LAION"),
    ModelFile("flux1-dev.safetensors", "diffusion_models",
              f"{HF}/black-forest-labs/FLUX.1-dev/resolve/main/flux1-dev.safetensors", 23.8,
              "Black Forest Labs (gated: accept the licence on Hugging Face first)", "flux"),
    ModelFile("ae.safetensors", "vae", f"{HF}/black-forest-labs/FLUX.1-dev/resolve/main/ae.safetensors", 0.34,
              "Black Forest Labs (gated: accept the licence on Hugging Face first)"),
    ModelFile("flux1-redux-dev.safetensors", "style_models",
              f"{HF}/black-forest-labs/FLUX.1-Redux-dev/resolve/main/flux1-redux-dev.safetensors", 0.13,
              "Black Forest Labs (gated: accept the licence on Hugging Face first)"),
    ModelFile("clip_l.safetensors", "text_encoders",
              f"{HF}/comfyanonymous/flux_text_encoders/resolve/main/clip_l.safetensors", 0.25,
              "comfyanonymous (OpenAI CLIP-L text encoder, repackaged)"),
    ModelFile("sd3.5_large_fp8_scaled.safetensors", "checkpoints",
              f"{HF}/Comfy-Org/stable-diffusion-3.5-fp8/resolve/main/sd3.5_large_fp8_scaled.safetensors", 14.5,
              "Stability AI (SD3.5 Large with its text encoders, fp8, repackaged by Comfy-Org)", "sd3"),
    ModelFile("Chroma1-HD.safetensors", "diffusion_models",
              f"{HF}/lodestones/Chroma1-HD/resolve/main/Chroma1-HD.safetensors", 17.8, "lodestones (Chroma1-HD)",
              "flux"),
    ModelFile("flux1-kontext-dev.safetensors", "diffusion_models",
              f"{HF}/black-forest-labs/FLUX.1-Kontext-dev/resolve/main/flux1-kontext-dev.safetensors", 23.8,
              "Black Forest Labs (gated: accept the licence on Hugging Face first)", "flux"),
    ModelFile("qwen_image_edit_2509_fp8_e4m3fn.safetensors", "diffusion_models",
              f"{HF}/Comfy-Org/Qwen-Image-Edit_ComfyUI/resolve/main/split_files/diffusion_models/"
              "qwen_image_edit_2509_fp8_e4m3fn.safetensors", 20.4, "Qwen (Alibaba), repackaged by Comfy-Org"),
    ModelFile("qwen_2.5_vl_7b_fp8_scaled.safetensors", "text_encoders",
              f"{HF}/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/text_encoders/"
              "qwen_2.5_vl_7b_fp8_scaled.safetensors", 9.4, "Qwen (Alibaba), repackaged by Comfy-Org"),
    ModelFile("qwen_image_vae.safetensors", "vae",
              f"{HF}/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/vae/qwen_image_vae.safetensors", 0.25,
              "Qwen (Alibaba), repackaged by Comfy-Org"),
    ModelFile("t5xxl_fp16.safetensors", "text_encoders",
              f"{HF}/comfyanonymous/flux_text_encoders/resolve/main/t5xxl_fp16.safetensors", 9.79,
              "comfyanonymous (Google T5 v1.1 XXL encoder, repackaged)"),
)}

TAESD_DECODERS = {"sd1": _taesd("taesd"), "sd2": _taesd("taesd"), "sdxl": _taesd("taesdxl"),
                  "sd3": _taesd("taesd3"), "flux": _taesd("taef1")}
EVALUATE_FILES = (
    ModelFile("ViT-B-32-openai.safetensors", "open_clip",
              f"{HF}/timm/vit_base_patch32_clip_224.openai/resolve/main/open_clip_model.safetensors", 0.61,
              "OpenAI (CLIP ViT-B/32, open_clip format, hosted by timm)"),
    ModelFile("vgg19-dcbb9e9d.pth", "vgg", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", 0.55,
              "PyTorch (torchvision's ImageNet VGG19)"),
)

# loader class → its widgets that name a model file (current ComfyUI's input names); they are its first widgets,
# in this order, in every ComfyUI version, so a UI node's widgets_values can be read without node definitions
LOADER_WIDGETS: dict[str, tuple[str, ...]] = {
    "CheckpointLoaderSimple": ("ckpt_name",),
    "CLIPVisionLoader": ("clip_name",),
    "VAELoader": ("vae_name",),
    "UNETLoader": ("unet_name",),
    "DualCLIPLoader": ("clip_name1", "clip_name2"),
    "CLIPLoader": ("clip_name",),
    "StyleModelLoader": ("style_model_name",),
    "LoraLoader": ("lora_name",),
    "BlendspaceOpenClipLoader": ("clip_name",),
}
TAESD_GRADIENT = "taesd (tiny decoder)"
# the 2024 ComfyUI's names for folders its successors renamed
LEGACY_FOLDERS = {"text_encoders": "clip", "diffusion_models": "unet"}


class ModelError(ValueError):
    """A loader names a file the catalog does not know (a bundled workflow must name only catalogued files)."""


def first_widgets(node_type: str, node: Mapping) -> dict[str, Any]:
    """A UI loader node's model widgets by name, read from the start of its ``widgets_values``."""
    values = node.get("widgets_values")
    values = values if isinstance(values, list) else []
    return dict(zip(LOADER_WIDGETS.get(node_type, ()), values, strict=False))


def loader_files(node_type: str, widgets: Mapping[str, Any]) -> list[str]:
    """The file names a loader node's widgets name (``widgets``: input name → value)."""
    return [widgets[key] for key in LOADER_WIDGETS.get(node_type, ()) if isinstance(widgets.get(key), str)]


def declare_models(workflow: dict, widget_values) -> None:
    """Write ``properties.models`` onto every loader node of a UI workflow, from the catalog.
    ``widget_values(node)`` gives a node's widgets as input name → value."""
    for node in workflow["nodes"]:
        if node["type"] not in LOADER_WIDGETS:
            continue
        names = loader_files(node["type"], widget_values(node))
        unknown = [name for name in names if name not in CATALOG]
        if unknown:
            raise ModelError(f"node {node['id']} ({node['type']}) names {unknown}, which the model catalog "
                             "(blendspace_tools/model_files.py) lacks: add each file with its publisher's URL")
        node.setdefault("properties", {})["models"] = [CATALOG[name].entry() for name in names]


# --- what a workflow needs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """A file a workflow needs: the file, which nodes need it, and whether it is optional."""

    file: ModelFile
    nodes: tuple[str, ...]
    note: str = ""


def _ui_nodes(workflow: Mapping) -> Iterable[tuple[str, str, dict]]:
    """(id, type, properties) of a UI workflow's nodes."""
    for node in workflow.get("nodes") or []:
        if isinstance(node, dict):
            yield str(node.get("id")), str(node.get("type")), node.get("properties") or {}


def _declared(properties: Mapping) -> list[ModelFile]:
    out = []
    for entry in properties.get("models") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            known = CATALOG.get(entry["name"])
            out.append(known or ModelFile(entry["name"], str(entry.get("directory", "")), str(entry.get("url", "")),
                                          0.0, "(named by the workflow)"))
    return out


def needs_of(workflow: Mapping | None, api_prompt: Mapping | None) -> list[Need]:
    """The model files a workflow needs: its loaders' ``properties.models`` (a UI workflow) or the files its loaders'
    inputs name (an API prompt, or a UI loader without the property, by the catalog), plus the TAESD decoder of
    every node whose ``gradient`` is the tiny decoder (for the checkpoint family the workflow loads)."""
    found: dict[str, tuple[ModelFile, list[str]]] = {}
    families: set[str] = set()
    taesd_nodes: list[str] = []
    for nid, _, files in _loader_entries(workflow, api_prompt):
        for file in files:
            found.setdefault(file.name, (file, []))[1].append(nid)
            if file.family:
                families.add(file.family)
    for nid, inputs in _node_inputs(workflow, api_prompt):
        if inputs.get("gradient") == TAESD_GRADIENT:
            taesd_nodes.append(nid)
    needs = [Need(file, tuple(nodes)) for file, nodes in found.values()]
    if taesd_nodes:
        decoders = {TAESD_DECODERS[f].name: TAESD_DECODERS[f] for f in sorted(families) if f in TAESD_DECODERS}
        note = "" if decoders else "the one for your model's family"
        for decoder in decoders.values() or [TAESD_DECODERS[f] for f in ("sd1", "sdxl", "sd3", "flux")]:
            needs.append(Need(decoder, tuple(taesd_nodes), note or "the taesd gradient's tiny decoder"))
    return needs


def _loader_entries(workflow: Mapping | None, api_prompt: Mapping | None) -> Iterable[tuple[str, str, list]]:
    if workflow is not None:
        for nid, ctype, props in _ui_nodes(workflow):
            if props.get("models"):
                yield nid, ctype, _declared(props)
            elif ctype in LOADER_WIDGETS:
                node = next(n for n in workflow["nodes"] if str(n.get("id")) == nid)
                yield nid, ctype, _catalogued(ctype, first_widgets(ctype, node))
        return
    for nid, node in (api_prompt or {}).items():
        if isinstance(node, dict) and node.get("class_type") in LOADER_WIDGETS:
            yield str(nid), node["class_type"], _catalogued(node["class_type"], node.get("inputs") or {})


def _catalogued(ctype: str, widgets: Mapping[str, Any]) -> list[ModelFile]:
    directory = {"CheckpointLoaderSimple": "checkpoints", "CLIPVisionLoader": "clip_vision", "VAELoader": "vae",
                 "UNETLoader": "diffusion_models", "DualCLIPLoader": "text_encoders", "CLIPLoader": "text_encoders",
                 "StyleModelLoader": "style_models", "LoraLoader": "loras", "BlendspaceOpenClipLoader": "open_clip"}
    return [CATALOG.get(name) or ModelFile(name, directory[ctype], "", 0.0, "(not in the catalog: your own file)")
            for name in loader_files(ctype, widgets)]


def _node_inputs(workflow: Mapping | None, api_prompt: Mapping | None) -> Iterable[tuple[str, Mapping]]:
    """(id, widgets by name) of every node whose widgets can be read without node definitions."""
    if api_prompt is not None:
        for nid, node in api_prompt.items():
            if isinstance(node, dict):
                yield str(nid), node.get("inputs") or {}
        return
    for node in (workflow or {}).get("nodes") or []:
        values = node.get("widgets_values") if isinstance(node, dict) else None
        if isinstance(values, list) and TAESD_GRADIENT in values:
            yield str(node.get("id")), {"gradient": TAESD_GRADIENT}


# --- where a ComfyUI looks -----------------------------------------------------------------------------------------


def model_folders(root: Path) -> dict[str, list[Path]]:
    """The folders a ComfyUI at ``root`` searches per models folder name: its ``models/<name>`` (with the names
    of the 2024 layout too) and what its ``extra_model_paths.yaml`` adds."""
    base = root / "models"
    folders: dict[str, list[Path]] = {}
    for name in {m.directory for m in CATALOG.values()} | {"vae_approx", "loras", "open_clip"}:
        paths = [base / name]
        if name in LEGACY_FOLDERS:
            paths.append(base / LEGACY_FOLDERS[name])
        if name == "diffusion_models":
            paths.append(base / "unet")
        folders[name] = list(dict.fromkeys(paths))
    for name, paths in extra_model_paths(root / "extra_model_paths.yaml").items():
        folders.setdefault(name, []).extend(paths)
    for new, old in LEGACY_FOLDERS.items():
        folders[new] = list(dict.fromkeys(folders.get(new, []) + folders.get(old, [])))
    return folders


def extra_model_paths(path: Path) -> dict[str, list[Path]]:
    """The folders an ``extra_model_paths.yaml`` adds, as ComfyUI reads it: per section an optional ``base_path``
    (relative to the file) and, per folder name, one path or several on separate lines."""
    if not path.is_file():
        return {}
    import yaml
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ModelError(f"{path} is not valid YAML ({err})") from None
    out: dict[str, list[Path]] = {}
    for section in config.values() if isinstance(config, dict) else []:
        if not isinstance(section, dict):
            continue
        base = Path(os.path.expanduser(str(section.get("base_path", ""))))
        base = base if base.is_absolute() else path.parent / base
        for name, value in section.items():
            if name in ("base_path", "is_default") or not isinstance(value, str):
                continue
            for line in value.splitlines():
                if line.strip():
                    out.setdefault(name, []).append(base / os.path.expanduser(line.strip()))
    return out


def locate(file: ModelFile, folders: Mapping[str, list[Path]]) -> Path | None:
    """Where ``file`` is in the searched folders, or None."""
    for folder in folders.get(file.directory, []):
        if (folder / file.name).is_file():
            return folder / file.name
    return None


def size_text(gb: float) -> str:
    return f"{gb:.1f} GB" if gb >= 1 else f"{max(1, round(gb * 1000))} MB"


def report(needs: list[Need], folders: Mapping[str, list[Path]], root: Path) -> tuple[list[str], int]:
    """The ``models`` command's lines (one per file: here or missing, folder, size, URL) and how many are missing."""
    lines, missing, missing_gb = [], 0, 0.0
    for need in needs:
        where = locate(need.file, folders)
        status = f"ok       {where}" if where else f"MISSING  models/{need.file.directory}/{need.file.name}"
        lines.append(f"{status}  ({size_text(need.file.size_gb) if need.file.size_gb else 'size unknown'}; nodes "
                     f"{', '.join(need.nodes)}{'; ' + need.note if need.note else ''})")
        if not where:
            missing += 1
            missing_gb += need.file.size_gb
            lines.append(f"         from {need.file.url or 'its publisher'} ({need.file.publisher})")
    summary = (f"{missing} of {len(needs)} file(s) missing from {root}, about {size_text(missing_gb)} to download"
               if missing else f"all {len(needs)} file(s) are in {root}")
    return [*lines, summary], missing


# --- the README table ----------------------------------------------------------------------------------------------


def readme_table(workflows: Mapping[str, Mapping]) -> str:
    """One row per bundled workflow (name → UI JSON): its files, their folders and their total size."""
    lines = ["| workflow | files | folders | size |", "|---|---|---|---|"]
    for name, workflow in workflows.items():
        needs = needs_of(workflow, None)
        files = ", ".join(f"`{n.file.name}`" for n in needs)
        folders = ", ".join(f"`models/{d}`" for d in dict.fromkeys(n.file.directory for n in needs))
        total = sum(n.file.size_gb for n in needs)
        lines.append(f"| `{name}.json` | {files} | {folders} | {size_text(total)} |")
    return "\n".join(lines)


# --- the command ---------------------------------------------------------------------------------------------------


def models_command(args) -> int:
    """``python -m blendspace models [WORKFLOW ...] [--comfyui DIR] [--evaluate]``: for each workflow (default: every
    bundled one) the files it needs, where each goes, whether this machine's ComfyUI has it, and where to get it."""
    from .comfyui_locator import comfyui_root
    from .workflow import load_workflow_file
    root = comfyui_root(args.comfyui)
    folders = model_folders(root)
    paths = [Path(p) for p in args.workflow] or sorted((Path(__file__).resolve().parent.parent / "workflows")
                                                       .glob("*.json"))
    for path in paths:
        workflow, api_prompt = load_workflow_file(path)
        lines, _ = report(needs_of(workflow, api_prompt), folders, root)
        print(f"{path}:")
        print("\n".join(f"  {line}" for line in lines))
    if args.evaluate:
        lines, _ = report([Need(f, ("evaluate",), "its path goes to evaluate --open-clip or --vgg19")
                                 for f in EVALUATE_FILES], folders | {"vgg": [root / "models" / "vgg"]}, root)
        print("python -m blendspace evaluate:")
        print("\n".join(f"  {line}" for line in lines))
    return 0
