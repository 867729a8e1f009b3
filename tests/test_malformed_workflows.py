"""Malformed workflow files and API prompts: each one refused by the runner with a WorkflowError that names the
node (or entry) and what is wrong with it, never a traceback from deep inside the conversion or ComfyUI.

Every case starts from the same small, valid UI workflow (built from this ComfyUI's node definitions), breaks one
thing, writes the file and goes through the runner's own two steps: reading the file (``make_plan``, before any
ComfyUI starts) and making the jobs with the node definitions (``Plan.jobs``, as ``run`` does once ComfyUI is up).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from comfy_harness import REPO, tiny_ui_workflow

from blendspace_tools.cli import main
from blendspace_tools.comfyui_versions import RELEASE, newer_comfyui_needed
from blendspace_tools.run_command import make_plan
from blendspace_tools.runner import node_definitions, smoke_prompt
from blendspace_tools.workflow import WorkflowError, ui_to_api, widget_names

SUBGRAPH_ID = "4f2c1b9e-7d3a-4c55-9a1e-0b6f2d8c7e10"


def _ui(comfy) -> dict:
    return tiny_ui_workflow(comfy)


def _node(wf: dict, nid: int) -> dict:
    return next(n for n in wf["nodes"] if n["id"] == nid)


def _set(wf: dict, nid: int, key: str, value) -> dict:
    _node(wf, nid)[key] = value
    return wf


def _drop(wf: dict, nid: int, key: str) -> dict:
    del _node(wf, nid)[key]
    return wf


def _subgraph(wf: dict) -> dict:
    _node(wf, 4)["type"] = SUBGRAPH_ID
    wf["definitions"] = {"subgraphs": [{"id": SUBGRAPH_ID, "name": "Latent maker", "nodes": [], "links": []}]}
    return wf


def _api(wf: dict, defs: dict) -> dict:
    return ui_to_api(wf, defs)


UI_CASES = {  # name → (how to break the valid workflow, what the error says)
    "node without type": (lambda wf: _drop(wf, 5, "type"), "node 5 has no node type: 'type' is null"),
    "null node": (lambda wf: {**wf, "nodes": [None, *wf["nodes"]]}, "nodes[0] is null, not a node"),
    "inputs a number": (lambda wf: _set(wf, 6, "inputs", 3), "node 6 (VAEDecode): 'inputs' is a number (3)"),
    "short link": (lambda wf: {**wf, "links": [wf["links"][0][:4], *wf["links"][1:]]},
                   "links[0] is [1, 1, 1, 2]: a link is [id, from node, from slot, to node, to slot, type]"),
    "widgets a string": (lambda wf: _set(wf, 4, "widgets_values", "64, 64, 1"),
                         "node 4 (EmptyLatentImage): 'widgets_values' is a string"),
    "link from an absent node": (lambda wf: {**wf, "links": [[lk[0], 99, *lk[2:]] if lk[3] == 6 and lk[4] == 0 else lk
                                                             for lk in wf["links"]]},
                                 "node 6 (VAEDecode) input 'samples' is linked to node 99, which is not in the "
                                 "workflow"),
    "link missing from links": (lambda wf: {**wf, "links": [lk for lk in wf["links"] if lk[3] != 7]},
                                "node 7 (SaveImage) input 'images' uses link"),
    "too many widget values": (lambda wf: _set(wf, 4, "widgets_values", [64, 64, 1, 5]),
                               "node 4 (EmptyLatentImage) has 4 widget values, but its widgets take 3"),
    "required widget without value or default": (lambda wf: _set(wf, 2, "widgets_values", []),
                                                 "node 2 (CLIPTextEncode) has no value for its widget 'text', and the "
                                                 "input has no default"),
    "widget of the wrong kind": (lambda wf: _set(wf, 5, "widgets_values", [1, "fixed", "many", 5.0, "euler",
                                                                           "normal", 1.0]),
                                 "node 5 (KSampler): widget 'steps' holds a string ('many'), not a number"),
    "a list where a number goes": (lambda wf: _set(wf, 5, "widgets_values", [[1, 2], {"a": 1}, 2, 5.0, "euler",
                                                                            "normal", 1.0]),
                                   "node 5 (KSampler): widget 'seed' holds a list, not a number"),
    "subgraph": (_subgraph, "node 4 is a subgraph 'Latent maker'; the runner takes flat graphs"),
    "group node": (lambda wf: _set(wf, 4, "type", "workflow>Latent maker"), "node 4 is a group node"),
    "duplicate ids": (lambda wf: _set(wf, 3, "id", 2), "two nodes have the id 2"),
    "id not a number": (lambda wf: _set(wf, 3, "id", "three"), "nodes[2] has no whole-number 'id'"),
    "mode a word": (lambda wf: _set(wf, 5, "mode", "on"), "node 5 (KSampler): 'mode' is a string ('on')"),
    "nodes an object": (lambda wf: {**wf, "nodes": {str(n["id"]): n for n in wf["nodes"]}},
                        "'nodes' is an object, not a list of nodes"),
    "links an object": (lambda wf: {**wf, "links": {"1": wf["links"][0]}}, "'links' is an object, not a list of links"),
    "API node inside a UI file": (lambda wf: {**wf, "nodes": [{"id": 1, "class_type": "KSampler", "inputs": {}},
                                                              *wf["nodes"][1:]]},
                                  "node 1 has 'class_type' and 'inputs' as in an API prompt, inside a UI workflow"),
    "UI nodes keyed by id (a UI file read as an API prompt)": (lambda wf: {str(n["id"]): n for n in wf["nodes"]},
                                                                "holds UI nodes keyed by id"),
    "unknown node type": (lambda wf: _set(wf, 4, "type", "NoSuchNode"), "unknown node types ['NoSuchNode']"),
}

API_CASES = {  # name → (how to break the valid workflow's API prompt, what the error says)
    "API inputs a list": (lambda p: {**p, "5": {**p["5"], "inputs": [1, 2]}},
                          "node 5 (KSampler): 'inputs' is a list, not an object"),
    "API link to an absent node": (lambda p: {**p, "6": {**p["6"], "inputs": {**p["6"]["inputs"], "samples": ["99", 0]}}},
                                   "node 6 (VAEDecode) input 'samples' is linked to node 99, which is not in the prompt"),
    "API list that is not a link": (lambda p: {**p, "4": {**p["4"], "inputs": {**p["4"]["inputs"], "width": [64, 64, 1]}}},
                                    "node 4 (EmptyLatentImage) input 'width' is the list [64, 64, 1]: a list is a link"),
    "API node without class_type": (lambda p: {**p, "3": {"inputs": {"text": ""}}}, "node 3 has no 'class_type'"),
    "API null node": (lambda p: {**p, "3": None}, "node 3 is null, not a node"),
    "API title not text": (lambda p: {**p, "2": {**p["2"], "_meta": {"title": 5}}},
                           "node 2 (CLIPTextEncode): its '_meta' title is a number (5), not a text"),
    "API unknown node type": (lambda p: {**p, "4": {**p["4"], "class_type": "NoSuchNode"}},
                              "unknown node types ['NoSuchNode']"),
}


def _args(path: Path, *more: str) -> argparse.Namespace:
    return argparse.Namespace(workflow=str(path), set=list(more), sweep=[], smoke=True, server=[])


def _refused(path: Path, defs: dict) -> str:
    """The runner's two steps on ``path``; the WorkflowError's message (the test fails if either step passes)."""
    with pytest.raises(WorkflowError) as err:
        make_plan(_args(path)).jobs(defs)
    return str(err.value)


@pytest.mark.parametrize("case", UI_CASES, ids=list(UI_CASES))
def test_malformed_ui_workflows_are_refused_naming_the_node(comfy, tmp_path, case):
    breaker, message = UI_CASES[case]
    defs, _ = node_definitions(comfy.nodes)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(breaker(copy.deepcopy(_ui(comfy)))))
    assert message in _refused(path, defs)


@pytest.mark.parametrize("case", API_CASES, ids=list(API_CASES))
def test_malformed_api_prompts_are_refused_naming_the_node(comfy, tmp_path, case):
    breaker, message = API_CASES[case]
    defs, _ = node_definitions(comfy.nodes)
    path = tmp_path / "broken_api.json"
    path.write_text(json.dumps(breaker(_api(_ui(comfy), defs))))
    assert message in _refused(path, defs)


def test_the_valid_workflow_of_the_table_converts(comfy, tmp_path):
    """The starting point of every case is sound, so each failure above comes from the one thing broken."""
    defs, _ = node_definitions(comfy.nodes)
    for name, data in (("ui.json", _ui(comfy)), ("api.json", _api(_ui(comfy), defs))):
        (tmp_path / name).write_text(json.dumps(data))
        (job,) = make_plan(_args(tmp_path / name)).jobs(defs)
        assert job.prompt["5"]["inputs"]["steps"] == 2 and job.prompt["6"]["inputs"]["samples"] == ["5", 0]


def test_short_widget_lists_load_with_the_inputs_defaults(comfy):
    """A node that gained inputs since the file was saved: the missing values are the declared defaults, or a choice
    list's first entry, as the frontend fills them."""
    defs, _ = node_definitions(comfy.nodes)
    wf = _ui(comfy)
    _node(wf, 5)["widgets_values"] = [7, "fixed", 3, 6.0, "euler"]  # scheduler and denoise missing
    inputs = ui_to_api(wf, defs)["5"]["inputs"]
    required = defs["KSampler"]["required"]
    assert inputs["seed"] == 7 and inputs["steps"] == 3 and inputs["sampler_name"] == "euler"
    assert inputs["scheduler"] == required["scheduler"][0][0], "a choice without a default takes the first choice"
    assert inputs["denoise"] == required["denoise"][1]["default"]
    assert widget_names(defs["KSampler"])[-2:] == ["scheduler", "denoise"]


