"""``python -m blendspace models``: which model files a workflow needs, which are missing here, where to get them.

A small ComfyUI-shaped folder stands in for a user's ComfyUI (its ``models/`` folders and an
``extra_model_paths.yaml``), so the answers are checked against files that are, or are not, there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blendspace_tools.cli import main
from blendspace_tools.model_files import CATALOG, EVALUATE_FILES, TAESD_DECODERS, extra_model_paths, needs_of

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / "workflows"


def _comfyui(tmp_path: Path) -> Path:
    """ComfyUI's shape: sd-v1-4 in its own checkpoints folder, the ViT-L/14 vision model in a folder that
    extra_model_paths.yaml adds (relative to the file, as ComfyUI reads it)."""
    root = tmp_path / "ComfyUI"
    (root / "comfy").mkdir(parents=True)
    (root / "nodes.py").write_text("")
    (root / "models" / "checkpoints").mkdir(parents=True)
    (root / "models" / "checkpoints" / "sd-v1-4.ckpt").write_bytes(b"x")
    shared = tmp_path / "shared"
    (shared / "vision").mkdir(parents=True)
    (shared / "vision" / "clip-vit-large-patch14.safetensors").write_bytes(b"x")
    (root / "extra_model_paths.yaml").write_text("mine:\n  base_path: ../shared\n  clip_vision: |\n    vision\n    other\n")
    return root


def _lines(capsys) -> list[str]:
    return [line.strip() for line in capsys.readouterr().out.splitlines()]


def test_extra_model_paths_are_read_as_comfyui_reads_them(tmp_path):
    root = _comfyui(tmp_path)
    assert extra_model_paths(root / "extra_model_paths.yaml") == {
        "clip_vision": [root / ".." / "shared" / "vision", root / ".." / "shared" / "other"]}


def test_a_workflow_with_every_file_here(tmp_path, capsys):
    root = _comfyui(tmp_path)
    assert main(["models", str(WORKFLOWS / "flexdiffuse_concepts.json"), "--comfyui", str(root)]) == 0
    lines = _lines(capsys)
    assert lines[1].startswith(f"ok       {root / 'models' / 'checkpoints' / 'sd-v1-4.ckpt'}  (4.3 GB; nodes 1)")
    assert lines[2].startswith(f"ok       {root / '..' / 'shared' / 'vision' / 'clip-vit-large-patch14.safetensors'}")
    assert lines[-1] == f"all 2 file(s) are in {root}"


def test_missing_files_are_listed_with_their_folder_size_and_publishers_url(tmp_path, capsys):
    root = _comfyui(tmp_path)
    assert main(["models", str(WORKFLOWS / "images_mixing_coca.json"), "--comfyui", str(root)]) == 0
    lines = _lines(capsys)
    laion, coca = (CATALOG["CLIP-ViT-B-32-laion2B-s34B-b79K/open_clip_model.safetensors"],
                   CATALOG["CoCa-ViT-L-14-laion2B-s13B-b90k/open_clip_pytorch_model.bin"])
    assert f"MISSING  models/open_clip/{coca.name}  (2.5 GB; nodes 3)" in lines
    assert f"from {coca.url} (LAION)" in lines and f"from {laion.url} (LAION)" in lines
    assert lines[-1] == f"2 of 3 file(s) missing from {root}, about 3.2 GB to download"


def test_files_no_loader_names_the_tiny_decoder_and_evaluates_weights(tmp_path, capsys):
    """The taesd gradient's decoder (for the family of the checkpoint loaded) and the evaluation's weights."""
    root = _comfyui(tmp_path)
    wf = json.loads((WORKFLOWS / "images_mixing_style_to_content.json").read_text())
    sampler = next(n for n in wf["nodes"] if n["type"] == "ClipImageGuidanceSampler")
    sampler["widgets_values"] = ["taesd (tiny decoder)" if v == "exact (through the U-Net, source)" else v
                                 for v in sampler["widgets_values"]]
    path = tmp_path / "taesd.json"
    path.write_text(json.dumps(wf))
    (root / "models" / "vae_approx").mkdir()
    (root / "models" / "vae_approx" / "taesd_decoder.pth").write_bytes(b"x")
    assert main(["models", str(path), "--comfyui", str(root), "--evaluate"]) == 0
    lines = _lines(capsys)
    assert any(line.startswith(f"ok       {root / 'models' / 'vae_approx' / 'taesd_decoder.pth'}") and
               f"nodes {sampler['id']}" in line for line in lines)
    for file in EVALUATE_FILES:
        assert f"from {file.url} ({file.publisher})" in lines
    api = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
           "2": {"class_type": "ClipImageGuidanceSampler", "inputs": {"gradient": "taesd (tiny decoder)"}},
           "3": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "my_own.safetensors"}}}
    names = [need.file.name for need in needs_of(None, api)]
    assert names == ["sd_xl_base_1.0.safetensors", "my_own.safetensors", TAESD_DECODERS["sdxl"].name]


def test_every_bundled_workflow_by_default(tmp_path, capsys):
    root = _comfyui(tmp_path)
    assert main(["models", "--comfyui", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.count(".json:\n") == len(list(WORKFLOWS.glob("*.json")))
    assert "https://huggingface.co/black-forest-labs/FLUX.1-dev/resolve/main/flux1-dev.safetensors" in out


@pytest.mark.parametrize(("content", "message"), [
    ("{", "is not valid JSON"),
    (json.dumps({"nodes": [None]}), "nodes[0] is null"),
])
def test_a_bad_workflow_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["models", str(path), "--comfyui", str(_comfyui(tmp_path))]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("blendspace models: ") and message in err[0]
