"""Thumbnails of the bundled workflows: a diagram of each graph, drawn with PIL.

``python -m blendspace thumbnails`` writes ``workflows/<name>.jpg`` (what ComfyUI's template browser
shows) from the workflow files alone: no browser, no models. Each node is a box at its workflow
position with its title, coloured by role (loaders, prompts, samplers, Blendspace nodes, outputs);
links are curves coloured by type, as the frontend colours them; groups are framed and extra notes
drawn as notes. The picture is framed to the graph's bounding box with a margin, 640 px wide, with
a caption band naming the workflow (its README description and source, else the start of its
source Note).

Text is drawn at a fixed pixel size whatever the graph's scale, so it stays legible; a box is
made as tall as its title needs, and boxes that would then overlap are pushed down their column
(``layout``), so no two titles are ever drawn over each other. Titles are wrapped at word
boundaries, a word too long for its box cut with "…". The output is a deterministic function of
the workflow file and the Pillow version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH = 640
MAX_HEIGHT = 720
MARGIN = 14
CAPTION = 46
BACKGROUND = (32, 33, 36)
SOURCE_NOTE = "Source and settings"
LINK_COLOURS = {"MODEL": (179, 157, 219), "CLIP": (255, 213, 0), "VAE": (255, 110, 110), "LATENT": (255, 156, 249),
                "CONDITIONING": (255, 169, 49), "IMAGE": (100, 181, 246), "MASK": (129, 199, 132),
                "CLIP_VISION": (168, 218, 220), "CLIP_VISION_OUTPUT": (173, 131, 212)}
ROLE_COLOURS = {"loader": (52, 84, 140), "prompt": (122, 104, 36), "sampler": (44, 110, 62), "output": (150, 82, 30),
                "blendspace": (104, 62, 140), "note": (90, 84, 50), "other": (70, 72, 78)}
BODY = (53, 55, 60)
DISPLAY_NAMES = {"CheckpointLoaderSimple": "Load Checkpoint", "CLIPVisionLoader": "Load CLIP Vision",
                 "LoadImage": "Load Image", "ImageScale": "Upscale Image", "EmptyLatentImage": "Empty Latent Image",
                 "CLIPTextEncode": "CLIP Text Encode", "KSampler": "KSampler", "ImageCompositeMasked": "Image Composite"}
TEXT = (236, 236, 236)
LINE = 13  # pixel height of a title line
GAP = 3  # pixels kept between boxes pushed apart
SHRINKS = 12  # times the graph is shrunk by 0.9 to fit MAX_HEIGHT before the picture grows instead


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def node_title(node: dict) -> str:
    """The title the canvas shows: the node's own title, else its type split into words ('Blendspace' dropped)."""
    if node.get("title"):
        return node["title"]
    if node["type"] in DISPLAY_NAMES:
        return DISPLAY_NAMES[node["type"]]
    name = node["type"].removeprefix("Blendspace")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)


def role(node: dict) -> str:
    t = node["type"]
    if t in ("Note", "MarkdownNote"):
        return "note"
    if "Loader" in t or t == "LoadImage":
        return "loader"
    if t.startswith("Save") or t.startswith("BlendspaceSave") or t == "PreviewImage":
        return "output"
    if t in ("CLIPTextEncode", "SlerpConditioning", "ImageEmbedToPromptMapper", "BlendspaceCocaCaption"):
        return "prompt"
    if any(k in t for k in ("Sampler", "Sweep", "Walk", "Grid", "Variations", "Replay", "GridSearch")):
        return "sampler"
    if t.startswith("Blendspace") or t in ("DualStyleEpsilonMix", "CrossAttnInterpolate", "SlerpLatents"):
        return "blendspace"
    return "other"


