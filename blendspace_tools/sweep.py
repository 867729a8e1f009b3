"""Sweeps: ``--sweep NODE.INPUT=VALUES`` specs and the jobs they expand to (one API prompt per combination).

VALUES is a comma-separated list whose items are plain values (``7``, ``0.5``, ``euler``, ``true``),
float or int ranges ``START:STOP:STEP`` (both ends included when the steps land on STOP, e.g.
``0.1:0.9:0.2`` → 0.1, 0.3, 0.5, 0.7, 0.9) or integer ranges ``FIRST..LAST`` (``1..16``); or a JSON
list (``'["a cat, sitting", "a dog"]'``) when values contain commas or colons. Several ``--sweep`` options
make the cartesian product, the first one varying slowest.

Each job's identity is a hash of the API prompt it runs, so a rerun recognises finished jobs even
if the sweep is written differently, and outputs are named ``job-NNNN-<hash>`` so nothing is
overwritten. Pure Python; no ComfyUI import.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .workflow import WorkflowError, parse_value, set_input, set_ui_widget, split_target

INT_RANGE = re.compile(r"[+-]?\d+\.\.[+-]?\d+")
MAX_VALUES = 100_000
MAX_JOBS = 100_000


@dataclass(frozen=True)
class Sweep:
    """One ``--sweep`` option: the node (id, title or type), the input and its values in order."""

    node: str
    input: str
    values: tuple

    @property
    def label(self) -> str:
        return f"{self.node}.{self.input}"


@dataclass
class Job:
    """One combination of sweep values: its API prompt and, for a UI workflow, the workflow to embed in images."""

    index: int
    values: dict[str, Any]
    prompt: dict
    workflow: dict | None = None
    key: str = field(init=False)
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = prompt_key(self.prompt)
        self.name = f"job-{self.index:04d}-{self.key[:8]}"


def _decimal(text: str, item: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise WorkflowError(f"--sweep {item!r}: {text.strip()!r} in a range is not a number") from None
    if not value.is_finite():
        raise WorkflowError(f"--sweep {item!r}: {text.strip()!r} in a range is not a finite number")
    return value


def _step_range(part: str, item: str) -> list:
    """``START:STOP:STEP``, both ends included when the steps land on STOP; ints if all three are ints."""
    pieces = part.split(":")
    if len(pieces) != 3:
        raise WorkflowError(f"--sweep {item!r}: a range is START:STOP:STEP, e.g. 0.1:0.9:0.2 (got {part!r})")
    start, stop, step = (_decimal(p, item) for p in pieces)
    if step == 0 or (stop - start) * step < 0:
        raise WorkflowError(f"--sweep {item!r}: the step {step} never goes from {start} to {stop}")
    count = int((stop - start) / step) + 1
    if count > MAX_VALUES:
        raise WorkflowError(f"--sweep {item!r}: {count} values is too many (at most {MAX_VALUES})")
    as_int = all(p.strip().lstrip("+-").isdigit() for p in pieces)
    return [int(start + i * step) if as_int else float(start + i * step) for i in range(count)]


def _int_range(part: str, item: str) -> list[int]:
    """``FIRST..LAST`` with both ends, counting down when LAST < FIRST."""
    first, _, last = part.partition("..")
    try:
        a, b = int(first), int(last)
    except ValueError:
        raise WorkflowError(f"--sweep {item!r}: FIRST..LAST takes whole numbers, e.g. 1..16 (got {part!r})") from None
    if abs(b - a) + 1 > MAX_VALUES:
        raise WorkflowError(f"--sweep {item!r}: {abs(b - a) + 1} values is too many (at most {MAX_VALUES})")
    return list(range(a, b + 1)) if b >= a else list(range(a, b - 1, -1))


def expand_values(raw: str, item: str | None = None) -> list:
    """The values of one sweep spec (see the module docstring)."""
    item = item if item is not None else raw
    if raw.lstrip().startswith("["):
        try:
            values = json.loads(raw)
        except json.JSONDecodeError as err:
            raise WorkflowError(f"--sweep {item!r}: the JSON list does not parse ({err.msg})") from None
    else:
        values = []
        for part in raw.split(","):
            part = part.strip()
            if ":" in part:
                values += _step_range(part, item)
            elif INT_RANGE.fullmatch(part):
                values += _int_range(part, item)
            elif part:
                values.append(parse_value(part))
    if not isinstance(values, list) or not values:
        raise WorkflowError(f"--sweep {item!r}: no values; give V1,V2,..., START:STOP:STEP, FIRST..LAST or a JSON list")
    return values


def parse_sweep(item: str) -> Sweep:
    """``NODE.INPUT=VALUES`` → :class:`Sweep`."""
    node, input_name, raw = split_target(item, "--sweep")
    return Sweep(node, input_name, tuple(expand_values(raw, item)))


def combinations(sweeps: list[Sweep]) -> list[dict[str, Any]]:
    """The cartesian product of the sweeps as ``{"NODE.INPUT": value}`` dicts (one empty dict without sweeps)."""
    total = 1
    for sweep in sweeps:
        total *= len(sweep.values)
    if total > MAX_JOBS:
        raise WorkflowError(f"--sweep: {total} combinations is too many (at most {MAX_JOBS})")
    return [dict(zip((s.label for s in sweeps), combo, strict=True))
            for combo in itertools.product(*(s.values for s in sweeps))]


def prompt_key(prompt: Mapping) -> str:
    """A stable identity of an API prompt (titles and other ``_meta`` left out)."""
    core = {nid: {"class_type": node["class_type"], "inputs": node["inputs"]} for nid, node in prompt.items()}
    return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prefix_outputs(prompt: dict, job_name: str) -> None:
    """Put every ``filename_prefix`` under a folder named after the job, so jobs never overwrite each other."""
    for node in prompt.values():
        prefix = node["inputs"].get("filename_prefix")
        if isinstance(prefix, str):
            node["inputs"]["filename_prefix"] = f"{job_name}/{prefix}"


def build_jobs(base: dict, workflow: dict | None, node_defs: Mapping, sweeps: list[Sweep],
               transform=None) -> tuple[list[Job], int]:
    """One :class:`Job` per combination of sweep values, ``transform(prompt)`` applied after the values (e.g. the
    smoke swap). Jobs whose prompts come out identical run once; returns the jobs and how many were merged."""
    jobs: list[Job] = []
    seen: set[str] = set()
    merged = 0
    for values in combinations(sweeps):
        prompt = copy.deepcopy(base)
        ui = copy.deepcopy(workflow) if workflow is not None else None
        for sweep in sweeps:
            ids = set_input(prompt, sweep.node, sweep.input, values[sweep.label], node_defs, option="--sweep")
            if ui is not None:
                set_ui_widget(ui, node_defs, ids, sweep.input, values[sweep.label])
        if transform is not None:
            prompt = transform(prompt)
        job = Job(len(jobs) + 1, values, prompt, ui)
        if job.key in seen:
            merged += 1
            continue
        seen.add(job.key)
        jobs.append(job)
    return jobs, merged
