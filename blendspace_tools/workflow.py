"""ComfyUI workflow formats: the UI graph (what the browser saves) and the API prompt (what the executor runs).

ComfyUI has no Python UI → API converter (the frontend's ``graphToPrompt`` does it). This one follows
the frontend's rules, given each node class's ``INPUT_TYPES()``:

- one ``widgets_values`` entry per widget input, in INPUT_TYPES order (required, then optional);
  socket types (MODEL, LATENT, …) and ``forceInput`` inputs have none;
- an INT input with ``control_after_generate`` (or, without the option, one named ``seed`` or
  ``noise_seed``) and a COMBO with ``control_after_generate`` are followed by a hidden control value
  ("fixed", "randomize", …), which is skipped;
- a widget converted to an input and linked keeps its value slot; the link wins (a link from a
  frontend-only Primitive node carries that very value, so the slot's value is used);
- frontend-only nodes (Note, MarkdownNote, Reroute, PrimitiveNode) are not sent; links through a
  Reroute are followed; muted nodes (mode 2) are dropped and bypassed nodes (mode 4) pass their first
  input of the same type through.

A widget list shorter than the node's widgets (the node gained inputs since the file was saved) is
filled with the inputs' defaults (a choice list's first entry when it declares none), as the
frontend fills it; a longer one, a value of the wrong kind, or a required widget with no value and
no default is refused naming the node and the widget. The file's shape is checked first
(``workflow_checks``), and a workflow whose core nodes need a newer ComfyUI says so
(``comfyui_versions``). Also builds UI graphs for the bundled workflows. Pure Python; no ComfyUI import.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .comfyui_versions import newer_comfyui_needed
from .workflow_checks import (
    VIRTUAL_NODES,
    WorkflowError,
    check_api_prompt,
    check_ui_workflow,
    describe,
    looks_like_ui_nodes,
)

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
UPLOAD_VALUES = {"image", "audio", "video", "upload", None}
OWN_VALUE = object()  # a widget takes its own value: not linked, or linked from a frontend-only Primitive node


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


def widget_default(kind, opts: dict) -> Any:
    """What the frontend puts in a widget the file has no value for: the declared default, else a choice list's
    first entry; None when there is neither."""
    if opts.get("default") is not None:
        return opts["default"]
    choices = kind if isinstance(kind, (list, tuple)) else opts.get("options") if kind == "COMBO" else None
    return choices[0] if isinstance(choices, (list, tuple)) and choices else None


def widget_kind_problem(kind, value: Any) -> str | None:
    """Why a widget value cannot be of this kind (a string in a number widget, a list in a choice…), or None."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind in ("INT", "FLOAT") and not number:
        return f"holds {describe(value)}, not a number"
    if kind == "BOOLEAN" and not isinstance(value, bool):
        return f"holds {describe(value)}, not true or false"
    if kind == "STRING" and not isinstance(value, str):
        return f"holds {describe(value)}, not a text"
    if (kind == "COMBO" or isinstance(kind, (list, tuple))) and (isinstance(value, (list, dict)) or value is None):
        return f"holds {describe(value)}, not one of its choices"
    return None


def _hidden_at(values: list, pos: int) -> str | None:
    """The value at ``pos`` when it can be one the frontend stores after a widget (a text, or null), else ''."""
    value = values[pos] if pos < len(values) else ""
    return value if value is None or isinstance(value, str) else ""


def _take_widget(values: list, pos: int, name: str, kind, opts: dict) -> tuple[Any, int]:
    """The value of widget ``name`` at ``pos`` (its default past the end) and the position after it and after the
    hidden values the frontend stores with it."""
    value = values[pos] if pos < len(values) else widget_default(kind, opts)
    pos += 1
    if has_control(name, kind, opts) and _hidden_at(values, pos) in CONTROL_VALUES:
        pos += 1
    uploads = any(key.endswith("_upload") and opts[key] for key in opts)
    if uploads and pos < len(values) and _hidden_at(values, pos) in UPLOAD_VALUES:
        pos += 1  # the frontend's upload button stores "image" (or "audio", …) after the file name
    return value, pos


