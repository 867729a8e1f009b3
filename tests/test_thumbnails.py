"""The workflow thumbnails: a framed diagram of every bundled workflow, drawn by ``python -m blendspace thumbnails``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blendspace_tools.thumbnails import (
    BACKGROUND,
    CAPTION,
    MAX_HEIGHT,
    WIDTH,
    _font,
    _wrap,
    layout,
    node_title,
    readme_captions,
    render,
)

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


def _overlapping(boxes: list[tuple[float, float, float, float]]) -> list[tuple[int, int]]:
    return [(i, j) for i, a in enumerate(boxes) for j, b in enumerate(boxes)
            if i < j and a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=[p.stem for p in WORKFLOW_FILES])
def test_no_two_node_titles_are_drawn_over_each_other(path):
    """Wide graphs used to squeeze boxes until their titles ran into the boxes below (three loader titles on top of one
    another in flux_redux_images_mixing); every title now has its own room, inside the picture."""
    _, placed, height = layout(json.loads(path.read_text()))
    titles = [p.title_box for p in placed]
    assert not _overlapping(titles), [(placed[i].lines, placed[j].lines) for i, j in _overlapping(titles)]
    assert not _overlapping([(p.x, p.y, p.x + p.w, p.y + p.h) for p in placed])
    assert all(0 <= b[0] and b[2] <= WIDTH and CAPTION <= b[1] and b[3] <= height <= MAX_HEIGHT for b in titles)


@pytest.mark.parametrize(("loaders", "fits"), [(24, True), (60, False)])
def test_a_tall_column_of_small_nodes_is_pushed_apart_and_shrunk_to_fit(loaders, fits):
    """A column of one-widget loaders beside a long chain: at full scale their titles would overlap; the layout
    pushes them apart and, the column then being too tall, shrinks the graph until it fits; a column of more titles
    than the picture's height holds makes a taller picture, never overlapping titles."""
    nodes = [{"id": i, "type": "VAELoader", "title": f"Loader number {i} with a long title", "pos": [0, i * 60],
              "size": [340, 58]} for i in range(1, loaders + 1)]
    nodes += [{"id": 100 + k, "type": "KSampler", "pos": [400 * (k + 1), 0], "size": [340, 300]} for k in range(12)]
    _, placed, height = layout({"nodes": nodes, "links": []})
    titles = [p.title_box for p in placed]
    assert not _overlapping(titles) and (height <= MAX_HEIGHT) == fits
    assert all(p.lines and p.title_box[3] <= height for p in placed), "every node keeps a title line, in the picture"


def test_long_words_are_cut_with_an_ellipsis_not_split_silently():
    from PIL import Image, ImageDraw
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = _wrap(draw, "ConditioningZeroOut node", _font(11), 50, 2)
    assert lines[0].endswith("…") and len(lines) <= 2 and all(draw.textlength(x, font=_font(11)) <= 50 for x in lines)