def _fit_word(draw: ImageDraw.ImageDraw, word: str, font, width: float) -> str:
    """``word``, cut with '…' when it is wider than ``width``."""
    if draw.textlength(word, font=font) <= width:
        return word
    while len(word) > 1 and draw.textlength(word + "…", font=font) > width:
        word = word[:-1]
    return word + "…"


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: float, lines: int) -> list[str]:
    """Greedy word wrap into at most ``lines`` lines of ``width`` pixels (the last one cut with '…')."""
    out: list[str] = []
    words = text.split()
    while words and len(out) < lines:
        line = _fit_word(draw, words.pop(0), font, width)
        while words and not line.endswith("…") and draw.textlength(f"{line} {words[0]}", font=font) <= width:
            line = f"{line} {words.pop(0)}"
        out.append(line)
    if words and out and not out[-1].endswith("…"):
        last = out[-1]
        while last and draw.textlength(last + "…", font=font) > width:
            last = last[:-1]
        out[-1] = last.rstrip() + "…"
    return out


class _Frame:
    """Canvas coordinates → thumbnail pixels: the graph's bounding box scaled into the picture below the caption."""

    def __init__(self, boxes: list[tuple[float, float, float, float]], shrink: float = 1.0):
        x0 = min(b[0] for b in boxes)
        y0 = min(b[1] for b in boxes)
        x1 = max(b[0] + b[2] for b in boxes)
        y1 = max(b[1] + b[3] for b in boxes)
        inner = WIDTH - 2 * MARGIN
        self.scale = shrink * min(inner / max(1.0, x1 - x0), (MAX_HEIGHT - CAPTION - 2 * MARGIN) / max(1.0, y1 - y0))
        self.dx = MARGIN + (inner - (x1 - x0) * self.scale) / 2 - x0 * self.scale
        self.dy = CAPTION + MARGIN - y0 * self.scale

    def point(self, x: float, y: float) -> tuple[float, float]:
        return (self.dx + x * self.scale, self.dy + y * self.scale)


@dataclass
class Placed:
    """A node as drawn: its box in pixels and its title's lines (drawn from the box's top)."""

    node: dict
    x: float
    y: float
    w: float
    h: float
    lines: list[str]

    @property
    def title_box(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.x + self.w, self.y + 4 + LINE * len(self.lines))


def _overlap(other: Placed, x: float, y: float, w: float, h: float) -> bool:
    """Whether a box at (x, y, w, h) comes within GAP pixels of ``other``."""
    return x < other.x + other.w + GAP and other.x < x + w + GAP and y < other.y + other.h + GAP \
        and other.y < y + h + GAP


def _place(draw: ImageDraw.ImageDraw, frame: _Frame, nodes: list[dict], max_lines: int, font) -> list[Placed]:
    """Every node's box at its scaled position, as tall as its title needs, pushed below the boxes above it that
    it would overlap."""
    placed: list[Placed] = []
    for node in sorted(nodes, key=lambda n: (n["pos"][1], n["pos"][0], n["id"])):
        x, y = frame.point(*node["pos"])
        w = node["size"][0] * frame.scale
        lines = _wrap(draw, node_title(node), font, w - 6, max_lines)
        h = max(node["size"][1] * frame.scale, 4 + LINE * len(lines))
        while (below := [o.y + o.h + GAP for o in placed if _overlap(o, x, y, w, h)]):
            y = max(below)
        placed.append(Placed(node, x, y, w, h, lines))
    return placed


def layout(workflow: dict) -> tuple[_Frame, list[Placed], int]:
    """The frame, the placed nodes (source note left out) and the picture's height: as many title lines as fit
    (3, else 2, else 1) with the graph at full scale, shrunk until the picture is at most MAX_HEIGHT tall (a column
    of more one-line titles than that holds makes a taller picture)."""
    nodes = [n for n in workflow["nodes"] if n.get("title") != SOURCE_NOTE]
    if not nodes:
        raise ValueError("the workflow has no nodes to draw")
    boxes = [(*n["pos"], *n["size"]) for n in nodes] + [tuple(gr["bounding"]) for gr in workflow.get("groups") or []]
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = _font(11)
    shrink = 1.0
    for _ in range(SHRINKS):
        frame = _Frame(boxes, shrink)
        for max_lines in (3, 2, 1):
            placed = _place(draw, frame, nodes, max_lines, font)
            height = int(round(max(p.y + p.h for p in placed) + MARGIN))
            if height <= MAX_HEIGHT:
                return frame, placed, max(height, CAPTION + 2 * MARGIN + LINE)
        shrink *= 0.9
    return frame, placed, height  # more one-line titles in a column than MAX_HEIGHT holds: a taller picture


