"""``python -m blendspace run``: one workflow, or a sweep of jobs, in this process or on ComfyUI servers.

In this process (the default) ComfyUI is imported and its executor runs the jobs one after
another. With ``--server URL`` (repeatable) nothing of ComfyUI is imported here: the workflow is
converted with the first server's ``/object_info``, images are uploaded, and ``fanout`` spreads the
jobs over the servers and downloads the results into ``--output``. Either way the UI workflow,
with the job's values, goes into the saved images' metadata, so a PNG dragged onto ComfyUI opens
the workflow that made it. Bad input ends with one line on standard error and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .fanout import FanOutError, Manifest, Progress, Summary, pending_jobs, run_in_process, run_on_servers
from .runner import GraphError, smoke_prompt, unreadable_image
from .server_client import normalize_url
from .sweep import Job, Sweep, build_jobs, parse_sweep, prefix_outputs
from .workflow import (
    WorkflowError,
    apply_overrides,
    base_prompt,
    load_workflow_file,
    parse_value,
    set_ui_widget,
    split_target,
)

INTERRUPTED = 130


@dataclass
class Plan:
    """The workflow file, ``--set``, ``--sweep`` and ``--smoke`` made into jobs once node definitions are known."""

    workflow: dict | None
    api_prompt: dict | None
    sets: list[str]
    sweeps: list[Sweep]
    smoke: bool
    named_jobs: bool
    smoke_notes: list[str] = field(default_factory=list)
    merged: int = 0

    def jobs(self, node_defs: dict) -> list[Job]:
        base = apply_overrides(base_prompt(self.workflow, self.api_prompt, node_defs), self.sets, node_defs)
        ui = copy.deepcopy(self.workflow)
        if ui is not None:
            for item in self.sets:
                node, input_name, raw = split_target(item)
                set_ui_widget(ui, node_defs, node, input_name, parse_value(raw))
        jobs, self.merged = build_jobs(base, ui, node_defs, self.sweeps, self._smoke if self.smoke else None)
        if self.named_jobs:
            for job in jobs:
                prefix_outputs(job.prompt, job.name)
        return jobs

    def _smoke(self, prompt: dict) -> dict:
        prompt, notes = smoke_prompt(prompt)
        if not self.smoke_notes:
            self.smoke_notes = notes or ["(nothing to swap)"]
        return prompt


def make_plan(args: argparse.Namespace) -> Plan:
    """Read and check everything given on the command line before any ComfyUI is started or contacted."""
    sweeps = [parse_sweep(item) for item in args.sweep]
    for item in args.set:
        split_target(item)
    workflow, api_prompt = load_workflow_file(args.workflow)
    return Plan(workflow, api_prompt, list(args.set), sweeps, args.smoke, named_jobs=bool(sweeps or args.server))


def emit_api(jobs: list[Job], path: Path) -> None:
    """One job: ``path`` holds its API prompt. Several: ``path`` is a folder with ``<job name>.json`` each."""
    if len(jobs) == 1:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(jobs[0].prompt, indent=1) + "\n")
        print(f"blendspace: wrote the API prompt to {path}", file=sys.stderr)
        return
    path.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        (path / f"{job.name}.json").write_text(json.dumps(job.prompt, indent=1) + "\n")
    print(f"blendspace: wrote {len(jobs)} API prompts (one per job) to {path}/", file=sys.stderr)


def _say_smoke(plan: Plan) -> None:
    if plan.smoke:
        print("blendspace: SMOKE RUN with tiny random models: the outputs are noise, not images.", file=sys.stderr)
        for change in plan.smoke_notes:
            print(f"  {change}", file=sys.stderr)
    if plan.merged:
        print(f"blendspace: {plan.merged} combination(s) gave the same prompt as an earlier one and run once",
              file=sys.stderr)


def _print_single(outputs: dict, output_dir: str) -> None:
    written = 0
    for node_id, ui in sorted(outputs.items()):
        for item in (ui or {}).get("images", []) if isinstance(ui, dict) else []:
            print(f"node {node_id}: {Path(output_dir, item.get('subfolder', ''), item['filename'])}")
            written += 1
    print(f"blendspace: done, {written} file(s) in {output_dir}", file=sys.stderr)


def run_here(args: argparse.Namespace, plan: Plan, summary: Summary) -> None:
    """In this process: one job as before (files where the workflow says), a sweep as named jobs with a manifest."""
    from .runner import check_model_files, execute, node_definitions, open_session
    session = open_session(args.comfyui, args.smoke, args.output, args.input)
    defs, _ = node_definitions(session.nodes)
    jobs = plan.jobs(defs)
    if args.emit_api:  # for other tools, perhaps on other machines: this one need not have the models
        return emit_api(jobs, Path(args.emit_api))
    if not args.smoke:
        for job in jobs:
            check_model_files(job.prompt, session.folder_paths)
    _say_smoke(plan)
    output = Path(session.folder_paths.get_output_directory())
    summary.output = str(output)
    if not plan.named_jobs:
        outputs = execute(session, jobs[0].prompt, None if args.quiet else _echo(jobs[0].prompt), jobs[0].workflow)
        summary.done = 1
        return _print_single(outputs, str(output))
    todo, summary.skipped = pending_jobs(jobs, Manifest(output))
    progress = Progress(len(jobs), summary.skipped, args.quiet)
    try:
        run_in_process(session, todo, output, summary, progress)
    finally:
        progress.close()


def _echo(prompt: dict):
    def echo(event, data):
        if event == "executing" and data and data.get("node") is not None:
            node = prompt.get(str(data["node"]), {})
            print(f"blendspace: running node {data['node']} ({node.get('class_type', '?')})", file=sys.stderr)
    return echo


def _upload_inputs(input_types: dict) -> dict[str, list]:
    """Inputs with an upload button (Load Image…): name → the files the node offers."""
    found = {}
    for section in ("required", "optional"):
        for name, spec in (input_types.get(section) or {}).items():
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if opts.get("image_upload"):
                found[name] = spec[0] if isinstance(spec[0], list) else []
    return found


def upload_map(jobs: list[Job], node_defs: dict, images: Path) -> dict[tuple[str, str, str], Path]:
    """The images the jobs' upload inputs (Load Image…) name that exist in ``images``: ``(node id, input, name)`` →
    local file. A name that is not there must be in the server's input folder already (the node offers it)."""
    found: dict[tuple[str, str, str], Path] = {}
    for job in jobs:
        for node_id, node in job.prompt.items():
            for name, offered in _upload_inputs(node_defs[node["class_type"]]).items():
                value = node["inputs"].get(name)
                if not isinstance(value, str) or (node_id, name, value) in found:
                    continue
                local = images / value
                where = f"node {node_id} ({node['class_type']})"
                if local.is_file():
                    if (why := unreadable_image(local)) is not None:
                        raise WorkflowError(f"{where}: cannot read image {local}: {why}")
                    found[(node_id, name, value)] = local.resolve()
                elif value not in offered:
                    raise WorkflowError(f"{where}: image {value!r} is neither in {images} (--input) nor in the "
                                        "server's input folder")
    return found