def _node_inputs(where: str, node: dict, input_types: Mapping[str, Any], source) -> dict:
    """The API ``inputs`` of one UI node: widget values in INPUT_TYPES order and links (``source(link)`` gives the
    ``(node id, slot)`` feeding a link, None for a muted source, OWN_VALUE for a Primitive node, whose value the widget holds)."""
    values = list(node.get("widgets_values") or [])
    linked = {inp["name"]: inp["link"] for inp in node.get("inputs") or [] if inp.get("link") is not None}
    required = set(input_types.get("required") or {})
    inputs: dict = {}
    pos = 0
    for name, kind, opts in _ordered_inputs(input_types):
        src = source(linked[name]) if name in linked else OWN_VALUE
        if src is not OWN_VALUE:
            if is_widget(kind, opts):
                pos = _take_widget(values, pos, name, kind, opts)[1]
            if src is not None:
                inputs[name] = list(src)
            continue
        if not is_widget(kind, opts):
            continue
        value, pos = _take_widget(values, pos, name, kind, opts)
        if value is None:
            if name in required:
                raise WorkflowError(f"{where} has no value for its widget {name!r}, and the input has no default: "
                                    "set it in ComfyUI and save the workflow again, or give --set")
            continue
        if (problem := widget_kind_problem(kind, value)) is not None:
            raise WorkflowError(f"{where}: widget {name!r} {problem} (is the workflow from another version of the "
                                "node? its widget values may have shifted)")
        inputs[name] = value
    if pos < len(values):
        raise WorkflowError(f"{where} has {len(values)} widget values, but its widgets take {pos} "
                            f"({', '.join(widget_names(input_types)) or 'none'}): the workflow is from another "
                            "version of the node; open it in ComfyUI, check the node and save it again")
    return inputs


def _link_source(nodes: dict[int, dict], links: dict[int, tuple]):
    """``source(link id)``: the ``(node id, slot)`` feeding a link, through reroutes and bypassed nodes; None for a
    muted source, OWN_VALUE for a Primitive node."""
    def source(link_id: int, seen: frozenset = frozenset()):
        if link_id in seen:
            raise WorkflowError("the workflow's links form a loop through reroutes or bypassed nodes")
        link = links.get(link_id)
        if link is None or link[1] not in nodes:
            return None
        _, src, slot, _, _, ltype = link
        node = nodes[src]
        if node.get("mode", 0) == 2:
            return None
        if node["type"] == "PrimitiveNode":
            return OWN_VALUE
        if node["type"] == "Reroute" or node.get("mode", 0) == 4:
            for inp in node.get("inputs") or []:
                if inp.get("link") is not None and (node["type"] == "Reroute" or inp.get("type") == ltype):
                    return source(inp["link"], seen | {link_id})
            return None
        return str(src), slot
    return source


def check_node_types(node_types, node_defs: Mapping[str, Mapping[str, Any]]) -> None:
    """Every node type known here (a core node of a newer ComfyUI is named as such, with the release to update to)."""
    types = set(node_types)
    if (why := newer_comfyui_needed(types, node_defs)) is not None:
        raise WorkflowError(why)
    missing = sorted(t for t in types if t not in node_defs and t not in VIRTUAL_NODES)
    if missing:
        raise WorkflowError(f"unknown node types {missing}: install the custom node pack that provides them "
                            "(for Blendspace's own nodes, check that the pack is loaded).")


