"""``python -m blendspace run``: one workflow, or a sweep of jobs, in this process or on ComfyUI servers.

In this process (the default) ComfyUI is imported and its executor runs the jobs one after
another. With ``--server URL`` (repeatable) nothing of ComfyUI is imported here: the workflow is
converted with the first answering server's ``/object_info``, images are uploaded, and ``fanout``
spreads the jobs over the servers and downloads the results. Either way the results go to
``./output`` (or ``--output DIR``), named when the run starts, and every file is printed on
standard output as it lands; the UI workflow, with the job's values, goes into the saved images'
metadata, so a PNG dragged onto ComfyUI opens the workflow that made it. Bad input ends with one
line on standard error and exit status 1; Ctrl-C (or SIGTERM) with status 130, and the run's work
folder is removed either way.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .comfyui_locator import ComfyUIError
from .fanout import FanOutError, Manifest, Progress, Summary, pending_jobs, run_in_process, run_on_servers
from .runner import GraphError, smoke_prompt, unreadable_image
from .server_client import normalize_url
from .sweep import Job, Sweep, build_jobs, parse_sweep, prefix_outputs
from .workflow import (
    WorkflowError,
    base_prompt,
    load_workflow_file,
    parse_value,
    set_input,
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
        base = base_prompt(self.workflow, self.api_prompt, node_defs)
        ui = copy.deepcopy(self.workflow)
        for item in self.sets:
            node, input_name, raw = split_target(item)
            ids = set_input(base, node, input_name, parse_value(raw), node_defs)
            if ui is not None:
                set_ui_widget(ui, node_defs, ids, input_name, parse_value(raw))
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


def output_folder(args: argparse.Namespace) -> Path:
    """Where the results go: ``--output DIR``, else ``./output`` (made by :func:`announce`)."""
    return Path(args.output or "output").expanduser().resolve()


def announce(folder: Path) -> None:
    """Make the output folder and name it, once the jobs are known to be sound (so an error is the only line)."""
    folder.mkdir(parents=True, exist_ok=True)
    print(f"blendspace: outputs go to {folder}", file=sys.stderr, flush=True)


class _Echo:
    """ComfyUI's messages for one job run here: each node as it starts (unless quiet) and each saved file as it
    lands (its path on standard output)."""

    def __init__(self, prompt: dict, output: Path, quiet: bool):
        self.prompt, self.output, self.quiet = prompt, output, quiet
        self.printed: list[Path] = []

    def __call__(self, event, data) -> None:
        if not isinstance(data, dict):
            return
        if event == "executing" and data.get("node") is not None and not self.quiet:
            node = self.prompt.get(str(data["node"]), {})
            print(f"blendspace: running node {data['node']} ({node.get('class_type', '?')})", file=sys.stderr)
        elif event == "executed":
            self.files({"outputs": {data.get("node"): data.get("output")}})

    def files(self, record: dict) -> None:
        from .server_client import output_files
        for item in output_files(record):
            path = self.output / item.get("subfolder", "") / item["filename"]
            if path not in self.printed:
                self.printed.append(path)
                print(path, flush=True)


def run_here(args: argparse.Namespace, plan: Plan, summary: Summary) -> None:
    """In this process: one job (files where the workflow's savers say, under the output folder), or a sweep as
    named jobs with a manifest. The session's work folder is removed at the end, also after an error or Ctrl-C."""
    from .comfyui_locator import comfyui_root
    from .runner import close_session, open_session
    root = comfyui_root(args.comfyui)  # a missing --comfyui is said before anything is made
    output = None if args.emit_api else output_folder(args)
    session = open_session(str(root), args.smoke, str(output) if output else None, args.input)
    try:
        _run_session(args, plan, summary, session, output)
    finally:
        close_session(session)


def _run_session(args: argparse.Namespace, plan: Plan, summary: Summary, session, output: Path | None) -> None:
    from .runner import check_model_files, execute, node_definitions
    defs, _ = node_definitions(session.nodes)
    jobs = plan.jobs(defs)
    if output is None:  # --emit-api, for other tools, perhaps on other machines: this one need not have the models
        return emit_api(jobs, Path(args.emit_api))
    if not args.smoke:
        for job in jobs:
            check_model_files(job.prompt, session.folder_paths)
    announce(output)
    _say_smoke(plan)
    summary.output = str(output)
    if not plan.named_jobs:
        echo = _Echo(jobs[0].prompt, output, args.quiet)
        echo.files({"outputs": execute(session, jobs[0].prompt, echo, jobs[0].workflow)})
        summary.done = 1
        print(f"blendspace: done, {len(echo.printed)} file(s) in {output}", file=sys.stderr)
        return None
    todo, summary.skipped = pending_jobs(jobs, Manifest(output))
    progress = Progress(len(jobs), summary.skipped, args.quiet)
    try:
        run_in_process(session, todo, output, summary, progress)
    finally:
        progress.close()
    return None


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
    output = None if args.emit_api else output_folder(args)
    summary.output = str(output)

    def prepare(node_defs: dict):
        jobs = plan.jobs(node_defs)
        uploads = upload_map(jobs, node_defs, Path(args.input or "."))
        if args.emit_api:
            emit_api(jobs, Path(args.emit_api))
            return None
        announce(output)
        _say_smoke(plan)
        return jobs, uploads

    asyncio.run(run_on_servers(urls, prepare, output or Path("."), summary, per_server=args.per_server,
                               quiet=args.quiet))


def _report(summary: Summary) -> None:
    print(f"blendspace: {summary.done} job(s) done, {summary.skipped} skipped (done before), {summary.failed} failed"
          + (f", {summary.undone} not done" if summary.undone else "")
          + f"; outputs and manifest.jsonl in {summary.output}", file=sys.stderr)


def _terminated(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a run as Ctrl-C does: prompts taken back, work folder removed


def _on_sigterm(handler):
    """Install a SIGTERM handler; the one it replaces (None when this is not the main thread, which cannot)."""
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None


def main(args: argparse.Namespace) -> int:
    """The ``run`` command; returns the exit status (0 when every job is done, 130 after Ctrl-C or SIGTERM)."""
    summary = Summary()
    previous = _on_sigterm(_terminated)
    try:
        plan = make_plan(args)
        if args.server:
            run_there(args, plan, summary)
        else:
            run_here(args, plan, summary)
    except (WorkflowError, GraphError, FanOutError, ComfyUIError, ValueError) as err:
        print(f"blendspace: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nblendspace: interrupted after {summary.done} job(s); rerun the same command to resume",
              file=sys.stderr)
        return INTERRUPTED
    finally:
        if previous is not None:
            _on_sigterm(previous)
    if plan.named_jobs and not args.emit_api:
        _report(summary)
    return 0 if summary.ok else 1
