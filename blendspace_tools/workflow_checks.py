"""The shape of a workflow file, checked before anything converts or runs it.

ComfyUI's own code assumes a well-formed file (its web page wrote it), so a hand-edited, truncated or
foreign file ends in a ``KeyError`` or ``TypeError`` deep inside the conversion or the executor.
These checks run first and turn every such problem into one :class:`WorkflowError` that names the
node (or the entry) and what is wrong with it:

- a UI workflow (what the web page saves): ``nodes`` a list of objects, each with a whole-number
  ``id`` (unique) and a ``type``; ``inputs`` a list of ``{"name", "link"}``; ``widgets_values`` a
  list; ``links`` entries ``[id, from node, from slot, to node, to slot, type]`` (or the same as an
  object, as newer frontends save them); every link an input uses must exist and come from a node
  of the workflow. Subgraphs and group nodes are refused with the way to flatten them.
- an API prompt (what ``/prompt`` takes): ``{node id: {"class_type", "inputs"}}``, ``inputs`` an
  object, every list value a link ``[node id, output slot]`` to a node of the prompt.
- a file of one format in the shape of the other (UI nodes keyed by id, an API node inside a UI
  ``nodes`` list) is named as such.

What needs the node definitions (widget values per node, unknown node types) is checked by the
converter (``workflow.ui_to_api``). Pure Python; no ComfyUI import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

VIRTUAL_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
LINK_FIELDS = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")


class WorkflowError(ValueError):
    """A workflow that cannot be converted or run; the message says what to fix."""


def describe(value: Any) -> str:
    """What a JSON value is, in words: 'null', 'a number (3)', 'a list', …"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def node_id(value: Any) -> int | None:
    """A UI node id as an int (the frontend writes ints; a digit string is accepted), else None."""
    if _whole(value):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


# --- UI workflows ------------------------------------------------------------------------------------------------


def _check_ui_node(node: Any, index: int) -> tuple[int, dict]:
    """One entry of ``nodes``: its id and the node, or a WorkflowError naming it."""
    where = f"nodes[{index}]"
    if not isinstance(node, dict):
        raise WorkflowError(f"{where} is {describe(node)}, not a node (an object with an 'id' and a 'type')")
    nid = node_id(node.get("id"))
    if nid is None:
        raise WorkflowError(f"{where} has no whole-number 'id' (it has {describe(node.get('id'))})")
    ctype = node.get("type")
    if "class_type" in node and "type" not in node:
        raise WorkflowError(f"node {nid} has 'class_type' and 'inputs' as in an API prompt, inside a UI workflow's "
                            "'nodes' list: save the workflow again from ComfyUI, or give the API prompt itself")
    if not isinstance(ctype, str) or not ctype.strip():
        raise WorkflowError(f"node {nid} has no node type: 'type' is {describe(ctype)}, not the name of a node class")
    where = f"node {nid} ({ctype})"
    if not _whole(node.get("mode", 0)):
        raise WorkflowError(f"{where}: 'mode' is {describe(node.get('mode'))}, not 0 (on), 2 (muted) or 4 (bypassed)")
    values = node.get("widgets_values")
    if isinstance(values, dict):
        raise WorkflowError(f"{where} stores its widgets as an object (a node pack's own format); not supported")
    if values is not None and not isinstance(values, list):
        raise WorkflowError(f"{where}: 'widgets_values' is {describe(values)}, not a list of widget values")
    inputs = node.get("inputs")
    if inputs is not None and not isinstance(inputs, list):
        raise WorkflowError(f"{where}: 'inputs' is {describe(inputs)}, not a list of input sockets")
    for k, inp in enumerate(inputs or []):
        if not isinstance(inp, dict) or not isinstance(inp.get("name"), str):
            raise WorkflowError(f"{where}: inputs[{k}] is {describe(inp)}, not an input socket with a 'name'")
        if inp.get("link") is not None and not _whole(inp.get("link")):
            raise WorkflowError(f"{where}: input {inp['name']!r} has the link {describe(inp.get('link'))}, not a "
                                "link id")
    return nid, node


def _subgraph_ids(workflow: Mapping) -> dict[str, str]:
    """The workflow's subgraph definitions (frontend 1.24 and newer): id → name."""
    definitions = workflow.get("definitions")
    graphs = definitions.get("subgraphs") if isinstance(definitions, dict) else None
    return {str(g.get("id")): str(g.get("name") or g.get("id")) for g in graphs or [] if isinstance(g, dict)}