def ui_to_api(workflow: Mapping[str, Any], node_defs: Mapping[str, Mapping[str, Any]]) -> dict:
    """Convert a UI-format workflow to an API prompt. ``node_defs``: class_type → INPUT_TYPES()."""
    nodes, links = check_ui_workflow(workflow)
    check_node_types((n["type"] for n in nodes.values()), node_defs)
    source = _link_source(nodes, links)
    prompt: dict = {}
    for nid, node in sorted(nodes.items()):
        ctype = node["type"]
        if ctype in VIRTUAL_NODES or node.get("mode", 0) in (2, 4):
            continue
        title = node.get("title") if isinstance(node.get("title"), str) else ctype
        inputs = _node_inputs(f"node {nid} ({ctype})", node, node_defs[ctype], source)
        prompt[str(nid)] = {"class_type": ctype, "inputs": inputs, "_meta": {"title": title}}
    return prompt


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise WorkflowError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise WorkflowError(f"{path} is a folder; give a workflow file (.json)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise WorkflowError(f"{path}: cannot read it ({err})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise WorkflowError(f"{path} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno}); "
                            "is the file complete?") from None


def load_workflow_file(path: str | Path) -> tuple[dict | None, dict | None]:
    """Read a workflow file: ``(ui_workflow, None)`` for the UI format, ``(None, api_prompt)`` for an API prompt (also
    inside a ``/prompt`` request body, ``{"prompt": {...}}``). Its shape is checked (``workflow_checks``)."""
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "nodes" not in data:
        data = data["prompt"]  # a /prompt request body, as other tools save it
    if isinstance(data, dict) and "nodes" in data:
        check_ui_workflow(data)
        return data, None
    if isinstance(data, dict) and looks_like_ui_nodes(data):
        raise WorkflowError(f"{path} holds UI nodes keyed by id (with 'type' and 'widgets_values') but no 'nodes' "
                            "list: it is neither a whole UI workflow nor an API prompt (whose nodes have "
                            "'class_type' and 'inputs'); export it again from ComfyUI")
    if isinstance(data, dict) and data and any(isinstance(v, dict) and "class_type" in v for v in data.values()):
        check_api_prompt(data)
        return None, data
    raise WorkflowError(f"{path} is neither a UI workflow (no 'nodes' list) nor an API prompt (nodes with "
                        f"'class_type'): it holds {describe(data)}")


def base_prompt(workflow: dict | None, api_prompt: dict | None, node_defs: Mapping[str, Mapping[str, Any]]) -> dict:
    """The API prompt of a loaded workflow file (a copy), every node type known to ``node_defs``."""
    if workflow is not None:
        return ui_to_api(workflow, node_defs)
    prompt = copy.deepcopy(api_prompt or {})
    check_api_prompt(prompt)
    check_node_types((node["class_type"] for node in prompt.values()), node_defs)
    for node in prompt.values():
        node.setdefault("inputs", {})
    return prompt


def parse_value(raw: str) -> Any:
    """A command-line value: int, else float, else true/false, else the text itself."""
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            continue
    return raw


def split_target(item: str, option: str = "--set") -> tuple[str, str, str]:
    """``NODE.INPUT=VALUE`` → ``(NODE, INPUT, VALUE)`` (VALUE still text); NODE may itself contain dots."""
    target, sep, raw = item.partition("=")
    node_key, dot, input_name = target.rpartition(".")
    if not sep or not dot or not node_key or not input_name:
        raise WorkflowError(f"{option} {item!r}: use NODE.INPUT=VALUE, e.g. 3.seed=42 or 'KSampler.steps=20'")
    return node_key, input_name, raw


def _title(node: Mapping[str, Any]) -> Any:
    meta = node.get("_meta")
    return meta.get("title") if isinstance(meta, Mapping) else None


def matching_nodes(prompt: Mapping[str, Any], node_key: str, option: str = "--set") -> list[str]:
    """Ids of the API prompt's nodes that ``node_key`` names: its id or title, else its node type when exactly one
    node has that type (several are refused, listing their ids)."""
    named = [k for k, v in prompt.items() if k == node_key or _title(v) == node_key]
    if named:
        return named
    typed = [k for k, v in prompt.items() if v.get("class_type") == node_key]
    if len(typed) > 1:
        ids = ", ".join(sorted(typed, key=lambda k: (len(k), k)))
        raise WorkflowError(f"{option} {node_key}: {len(typed)} nodes have the type {node_key!r} (ids {ids}); name one "
                            f"by its id or its title, e.g. {option} {min(typed, key=lambda k: (len(k), k))}.INPUT=...")
    return typed


def value_problem(input_types: Mapping[str, Any], input_name: str, value: Any) -> str | None:
    """Why ``value`` does not fit the input (unknown input, a socket, wrong type, out of range), or None."""
    spec = {name: (kind, opts) for name, kind, opts in _ordered_inputs(input_types)}
    if input_name not in spec:
        return f"there is no input {input_name!r}; the inputs are {', '.join(spec)}"
    kind, opts = spec[input_name]
    if not is_widget(kind, opts):
        return f"{input_name!r} is a {kind} socket, not a value"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "INT" and not (number and float(value).is_integer()):
        return f"{input_name!r} takes a whole number, not {value!r}"
    if kind == "FLOAT" and not number:
        return f"{input_name!r} takes a number, not {value!r}"
    if kind == "BOOLEAN" and not isinstance(value, bool):
        return f"{input_name!r} takes true or false, not {value!r}"
    if kind in ("INT", "FLOAT") and opts.get("min") is not None and value < opts["min"]:
        return f"{input_name!r} is at least {opts['min']}, not {value!r}"
    if kind in ("INT", "FLOAT") and opts.get("max") is not None and value > opts["max"]:
        return f"{input_name!r} is at most {opts['max']}, not {value!r}"
    return None


def set_input(prompt: dict, node_key: str, input_name: str, value: Any, node_defs: Mapping | None = None,
              option: str = "--set") -> list[str]:
    """Set ``input_name`` of the nodes ``node_key`` names (:func:`matching_nodes`); with ``node_defs``, the value must
    fit the input (see :func:`value_problem`). Returns the ids of the nodes set."""
    ids = matching_nodes(prompt, node_key, option)
    if not ids:
        raise WorkflowError(f"{option} {node_key}.{input_name}: no node with id, title or type {node_key!r}")
    for node_id in ids:
        ctype = prompt[node_id]["class_type"]
        problem = value_problem(node_defs[ctype], input_name, value) if node_defs and ctype in node_defs else None
        if problem:
            raise WorkflowError(f"{option} {node_key}.{input_name}={value}: node {node_id} ({ctype}): {problem}")
        prompt[node_id]["inputs"][input_name] = value
    return ids


def apply_overrides(prompt: dict, overrides: list[str], node_defs: Mapping | None = None) -> dict:
    """``NODE.INPUT=VALUE`` (NODE = id or title); VALUE parsed as int, float, true/false, else text."""
    for item in overrides:
        node_key, input_name, raw = split_target(item)
        set_input(prompt, node_key, input_name, parse_value(raw), node_defs)
    return prompt


def set_ui_widget(workflow: dict, node_defs: Mapping[str, Mapping[str, Any]], node_ids: list[str], input_name: str,
                  value: Any) -> None:
    """Write ``value`` into the widget slot of ``input_name`` on the UI nodes with these ids (those
    :func:`set_input` set), so a saved image's workflow shows the values the job ran with. Inputs that are not
    widgets are left alone."""
    wanted = set(node_ids)
    for node in workflow.get("nodes", []):
        if str(node.get("id")) not in wanted or node.get("type") not in node_defs:
            continue
        names = widget_names(node_defs[node["type"]])
        values = node.get("widgets_values")
        if input_name in names and isinstance(values, list) and names.index(input_name) < len(values):
            values[names.index(input_name)] = value


def describe_prompt_errors(error: Any, node_errors: Mapping[str, Any] | None) -> str:
    """ComfyUI's answer to a prompt it refuses (``error`` and per-node ``node_errors``), in words: one line per
    node and input."""
    lines = []
    for node_id, info in sorted((node_errors or {}).items(), key=lambda kv: str(kv[0])):
        for err in info.get("errors", []):
            input_name = (err.get("extra_info") or {}).get("input_name")
            where = f"node {node_id} ({info.get('class_type', '?')})" + (f" input {input_name!r}" if input_name else "")
            details = f": {err['details']}" if err.get("details") else ""
            lines.append(f"  {where}: {err.get('message', err.get('type', 'error'))}{details}")
    if isinstance(error, Mapping):
        head = error.get("message") or error.get("type") or "refused"
        if error.get("details") and not lines:
            head += f": {error['details']}"
    else:
        head = str(error or "refused")
    return "\n".join([f"ComfyUI refused the prompt: {head}", *lines])


def describe_execution_error(event: str, data: Mapping[str, Any]) -> str:
    """An ``execution_error`` (or ``execution_interrupted``) message of ComfyUI's executor in one line: the node
    and the exception, without the traceback."""
    if event == "execution_interrupted":
        return "interrupted"
    message = " ".join(str(data.get("exception_message", "")).split())
    return f"node {data.get('node_id')} ({data.get('node_type')}): {data.get('exception_type', 'error')}: {message}"


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
