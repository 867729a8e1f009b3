"""The pack as ComfyUI and its users see it: registration, metadata, import side effects, packaging."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parent.parent
MISSION_NODE_IDS = {"SlerpLatents", "SlerpConditioning"}
SOCKET_TYPES = {"LATENT", "CONDITIONING", "MODEL", "CLIP", "VAE", "IMAGE", "MASK", "CLIP_VISION", "CLIP_VISION_OUTPUT",
                "SAMPLER", "SIGMAS", "GUIDER", "NOISE"}


def _blendspace_classes(comfy):
    return dict(comfy.pack.NODE_CLASS_MAPPINGS)


def test_mission_node_ids_are_registered_by_comfyui(comfy):
    ours = _blendspace_classes(comfy)
    assert MISSION_NODE_IDS <= set(ours)
    for node_id, cls in ours.items():
        assert comfy.nodes.NODE_CLASS_MAPPINGS[node_id] is cls
        assert comfy.nodes.NODE_DISPLAY_NAME_MAPPINGS[node_id]


def test_every_node_has_category_description_and_tooltips(comfy):
    for node_id, cls in _blendspace_classes(comfy).items():
        assert cls.CATEGORY.startswith("Blendspace/"), node_id
        assert isinstance(cls.DESCRIPTION, str) and len(cls.DESCRIPTION) > 40, node_id
        assert callable(getattr(cls(), cls.FUNCTION)), node_id
        assert isinstance(cls.RETURN_TYPES, tuple)
        assert len(getattr(cls, "OUTPUT_TOOLTIPS", ())) == len(cls.RETURN_TYPES), node_id
        inputs = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, spec in inputs.get(section, {}).items():
                assert len(spec) == 2 and isinstance(spec[1], dict), f"{node_id}.{name} has no options dict"
                tooltip = spec[1].get("tooltip", "")
                assert isinstance(tooltip, str) and len(tooltip) > 15, f"{node_id}.{name} has no tooltip"
                kind = spec[0]
                if isinstance(kind, list):  # file lists (clip_name) have no default, as core loaders
                    assert name.endswith("_name") or spec[1].get("default") in kind, f"{node_id}.{name} default"
                elif kind in ("INT", "FLOAT"):
                    assert spec[1]["min"] <= spec[1]["default"] <= spec[1]["max"], f"{node_id}.{name}"
                else:
                    assert kind in SOCKET_TYPES or kind in ("STRING", "BOOLEAN") or kind.isupper(), f"{node_id}.{name}"


@pytest.mark.comfy  # starts ComfyUI in a child process
def test_importing_the_pack_touches_no_network_weights_or_comfyui_globals():
    env = dict(os.environ)
    res = subprocess.run([sys.executable, str(REPO / "tests" / "import_probe.py")], capture_output=True, text=True,
                         env=env, cwd=str(REPO / "tests"), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["loaded"] is True, res.stderr[-3000:]
    assert report["blocked"] == []
    assert report["changed"] == [] and report["added"] == []
    assert report["replaced_core_nodes"] == []
    assert MISSION_NODE_IDS <= set(report["new_nodes"])


def test_pyproject_has_registry_and_project_metadata():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    project = data["project"]
    assert project["name"] == "blendspace" and "comfyui" not in project["name"].lower()
    major, minor, patch = (int(x) for x in project["version"].split("."))
    assert (major, minor, patch) >= (0, 1, 0)
    deps = {d.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower() for d in project["dependencies"]}
    assert {"open_clip_torch", "transformers", "numpy", "pillow", "safetensors"} <= deps
    assert "torch" not in deps, "torch comes with ComfyUI and must not be pinned by the pack"
    assert "test" in project["optional-dependencies"]
    assert project["urls"]["Repository"].startswith("https://")
    comfy_tool = data["tool"]["comfy"]
    assert {"PublisherId", "DisplayName", "Icon"} <= set(comfy_tool)


def test_requirements_txt_matches_pyproject_dependencies():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    reqs = [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert sorted(reqs) == sorted(data["project"]["dependencies"])


@pytest.mark.parametrize("path", ["__init__.py", "nodes", "workflows", "tests", "pyproject.toml", "README.md",
                                  "requirements.txt", "LICENSE", ".ci/run", "benchmarks"])
def test_design_card_layout(path):
    assert (REPO / path).exists()


COMFY_IMPORT = re.compile(r"^\s*(import|from)\s+(comfy|comfy_extras|comfy_execution|folder_paths|nodes|execution|"
                          r"latent_preview|node_helpers)(\.|\s|$)", re.MULTILINE)


COMMAND_LINE_MODULES = {"__main__.py", "runner.py"}  # they import ComfyUI at run time, inside functions


def test_pure_modules_never_import_comfyui():
    for py in (REPO / "blendspace").rglob("*.py"):
        if py.name in COMMAND_LINE_MODULES:
            continue
        found = COMFY_IMPORT.search(py.read_text())
        assert found is None, f"{py.relative_to(REPO)} imports ComfyUI ({found.group(0).strip() if found else ''})"
    assert COMFY_IMPORT.search("import comfy.samplers\n") and not COMFY_IMPORT.search("from .comfyui_locator import x\n")