def _refuse_composites(nodes: dict[int, dict], workflow: Mapping) -> None:
    subgraphs = _subgraph_ids(workflow)
    for nid, node in nodes.items():
        ctype = node["type"]
        if ctype in subgraphs or UUID.fullmatch(ctype):
            name = f" {subgraphs[ctype]!r}" if ctype in subgraphs else " (its definition is not in the file)"
            raise WorkflowError(f"node {nid} is a subgraph{name}; the runner takes flat graphs: in ComfyUI, "
                                "right-click it, Unpack Subgraph, and save the workflow again")
        if ctype.startswith(("workflow>", "workflow/")):
            raise WorkflowError(f"node {nid} is a group node ({ctype!r}); the runner takes flat graphs: in ComfyUI, "
                                "right-click it, Convert to nodes, and save the workflow again")


def _link_entry(link: Any, index: int) -> tuple:
    """One entry of ``links`` as ``(id, from node, from slot, to node, to slot, type)``."""
    if isinstance(link, dict):
        link = [link.get(key) for key in LINK_FIELDS]
    shape = "a link is [id, from node, from slot, to node, to slot, type]"
    if not isinstance(link, (list, tuple)) or len(link) < 6:
        raise WorkflowError(f"links[{index}] is {describe(link) if not isinstance(link, list) else link}: {shape}")
    if not all(node_id(v) is not None for v in link[:5]):
        raise WorkflowError(f"links[{index}] is {list(link)}: its first five fields must be whole numbers ({shape})")
    return tuple(node_id(v) for v in link[:5]) + (link[5],)


def check_ui_workflow(workflow: Mapping) -> tuple[dict[int, dict], dict[int, tuple]]:
    """The nodes (id → node) and links (id → entry) of a UI workflow, every input link resolved to a node of the
    workflow; a WorkflowError for the first thing that is wrong."""
    raw = workflow.get("nodes")
    if not isinstance(raw, list):
        raise WorkflowError(f"'nodes' is {describe(raw)}, not a list of nodes")
    nodes: dict[int, dict] = {}
    for index, entry in enumerate(raw):
        nid, node = _check_ui_node(entry, index)
        if nid in nodes:
            raise WorkflowError(f"two nodes have the id {nid} ({nodes[nid]['type']} and {node['type']})")
        nodes[nid] = node
    _refuse_composites(nodes, workflow)
    raw_links = workflow.get("links") or []
    if not isinstance(raw_links, list):
        raise WorkflowError(f"'links' is {describe(raw_links)}, not a list of links")
    links = {entry[0]: entry for entry in (_link_entry(link, i) for i, link in enumerate(raw_links))}
    for nid, node in nodes.items():
        for inp in node.get("inputs") or []:
            link = inp.get("link")
            if link is None:
                continue
            where = f"node {nid} ({node['type']}) input {inp['name']!r}"
            if link not in links:
                raise WorkflowError(f"{where} uses link {link}, which is not in the workflow's 'links'")
            if links[link][1] not in nodes:
                raise WorkflowError(f"{where} is linked to node {links[link][1]}, which is not in the workflow")
    return nodes, links


# --- API prompts -------------------------------------------------------------------------------------------------


def _check_link(prompt: Mapping, where: str, name: str, value: list) -> None:
    source, slot = (value + [None, None])[:2]
    if len(value) != 2 or node_id(source) is None and not isinstance(source, str) or not _whole(slot):
        raise WorkflowError(f"{where} input {name!r} is the list {value[:4]}: a list is a link [node id, output "
                            "slot] (give other values as they are)")
    if str(source) not in prompt:
        raise WorkflowError(f"{where} input {name!r} is linked to node {source}, which is not in the prompt")


def check_api_prompt(prompt: Mapping) -> None:
    """Every node an object with a ``class_type`` and an ``inputs`` object whose links point at nodes of the
    prompt; a WorkflowError for the first thing that is wrong."""
    for nid, node in prompt.items():
        if not isinstance(node, dict):
            raise WorkflowError(f"node {nid} is {describe(node)}, not a node (an object with 'class_type' and "
                                "'inputs')")
        ctype = node.get("class_type")
        if not isinstance(ctype, str) or not ctype.strip():
            raise WorkflowError(f"node {nid} has no 'class_type' (it has {describe(ctype)}): name the node class")
        where = f"node {nid} ({ctype})"
        inputs = node.get("inputs", {})
        if not isinstance(inputs, dict):
            raise WorkflowError(f"{where}: 'inputs' is {describe(inputs)}, not an object of input name → value")
        meta = node.get("_meta", {})
        if not isinstance(meta, dict):
            raise WorkflowError(f"{where}: '_meta' is {describe(meta)}, not an object (with a 'title')")
        if not isinstance(meta.get("title", ""), str):
            raise WorkflowError(f"{where}: its '_meta' title is {describe(meta.get('title'))}, not a text")
        for name, value in inputs.items():
            if isinstance(value, list):
                _check_link(prompt, where, name, value)


def looks_like_ui_nodes(data: Mapping) -> bool:
    """UI nodes keyed by id (a UI workflow without its surrounding ``{"nodes": [...]}``)."""
    return bool(data) and all(isinstance(v, dict) and "type" in v and "class_type" not in v for v in data.values())
