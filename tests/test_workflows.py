"""The UI → API converter, the headless runner, and every bundled workflow: built from its definition, its sources
named by project, its loaders declaring their model files, run on tiny models."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from blendspace_tools.bundled_workflows import (
    CURRENT_COMFYUI_REASON,
    NEEDS_CURRENT_COMFYUI,
    SOURCES,
    WORKFLOWS,
    build,
    buildable,
    nodes_used,
)
from blendspace_tools.model_files import CATALOG, LOADER_WIDGETS, first_widgets
from blendspace_tools.runner import check_model_files, node_definitions, smoke_prompt
from blendspace_tools.workflow import WorkflowError, apply_overrides, ui_to_api, widget_names

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_FILES = sorted((REPO / "workflows").glob("*.json"))

DEFS = {
    "Seeded": {"required": {"model": ("MODEL",), "seed": ("INT", {"default": 0}), "cfg": ("FLOAT", {"default": 1.0}),
                            "pick": (["a", "b"], {"default": "a"}), "flag": ("BOOLEAN", {"default": True})},
               "optional": {"extra": ("FLOAT", {"default": 2.0, "forceInput": True}),
                            "text": ("STRING", {"default": "x"})}},
    "Loader": {"required": {"name": (["m.ckpt"],)}},
    "Image": {"required": {"image": (["p.png"], {"image_upload": True})}},
}


def _ui(nodes, links):
    return {"nodes": nodes, "links": links, "version": 0.4}


def test_widget_layout_follows_the_frontend():
    assert widget_names(DEFS["Seeded"]) == ["seed", "seed.control", "cfg", "pick", "flag", "text"]
    with_option = {"required": {"n": ("INT", {"default": 1, "control_after_generate": True}),
                                "seed": ("INT", {"default": 1, "control_after_generate": False})}}
    assert widget_names(with_option) == ["n", "n.control", "seed"]


def test_converter_maps_widgets_links_reroutes_bypass_and_mute():
    nodes = [
        {"id": 1, "type": "Loader", "mode": 0, "inputs": [], "widgets_values": ["m.ckpt"]},
        {"id": 2, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 1}]},
        {"id": 3, "type": "Seeded", "mode": 4, "inputs": [{"name": "model", "type": "MODEL", "link": 2}],
         "widgets_values": [5, "fixed", 2.0, "a", True, "bypassed"]},
        {"id": 4, "type": "Seeded", "mode": 0,
         "inputs": [{"name": "model", "type": "MODEL", "link": 3},
                    {"name": "cfg", "type": "FLOAT", "widget": {"name": "cfg"}, "link": 4}],
         "widgets_values": [42, "randomize", 7.5, "b", False, "hello"]},
        {"id": 5, "type": "Note", "mode": 0, "inputs": [], "widgets_values": ["a note"]},
        {"id": 6, "type": "Seeded", "mode": 2, "inputs": [], "widgets_values": [1, "fixed", 1.0, "a", True, "m"]},
        {"id": 7, "type": "Image", "mode": 0, "inputs": [], "widgets_values": ["p.png", "image"]},
    ]
    links = [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 3, 0, "MODEL"], [3, 3, 0, 4, 0, "MODEL"], [4, 6, 0, 4, 1, "FLOAT"]]
    defs = {**DEFS}
    api = ui_to_api(_ui(nodes, links), defs)
    assert set(api) == {"1", "4", "7"}
    assert api["4"]["inputs"] == {"model": ["1", 0], "seed": 42, "pick": "b", "flag": False, "text": "hello"}
    assert api["7"]["inputs"] == {"image": "p.png"}
    api = apply_overrides(api, ["4.seed=7", "4.text=true", "4.cfg=2.5"])
    assert api["4"]["inputs"]["seed"] == 7 and api["4"]["inputs"]["text"] is True and api["4"]["inputs"]["cfg"] == 2.5
    with pytest.raises(WorkflowError, match="NODE.INPUT=VALUE"):
        apply_overrides(api, ["seed=1"])
    with pytest.raises(WorkflowError, match=r"unknown node types \['Mystery'\]"):
        ui_to_api(_ui([{"id": 1, "type": "Mystery", "inputs": []}], []), defs)


def test_smoke_swaps_loaders_and_says_so():
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x"}},
              "2": {"class_type": "KSampler", "inputs": {"steps": 50, "seed": 1}},
              "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768}}}
    out, notes = smoke_prompt(prompt)
    assert out["1"]["class_type"] == "BlendspaceTest_TinyCheckpoint" and out["2"]["inputs"]["steps"] == 3
    assert out["3"]["inputs"] == {"width": 64, "height": 64} and len(notes) == 4
    grid, notes = smoke_prompt({"4": {"class_type": "BlendspaceGuidanceGrid", "inputs": {"steps_list": "3, 6, 25"}}})
    assert grid["4"]["inputs"]["steps_list"] == "1, 2" and len(notes) == 1


CODES = re.compile(r"\bseeds? 00\d|\b[EDFBS]\d{1,2}(/[EDFBS]?\d{1,2})?\b|issue #\d")  # "seed 000", "(E5)", "F2/F3"


def test_every_workflow_names_its_source_by_project_and_keeps_seeds_fixed():
    names = {p.stem for p in WORKFLOW_FILES}
    assert set(WORKFLOWS) <= names
    projects = [source.lower() for source in SOURCES.values()]
    for p in WORKFLOW_FILES:
        wf = json.loads(p.read_text())
        (note,) = [n["widgets_values"][0] for n in wf["nodes"] if n.get("title") == "Source and settings"]
        assert any(project in note.lower() for project in projects), f"{p.name} names no source project"
        texts = [note] + [n.get("title", "") for n in wf["nodes"]] + [n["widgets_values"][0] for n in wf["nodes"]
                                                                     if n["type"] == "Note"]
        assert not [t for t in texts if CODES.search(t)], f"{p.name} names a source or experiment by a code"
        for n in wf["nodes"]:
            for i, v in enumerate(n.get("widgets_values") or []):
                if v in ("randomize", "increment", "decrement"):
                    pytest.fail(f"{p.name} node {n['id']} widget {i} is not 'fixed'")
    captions = " ".join(what for _, what, _ in WORKFLOWS.values())
    assert not CODES.search(captions), "the captions (README table, thumbnails) name experiments by code"


FOLDERS = {"CheckpointLoaderSimple": {"checkpoints"}, "CLIPVisionLoader": {"clip_vision"}, "VAELoader": {"vae"},
           "UNETLoader": {"diffusion_models"}, "DualCLIPLoader": {"text_encoders"}, "CLIPLoader": {"text_encoders"},
           "StyleModelLoader": {"style_models"},
           "BlendspaceOpenClipLoader": {"open_clip"}}
PUBLISHERS = ("https://huggingface.co/", "https://github.com/madebyollin/", "https://download.pytorch.org/")


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=[p.stem for p in WORKFLOW_FILES])
def test_every_loader_declares_its_model_files(path):
    """As ComfyUI's own templates do: ``properties.models`` on each loader, one entry per file its widgets name, with
    the name as the widget shows it, the ComfyUI folder it goes in and a download URL from the publisher."""
    wf = json.loads(path.read_text())
    loaders = [n for n in wf["nodes"] if n["type"] in LOADER_WIDGETS]
    assert loaders, f"{path.name} loads no model?"
    for node in loaders:
        entries = node["properties"].get("models")
        where = f"{path.name} node {node['id']} ({node['type']})"
        assert entries, f"{where} declares no model files"
        assert [e["name"] for e in entries] == list(first_widgets(node["type"], node).values()), where
        for entry in entries:
            assert set(entry) == {"name", "url", "directory"}, where
            assert entry["directory"] in FOLDERS[node["type"]], where
            assert entry["url"].startswith(PUBLISHERS) and " " not in entry["url"], where
            assert entry["url"].rsplit("/", 1)[1].rsplit(".", 1)[1] == entry["name"].rsplit(".", 1)[1], \
                f"{where}: the download is not a {entry['name'].rsplit('.', 1)[1]} file"
            assert CATALOG[entry["name"]].entry() == entry


def test_model_entries_have_the_shape_of_comfyuis_own_templates():
    templates = pytest.importorskip("comfyui_workflow_templates", reason="ComfyUI's templates package is not installed")
    folder = Path(templates.__file__).parent / "templates"
    shapes = set()
    for path in sorted(folder.glob("*.json"))[:200]:
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        for node in data.get("nodes", []) if isinstance(data, dict) else []:
            for entry in (node.get("properties") or {}).get("models") or []:
                shapes.add(frozenset(entry) - {"hash", "hash_type"})
    assert shapes == {frozenset({"name", "url", "directory"})}
    same = {"sd_xl_base_1.0.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors",
            "sigclip_vision_patch14_384.safetensors", "clip_vision_g.safetensors"}
    for path in folder.glob("*.json"):
        data = json.loads(path.read_text()) if path.stat().st_size < 2_000_000 else {}
        for node in data.get("nodes", []) if isinstance(data, dict) else []:
            for entry in (node.get("properties") or {}).get("models") or []:
                if entry["name"] in same:  # where the templates load the same file, the same folder and file
                    assert CATALOG[entry["name"]].directory == entry["directory"]
                    assert CATALOG[entry["name"]].url.split("/resolve/")[1] == \
                        entry["url"].split("?")[0].split("/resolve/")[1], entry


def test_readme_lists_every_workflows_model_files():
    from blendspace_tools.model_files import readme_table
    built = {name: json.loads((REPO / "workflows" / f"{name}.json").read_text()) for name in WORKFLOWS}
    table = readme_table(built)
    assert table in (REPO / "README.md").read_text(), "README's model table is stale"
    assert len(table.splitlines()) == len(WORKFLOWS) + 2


def test_committed_workflows_are_what_the_definitions_build(comfy):
    """The 2024 ComfyUI checks the files it builds (what CI runs); a current one checks the Flux workflows."""
    defs, outs = node_definitions(comfy.nodes)
    for name in buildable(comfy.is_current):
        committed = json.loads((REPO / "workflows" / f"{name}.json").read_text())
        how = " --comfyui CURRENT_COMFYUI" if name in NEEDS_CURRENT_COMFYUI else ""
        assert committed == build(name, defs, outs), f"workflows/{name}.json is stale: python -m blendspace " \
                                                     f"build-workflows{how}"


def test_readme_lists_every_bundled_workflow():
    from blendspace_tools.bundled_workflows import readme_table
    built = {name: json.loads((REPO / "workflows" / f"{name}.json").read_text()) for name in WORKFLOWS}
    assert readme_table(built) in (REPO / "README.md").read_text(), "README's workflow table is stale"
    assert {p.stem for p in WORKFLOW_FILES} == set(WORKFLOWS)


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=[p.stem for p in WORKFLOW_FILES])
def test_workflow_converts_validates_and_runs_on_tiny_models(comfy, path):
    if path.stem in NEEDS_CURRENT_COMFYUI and not comfy.is_current:
        pytest.skip(CURRENT_COMFYUI_REASON)
    defs, _ = node_definitions(comfy.nodes)
    workflow = json.loads(path.read_text())
    prompt = ui_to_api(workflow, defs)
    assert {v["class_type"] for v in prompt.values()} == set(nodes_used(workflow))
    if path.stem in NEEDS_CURRENT_COMFYUI:  # ComfyUI's own validation of the full-size prompt too
        _assert_validates(comfy, prompt)
    prompt, _ = smoke_prompt(prompt)
    outputs = comfy.run_graph(prompt)
    files = [os.path.join(comfy.folder_paths.get_output_directory(), i.get("subfolder", ""), i["filename"])
             for ui in outputs.values() if isinstance(ui, dict) for i in ui.get("images", [])]
    savers = [n for n in workflow["nodes"] if n["type"] in ("SaveImage", "BlendspaceSaveAnimatedGIF")]
    assert len(files) >= len(savers) > 0
    assert all(os.path.getsize(f) > 0 for f in files)


def test_missing_model_files_name_the_folders_searched(comfy):
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd-v1-4.ckpt"}},
              "2": {"class_type": "LoadImage", "inputs": {"image": "bear.png"}}}
    with pytest.raises(WorkflowError) as err:
        check_model_files(prompt, comfy.folder_paths)
    text = str(err.value)
    assert "'sd-v1-4.ckpt' not found in the 'checkpoints' folders" in text
    assert str(comfy.folder_paths.get_folder_paths("checkpoints")[0]) in text
    assert "bear.png" in text and "--smoke" in text


def _assert_validates(comfy, prompt: dict) -> None:
    """ComfyUI's prompt validation accepts ``prompt`` once its model and image names exist (empty files)."""
    import asyncio
    import uuid

    from PIL import Image

    from blendspace_tools.runner import MODEL_INPUTS
    for node in prompt.values():
        ctype = node["class_type"]
        for key, folder in MODEL_INPUTS.get(ctype, []):
            base = comfy.work / "models" / folder  # the session's own folder: ComfyUI's stay untouched
            comfy.folder_paths.add_model_folder_path(folder, str(base))
            target = base / node["inputs"][key]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        if ctype == "LoadImage":
            Image.new("RGB", (8, 8)).save(Path(comfy.folder_paths.get_input_directory()) / node["inputs"]["image"])
    comfy.folder_paths.filename_list_cache.clear()
    valid = asyncio.run(comfy.execution.validate_prompt(str(uuid.uuid4()), prompt, None))
    assert valid[0] and not valid[3], (valid[1], valid[3])
