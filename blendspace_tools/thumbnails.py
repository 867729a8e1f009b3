"""Thumbnails of the bundled workflows: a diagram of each graph, drawn with PIL.

``python -m blendspace thumbnails`` writes ``workflows/<name>.jpg`` (what ComfyUI's template browser
shows) from the workflow files alone: no browser, no models. Each node is a box at its workflow
position with its title, coloured by role (loaders, prompts, samplers, Blendspace nodes, outputs);
links are curves coloured by type, as the frontend colours them; groups are framed and extra notes
drawn as notes. The picture is framed to the graph's bounding box with a margin, 640 px wide, with
a caption band naming the workflow (its README description, else the start of its source Note).
Text is drawn at a fixed pixel size whatever the graph's scale, so it stays legible. The output is
a deterministic function of the workflow file and the Pillow version.
"""

from __future__ import annotations

import json
import re
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


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: float, lines: int) -> list[str]:
    """Greedy word wrap into at most ``lines`` lines of ``width`` pixels (the last one cut with '…')."""
    out: list[str] = []
    words = text.split()
    while words and len(out) < lines:
        line = words.pop(0)
        while words and draw.textlength(f"{line} {words[0]}", font=font) <= width:
            line = f"{line} {words.pop(0)}"
        while draw.textlength(line, font=font) > width and len(line) > 1:
            line = line[:-1]
        out.append(line)
    if words and out:
        last = out[-1]
        while last and draw.textlength(last + "…", font=font) > width:
            last = last[:-1]
        out[-1] = last + "…"
    return out


class _Frame:
    """Canvas coordinates → thumbnail pixels: the graph's bounding box scaled into the picture below the caption."""

    def __init__(self, boxes: list[tuple[float, float, float, float]]):
        x0 = min(b[0] for b in boxes)
        y0 = min(b[1] for b in boxes)
        x1 = max(b[0] + b[2] for b in boxes)
        y1 = max(b[1] + b[3] for b in boxes)
        inner = WIDTH - 2 * MARGIN
        self.scale = min(inner / max(1.0, x1 - x0), (MAX_HEIGHT - CAPTION - 2 * MARGIN) / max(1.0, y1 - y0))
        self.height = int(round(CAPTION + 2 * MARGIN + (y1 - y0) * self.scale))
        self.dx = MARGIN + (inner - (x1 - x0) * self.scale) / 2 - x0 * self.scale
        self.dy = CAPTION + MARGIN - y0 * self.scale

    def point(self, x: float, y: float) -> tuple[float, float]:
        return (self.dx + x * self.scale, self.dy + y * self.scale)


def _slot_y(node: dict, index: int) -> float:
    return node["pos"][1] + 34 + 22 * index


def _draw_links(draw: ImageDraw.ImageDraw, frame: _Frame, nodes: dict[int, dict], links: list) -> None:
    for _, src, slot, dst, dst_slot, kind in links:
        if src not in nodes or dst not in nodes:
            continue
        a, b = nodes[src], nodes[dst]
        p0 = frame.point(a["pos"][0] + a["size"][0], _slot_y(a, slot))
        p3 = frame.point(b["pos"][0], _slot_y(b, dst_slot))
        bend = max(20.0, abs(p3[0] - p0[0]) * 0.5)
        p1, p2 = (p0[0] + bend, p0[1]), (p3[0] - bend, p3[1])
        curve = []
        for i in range(25):
            t = i / 24
            u = 1 - t
            curve.append((u ** 3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t ** 3 * p3[0],
                          u ** 3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t ** 3 * p3[1]))
        draw.line(curve, fill=LINK_COLOURS.get(kind, (170, 170, 170)), width=2)


def _draw_node(draw: ImageDraw.ImageDraw, frame: _Frame, node: dict, font) -> None:
    x, y = frame.point(*node["pos"])
    w, h = node["size"][0] * frame.scale, node["size"][1] * frame.scale
    header = ROLE_COLOURS[role(node)]
    lines = _wrap(draw, node_title(node), font, w - 6, max(2, min(3, int((h - 4) // 13))))
    band = 4 + 13 * len(lines)
    h = max(h, band)
    draw.rounded_rectangle((x, y, x + w, y + h), radius=4, fill=BODY, outline=header, width=1)
    draw.rounded_rectangle((x, y, x + w, y + band), radius=4, fill=header)
    for i, line in enumerate(lines):
        draw.text((x + 3, y + 2 + 13 * i), line, font=font, fill=TEXT)


def _caption(workflow: dict, caption: str | None) -> str:
    if caption:
        return caption
    for node in workflow["nodes"]:
        if node.get("title") == SOURCE_NOTE:
            return node["widgets_values"][0].split(":")[0]
    return ""


def render(workflow: dict, caption: str | None = None) -> Image.Image:
    """The thumbnail of a UI-format workflow: its graph framed, with ``caption`` (else the source Note's start)."""
    nodes = {n["id"]: n for n in workflow["nodes"] if n.get("title") != SOURCE_NOTE}
    if not nodes:
        raise ValueError("the workflow has no nodes to draw")
    groups = workflow.get("groups") or []
    frame = _Frame([(*n["pos"], *n["size"]) for n in nodes.values()] + [tuple(gr["bounding"]) for gr in groups])
    img = Image.new("RGB", (WIDTH, frame.height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    small, big = _font(11), _font(15)
    for gr in groups:
        gx, gy, gw, gh = gr["bounding"]
        (x0, y0), (x1, y1) = frame.point(gx, gy), frame.point(gx + gw, gy + gh)
        draw.rectangle((x0, y0, x1, y1), outline=(120, 120, 120), width=1)
        draw.text((x0 + 3, y0 + 2), gr.get("title", ""), font=small, fill=TEXT)
    _draw_links(draw, frame, nodes, workflow.get("links") or [])
    for node in nodes.values():
        _draw_node(draw, frame, node, small)
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
    return {name: f"{what} · {SOURCES[seed]}" for name, (_, what, seed) in WORKFLOWS.items()}
