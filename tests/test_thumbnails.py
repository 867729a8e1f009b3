"""The workflow thumbnails: a framed diagram of every bundled workflow, drawn by ``python -m blendspace thumbnails``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blendspace_tools.thumbnails import BACKGROUND, CAPTION, WIDTH, node_title, readme_captions, render

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_FILES = sorted((REPO / "workflows").glob("*.json"))


def _graph_area(img: Image.Image) -> np.ndarray:
    """The picture below the caption band; True where it is not the background."""
    px = np.asarray(img.convert("RGB"), dtype=np.int16)[CAPTION:]
    return np.abs(px - np.array(BACKGROUND)).sum(-1) > 24


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=[p.stem for p in WORKFLOW_FILES])
def test_every_workflow_has_a_framed_legible_thumbnail(path):
    thumb = path.with_suffix(".jpg")
    assert thumb.is_file(), f"{thumb.name} is missing: python -m blendspace thumbnails"
    img = Image.open(thumb)
    assert img.width == WIDTH and 150 <= img.height <= 800, img.size
    drawn = _graph_area(img)
    assert drawn.mean() > 0.2, f"{thumb.name} is mostly empty ({drawn.mean():.0%} drawn)"
    cols, rows = np.flatnonzero(drawn.any(0)), np.flatnonzero(drawn.any(1))
    assert cols[-1] - cols[0] > 0.9 * img.width, "the graph must fill the width (framed to its bounding box)"
    assert rows[-1] - rows[0] > 0.8 * drawn.shape[0], "the graph must fill the height"
    fresh = render(json.loads(path.read_text()), readme_captions().get(path.stem))
    diff = np.abs(np.asarray(fresh, dtype=np.int16) - np.asarray(img.convert("RGB"), dtype=np.int16)).mean()
    assert diff < 4, f"{thumb.name} is stale: python -m blendspace thumbnails"


def test_titles_follow_the_canvas():
    assert node_title({"type": "BlendspaceSlerpClipImageEmbeds"}) == "Slerp Clip Image Embeds"
    assert node_title({"type": "CLIPTextEncode", "title": "Style prompt"}) == "Style prompt"
    assert node_title({"type": "CheckpointLoaderSimple"}) == "Load Checkpoint"


def test_rendering_is_deterministic_and_ignores_the_source_note():
    workflow = json.loads(WORKFLOW_FILES[0].read_text())
    a, b = render(workflow, "x"), render(workflow, "x")
    assert a.tobytes() == b.tobytes()
    without_note = dict(workflow, nodes=[n for n in workflow["nodes"] if n.get("title") != "Source and settings"])
    assert render(without_note, "x").tobytes() == a.tobytes()