def run_there(args: argparse.Namespace, plan: Plan, summary: Summary) -> None:
    """On the ``--server`` ComfyUIs: results downloaded into ``--output``, a manifest, resume."""
    urls = list(dict.fromkeys(normalize_url(u) for u in args.server))
    if not args.output:
        raise WorkflowError("--server needs --output DIR: the folder the results are downloaded into")
    output = Path(args.output)
    summary.output = str(output)

    def prepare(node_defs: dict):
        jobs = plan.jobs(node_defs)
        uploads = upload_map(jobs, node_defs, Path(args.input or "."))
        if args.emit_api:
            emit_api(jobs, Path(args.emit_api))
            return None
        _say_smoke(plan)
        return jobs, uploads

    asyncio.run(run_on_servers(urls, prepare, output, summary, per_server=args.per_server, quiet=args.quiet))


def _report(summary: Summary) -> None:
    for record in summary.records:
        for rel in record.get("outputs", []):
            print(Path(summary.output, rel))
    print(f"blendspace: {summary.done} job(s) done, {summary.skipped} skipped (done before), {summary.failed} failed"
          + (f", {summary.undone} not done" if summary.undone else "")
          + f"; outputs and manifest.jsonl in {summary.output}", file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    """The ``run`` command; returns the exit status (0 when every job is done, 130 after Ctrl-C)."""
    summary = Summary()
    try:
        plan = make_plan(args)
        if args.server:
            run_there(args, plan, summary)
        else:
            run_here(args, plan, summary)
    except (WorkflowError, GraphError, FanOutError, ValueError) as err:
        print(f"blendspace: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nblendspace: interrupted after {summary.done} job(s); rerun the same command to resume",
              file=sys.stderr)
        return INTERRUPTED
    if plan.named_jobs and not args.emit_api:
        _report(summary)
    return 0 if summary.ok else 1