def _slot_y(placed: Placed, index: int, scale: float) -> float:
    return placed.y + min(placed.h - 2, (34 + 22 * index) * scale)


def _draw_links(draw: ImageDraw.ImageDraw, frame: _Frame, placed: dict[int, Placed], links: list) -> None:
    for _, src, slot, dst, dst_slot, kind in links:
        if src not in placed or dst not in placed:
            continue
        a, b = placed[src], placed[dst]
        p0 = (a.x + a.w, _slot_y(a, slot, frame.scale))
        p3 = (b.x, _slot_y(b, dst_slot, frame.scale))
        bend = max(20.0, abs(p3[0] - p0[0]) * 0.5)
        p1, p2 = (p0[0] + bend, p0[1]), (p3[0] - bend, p3[1])
        curve = []
        for i in range(25):
            t = i / 24
            u = 1 - t
            curve.append((u ** 3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t ** 3 * p3[0],
                          u ** 3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t ** 3 * p3[1]))
        draw.line(curve, fill=LINK_COLOURS.get(kind, (170, 170, 170)), width=2)


def _draw_node(draw: ImageDraw.ImageDraw, placed: Placed, font) -> None:
    x, y, w, h = placed.x, placed.y, placed.w, placed.h
    header = ROLE_COLOURS[role(placed.node)]
    band = 4 + LINE * len(placed.lines)
    draw.rounded_rectangle((x, y, x + w, y + h), radius=4, fill=BODY, outline=header, width=1)
    draw.rounded_rectangle((x, y, x + w, y + band), radius=4, fill=header)
    for i, line in enumerate(placed.lines):
        draw.text((x + 3, y + 2 + LINE * i), line, font=font, fill=TEXT)


def _caption(workflow: dict, caption: str | None) -> str:
    if caption:
        return caption
    for node in workflow["nodes"]:
        if node.get("title") == SOURCE_NOTE:
            return node["widgets_values"][0].split(":")[0]
    return ""


def render(workflow: dict, caption: str | None = None) -> Image.Image:
    """The thumbnail of a UI-format workflow: its graph framed, with ``caption`` (else the source Note's start)."""
    frame, placed, height = layout(workflow)
    img = Image.new("RGB", (WIDTH, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    small, big = _font(11), _font(15)
    for gr in workflow.get("groups") or []:
        gx, gy, gw, gh = gr["bounding"]
        (x0, y0), (x1, y1) = frame.point(gx, gy), frame.point(gx + gw, gy + gh)
        draw.rectangle((x0, y0, x1, y1), outline=(120, 120, 120), width=1)
        draw.text((x0 + 3, y0 + 2), gr.get("title", ""), font=small, fill=TEXT)
    _draw_links(draw, frame, {p.node["id"]: p for p in placed}, workflow.get("links") or [])
    for p in placed:
        _draw_node(draw, p, small)
    draw.rectangle((0, 0, WIDTH, CAPTION - 6), fill=(24, 25, 28))
    for i, line in enumerate(_wrap(draw, _caption(workflow, caption), big, WIDTH - 2 * MARGIN, 2)):
        draw.text((MARGIN, 4 + 18 * i), line, font=big, fill=TEXT)
    return img


def write_thumbnails(folder: Path, captions: dict[str, str] | None = None) -> list[Path]:
    """Render ``<folder>/<name>.jpg`` for every ``<folder>/<name>.json``; returns the files written."""
    written = []
    for path in sorted(Path(folder).glob("*.json")):
        caption = (captions or {}).get(path.stem)
        target = path.with_suffix(".jpg")
        render(json.loads(path.read_text()), caption).save(target, "JPEG", quality=88)
        written.append(target)
    return written


def readme_captions() -> dict[str, str]:
    """Each bundled workflow's caption: its README description and source."""
    from .bundled_workflows import SOURCES, WORKFLOWS
    return {name: f"{what} · {SOURCES[source]}" for name, (_, what, source) in WORKFLOWS.items()}
