"""ComfyUI workflow formats: the UI graph (what the browser saves) and the API prompt (what the executor runs).

ComfyUI has no Python UI → API converter (the frontend's ``graphToPrompt`` does it). This one follows
the frontend's rules, given each node class's ``INPUT_TYPES()``:

- one ``widgets_values`` entry per widget input, in INPUT_TYPES order (required, then optional);
  socket types (MODEL, LATENT, …) and ``forceInput`` inputs have none;
- an INT input with ``control_after_generate`` (or, without the option, one named ``seed`` or
  ``noise_seed``) and a COMBO with ``control_after_generate`` are followed by a hidden control value
  ("fixed", "randomize", …), which is skipped;
- a widget converted to an input and linked keeps its value slot; the link wins;
- frontend-only nodes (Note, MarkdownNote, Reroute, PrimitiveNode) are not sent; links through a
  Reroute are followed; muted nodes (mode 2) are dropped and bypassed nodes (mode 4) pass their first
  input of the same type through.

Also builds UI graphs for the bundled workflows. Pure Python; no ComfyUI import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VIRTUAL_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}


class WorkflowError(ValueError):
    """A workflow that cannot be converted; the message says what to fix."""


def _ordered_inputs(input_types: Mapping[str, Any]) -> list[tuple[str, Any, dict]]:
    out = []
    for section in ("required", "optional"):
        for name, spec in (input_types.get(section) or {}).items():
            kind = spec[0]
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            out.append((name, kind, opts))
    return out


def is_widget(kind, opts: dict) -> bool:
    if opts.get("forceInput"):
        return False
    return isinstance(kind, (list, tuple)) or kind in WIDGET_TYPES or kind == "COMBO"


def has_control(name: str, kind, opts: dict) -> bool:
    if "control_after_generate" in opts:
        return bool(opts["control_after_generate"])
    return kind == "INT" and name in ("seed", "noise_seed")


def widget_names(input_types: Mapping[str, Any]) -> list[str]:
    """The ``widgets_values`` layout of a node: input names, with ``<name>.control`` for control slots."""
    names = []
    for name, kind, opts in _ordered_inputs(input_types):
        if is_widget(kind, opts):
            names.append(name)
            if has_control(name, kind, opts):
                names.append(f"{name}.control")
    return names


def ui_to_api(workflow: Mapping[str, Any], node_defs: Mapping[str, Mapping[str, Any]]) -> dict:
    """Convert a UI-format workflow to an API prompt. ``node_defs``: class_type → INPUT_TYPES()."""
    nodes = {int(n["id"]): n for n in workflow.get("nodes", [])}
    links = {int(link[0]): link for link in workflow.get("links", [])}
    missing = sorted({n["type"] for n in nodes.values() if n["type"] not in node_defs and n["type"] not in VIRTUAL_NODES})
    if missing:
        raise WorkflowError(f"unknown node types {missing}: install the custom node pack that provides them "
                            "(for Blendspace's own nodes, check that the pack is loaded).")

    def source(link_id, seen=None):
        """(node id, slot) feeding a link, through reroutes and bypassed nodes; None for a muted source."""
        seen = seen or set()
        if link_id in seen:
            raise WorkflowError("the workflow's links form a loop through reroutes or bypassed nodes")
        seen.add(link_id)
        link = links.get(int(link_id))
        if link is None:
            return None
        src, slot, ltype = int(link[1]), int(link[2]), link[5]
        node = nodes.get(src)
        if node is None or node.get("mode", 0) == 2:
            return None
        if node["type"] == "Reroute" or node.get("mode", 0) == 4:
            for inp in node.get("inputs", []):
                if inp.get("link") is not None and (node["type"] == "Reroute" or inp.get("type") == ltype):
                    return source(inp["link"], seen)
            return None
        return str(src), slot

    prompt: dict = {}
    for nid, node in sorted(nodes.items()):
        ctype = node["type"]
        if ctype in VIRTUAL_NODES or node.get("mode", 0) in (2, 4):
            continue
        linked = {inp["name"]: inp["link"] for inp in node.get("inputs", []) if inp.get("link") is not None}
        values = list(node.get("widgets_values") or [])
        if isinstance(node.get("widgets_values"), dict):
            raise WorkflowError(f"node {nid} ({ctype}) stores its widgets as a dict; not supported")
        inputs: dict = {}
        pos = 0
        for name, kind, opts in _ordered_inputs(node_defs[ctype]):
            if is_widget(kind, opts):
                value = values[pos] if pos < len(values) else opts.get("default")
                pos += 1
                if has_control(name, kind, opts):
                    if pos < len(values) and values[pos] in CONTROL_VALUES:
                        pos += 1
                if opts.get("image_upload") and pos < len(values) and values[pos] == "image":
                    pos += 1  # the frontend's upload button stores "image" after the file name
                if name not in linked:
                    if value is None and name in (node_defs[ctype].get("required") or {}):
                        raise WorkflowError(f"node {nid} ({ctype}) has no value for its widget '{name}'")
                    if value is not None:
                        inputs[name] = value
            if name in linked:
                src = source(linked[name])
                if src is not None:
                    inputs[name] = list(src)
        prompt[str(nid)] = {"class_type": ctype, "inputs": inputs, "_meta": {"title": node.get("title", ctype)}}
    return prompt


def apply_overrides(prompt: dict, overrides: list[str]) -> dict:
    """``NODE.INPUT=VALUE`` (NODE = id or title); VALUE parsed as int, float, true/false, else text."""
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise WorkflowError(f"--set {item!r}: use NODE.INPUT=VALUE, e.g. 3.seed=42 or 'KSampler.steps=20'")
        target, raw = item.split("=", 1)
        node_key, inp = target.rsplit(".", 1)
        ids = [k for k, v in prompt.items() if k == node_key or v.get("_meta", {}).get("title") == node_key]
        if not ids:
            raise WorkflowError(f"--set {item!r}: no node with id or title {node_key!r}")
        value: Any = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        for k in ids:
            prompt[k]["inputs"][inp] = value
    return prompt


class UIGraph:
    """A small builder of UI-format workflows (for the bundled workflows), sockets laid out from
    INPUT_TYPES / RETURN_TYPES as the frontend does. Node ids count up in the order nodes are added;
    ``to_json`` places every node (a ``pos`` given to ``add`` is only where it starts)."""

    def __init__(self, node_defs: Mapping[str, Mapping[str, Any]], outputs: Mapping[str, list[str]]):
        self.defs = node_defs
        self.outputs = outputs
        self.nodes: list[dict] = []
        self.links: list[list] = []

    def add(self, ctype: str, widgets: Mapping[str, Any] | None = None, title: str | None = None,
            pos: tuple[int, int] = (0, 0), inputs: Mapping[str, tuple[int, int]] | None = None) -> int:
        nid = len(self.nodes) + 1
        widgets = dict(widgets or {})
        node: dict = {"id": nid, "type": ctype, "pos": list(pos), "size": [320, 120], "flags": {}, "order": nid - 1,
                      "mode": 0, "inputs": [], "outputs": [], "properties": {"Node name for S&R": ctype}}
        if title:
            node["title"] = title
        if ctype in ("Note", "MarkdownNote"):
            node["widgets_values"] = [widgets.pop("text")]
            node["size"] = [420, 240]
            self.nodes.append(node)
            return nid
        values = []
        for name, kind, opts in _ordered_inputs(self.defs[ctype]):
            if is_widget(kind, opts):
                default = opts.get("default", kind[0] if isinstance(kind, (list, tuple)) and kind else None)
                values.append(widgets.pop(name, default))
                if has_control(name, kind, opts):
                    values.append("fixed")
                if opts.get("image_upload"):
                    values.append("image")
            else:
                node["inputs"].append({"name": name, "type": kind if isinstance(kind, str) else "COMBO", "link": None})
        if widgets:
            raise WorkflowError(f"{ctype} has no widgets {sorted(widgets)}")
        node["widgets_values"] = values
        for slot, otype in enumerate(self.outputs[ctype]):
            node["outputs"].append({"name": otype, "type": otype, "links": [], "slot_index": slot})
        self.nodes.append(node)
        for name, (src, slot) in (inputs or {}).items():
            self.connect(src, slot, nid, name)
        return nid

    def connect(self, src: int, slot: int, dst: int, name: str) -> None:
        node = self.nodes[dst - 1]
        targets = [i for i, inp in enumerate(node["inputs"]) if inp["name"] == name]
        if not targets:
            widget = {n: (k, o) for n, k, o in _ordered_inputs(self.defs[node["type"]]) if is_widget(k, o)}.get(name)
            if widget is None:
                raise WorkflowError(f"{node['type']} has no input socket or widget {name!r}")
            # a widget converted to an input, as the frontend saves it (its value slot stays in widgets_values)
            kind = widget[0] if isinstance(widget[0], str) else "COMBO"
            node["inputs"].append({"name": name, "type": kind, "widget": {"name": name}, "link": None})
            targets = [len(node["inputs"]) - 1]
        link_id = len(self.links) + 1
        otype = self.nodes[src - 1]["outputs"][slot]["type"]
        self.links.append([link_id, src, slot, dst, targets[0], otype])
        node["inputs"][targets[0]]["link"] = link_id
        self.nodes[src - 1]["outputs"][slot]["links"].append(link_id)

    def layout(self) -> None:
        """Place nodes in columns by graph depth (sources left), stacked without overlap; notes go first."""
        depth: dict[int, int] = {}
        incoming: dict[int, list[int]] = {n["id"]: [] for n in self.nodes}
        for _, src, _, dst, _, _ in self.links:
            incoming[dst].append(src)

        def level(nid: int) -> int:
            if nid not in depth:
                depth[nid] = 1 + max((level(s) for s in incoming[nid]), default=-1)
            return depth[nid]

        columns: dict[int, float] = {}
        notes_y = 0.0
        for node in self.nodes:
            if node["type"] in ("Note", "MarkdownNote"):
                node["pos"] = [-480, notes_y]
                notes_y += node["size"][1] + 40
                continue
            sockets = max(len(node["inputs"]), len(node["outputs"]))
            widgets = len(node.get("widgets_values") or [])
            text = sum(1 for v in node.get("widgets_values") or [] if isinstance(v, str) and len(v) > 40)
            height = 40 + 22 * sockets + 26 * widgets + 90 * text
            node["size"] = [340, height]
            col = level(node["id"]) + 1
            y = columns.get(col, 0.0)
            node["pos"] = [col * 400, y]
            columns[col] = y + height + 50

    def to_json(self) -> dict:
        self.layout()
        return {"last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
                "links": self.links, "groups": [], "config": {},
                "extra": {"ds": {"scale": 0.65, "offset": [520, 80]}}, "version": 0.4}