def test_errors_before_comfyui_starts_are_one_line_from_the_command(tmp_path, capsys):
    """Through ``main``: the shape of the file is checked before any ComfyUI is imported."""
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"nodes": [None], "links": []}))
    assert main(["run", str(path), "--smoke"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["blendspace: nodes[0] is null, not a node (an object with an 'id' and a 'type')"]


def test_an_error_found_with_the_node_definitions_is_one_line_from_a_real_run(comfy, tmp_path):
    """A whole ``python -m blendspace run``: ComfyUI starts, the conversion refuses the node, one line, status 1."""
    wf = _set(_ui(comfy), 4, "widgets_values", [64, 64, 1, 5])
    path = tmp_path / "too_long.json"
    path.write_text(json.dumps(wf))
    res = subprocess.run([sys.executable, "-m", "blendspace", "run", str(path), "--smoke", "--output",
                          str(tmp_path / "out"), "--comfyui", str(comfy.root)], cwd=str(REPO), capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("blendspace: ") and "outputs go" not in line]
    assert len(errors) == 1 and "node 4 (EmptyLatentImage) has 4 widget values" in errors[0], res.stderr[-2000:]


def test_smoke_leaves_links_and_texts_where_numbers_are_capped():
    """A link or a text where --smoke caps a number is left for ComfyUI's own check, not a TypeError."""
    prompt = {"1": {"class_type": "BlendspaceCycleDiffusionInvert", "inputs": {"skip_steps": ["2", 0], "steps": "99"}},
              "2": {"class_type": "EmptyLatentImage", "inputs": {"width": ["3", 0], "height": True}}}
    out, notes = smoke_prompt(copy.deepcopy(prompt))
    assert out == prompt and notes == []


def test_a_workflow_needing_a_newer_comfyui_names_the_core_nodes_and_the_release(comfy):
    """On the 2024 ComfyUI the Flux workflows say which core nodes it lacks and which ComfyUI has them, instead of
    sending the user to look for a custom node pack."""
    defs, _ = node_definitions(comfy.nodes)
    old = {k: v for k, v in defs.items() if k not in ("FluxGuidance", "EmptySD3LatentImage")}
    old["StyleModelApply"] = {"required": {k: v for k, v in defs["StyleModelApply"]["required"].items()
                                           if k not in ("strength", "strength_type")}}
    for name in ("flux_dual_style", "flux_redux_images_mixing"):
        wf = json.loads((REPO / "workflows" / f"{name}.json").read_text())
        with pytest.raises(WorkflowError) as err:
            ui_to_api(wf, old)
        text = str(err.value)
        assert "FluxGuidance (August 2024, with Flux)" in text and f"Update ComfyUI ({RELEASE} and newer" in text
        assert "custom node pack" in text and "no custom node pack provides them" in text
    redux = newer_comfyui_needed(["StyleModelApply", "KSampler"], old)
    assert re.search(r"StyleModelApply's input 'strength', 'strength_type' \(November 2024", redux)
    updated = {"required": {"strength": ("FLOAT", {"default": 1.0}), "strength_type": (["multiply", "attn_bias"],)}}
    assert newer_comfyui_needed(["StyleModelApply", "KSampler"], {**old, "StyleModelApply": updated}) is None
    if not comfy.is_current:  # the real 2024 ComfyUI, not a simulation
        wf = json.loads((REPO / "workflows" / "flux_dual_style.json").read_text())
        with pytest.raises(WorkflowError, match=r"core ComfyUI nodes that this ComfyUI is too old to have"):
            ui_to_api(wf, defs)
