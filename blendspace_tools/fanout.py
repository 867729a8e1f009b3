"""Fan-out: run a sweep's jobs on one or more ComfyUI servers (or one after another in this process).

Scheduling: each server gets at most ``per_server`` of our prompts at a time (one running, one
waiting by default); the next job goes to the live server with the shortest queue, counting
other clients' prompts too (``GET /prompt``). Completion is read from the websocket and, as a
backstop, from ``/history`` polls. A server that stops answering is dropped and its unfinished
jobs go back to the front of the queue for the others.

Outputs: every job's files land in ``OUTPUT/<job name>/`` (the prompt's ``filename_prefix`` values
are put under that folder). A server's files are downloaded into a staging folder first and moved
into place only when all arrived, then the job's line is appended to ``OUTPUT/manifest.jsonl``
(inputs, server, prompt id, files, and the seconds it ran apart from the seconds it waited in the
server's queue), and each file is printed as it lands. A rerun with the same output folder skips
the jobs whose manifest line says done and whose files are all there (resume).

Servers that do not answer at the start are skipped, and named; the run stops only when none
answers.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .server_client import (
    ComfyServer,
    PromptRejected,
    ServerDown,
    execution_error,
    finished_prompt,
    output_files,
    run_seconds,
    started_prompt,
)
from .sweep import Job

MANIFEST = "manifest.jsonl"
POLL_SECONDS = 0.5
HISTORY_EVERY = 4  # polls between /history backstop checks
LISTEN_WAIT = 5.0  # seconds to wait for the servers' websockets before queueing


class FanOutError(RuntimeError):
    """The run cannot go on (no server left, none reachable); the message says what to do."""


# --- manifest, output folders, progress ------------------------------------------------------------------------


class Manifest:
    """``manifest.jsonl`` in the output folder: one JSON line per finished (or failed) job."""

    def __init__(self, output: Path):
        self.output = output
        self.path = output / MANIFEST

    def records(self) -> list[dict]:
        if not self.path.is_file():
            return []
        lines = self.path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def done_keys(self) -> set[str]:
        """Jobs (by key) that a line shows done and whose files all exist."""
        return {r["key"] for r in self.records()
                if r.get("status") == "done" and all((self.output / f).is_file() for f in r.get("outputs", []))}

    def append(self, job: Job, status: str, server: str, prompt_id: str | None, outputs: list[str],
               timing: Timing, error: str | None = None) -> dict:
        record: dict[str, Any] = {"job": job.name, "key": job.key, "index": job.index, "inputs": job.values,
                                  "status": status, "server": server, "prompt_id": prompt_id, "outputs": outputs,
                                  "run_seconds": _rounded(timing.run), "queue_seconds": _rounded(timing.queue),
                                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if error:
            record["error"] = error
        self.output.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record, default=str) + "\n")
        return record


@dataclass(frozen=True)
class Timing:
    """A job's seconds running and seconds waiting in a server's queue (None where unknown)."""

    run: float | None
    queue: float | None = 0.0

    def text(self) -> str:
        ran = f"ran {self.run:.1f} s" if self.run is not None else "run time unknown"
        return ran + (f" after {self.queue:.1f} s queued" if self.queue else "")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def server_timing(record: dict | None, queued: float, started: float | None, now: float) -> Timing:
    """Run time (the server's own timestamps when it writes them, else from the moment its websocket said the
    prompt started) and queue wait (from queueing to that start) of a prompt finished at ``now``."""
    run = run_seconds(record) if record else None
    if run is None and started is not None:
        run = now - started
    if started is not None:
        queue = started - queued
    else:
        queue = None if run is None else now - queued - run
    return Timing(None if run is None else max(0.0, run), None if queue is None else max(0.0, queue))


def pending_jobs(jobs: list[Job], manifest: Manifest) -> tuple[list[Job], int]:
    """The jobs still to run, and how many the manifest already shows done."""
    done = manifest.done_keys()
    todo = [job for job in jobs if job.key not in done]
    return todo, len(jobs) - len(todo)


def clear_job_folder(output: Path, job: Job) -> None:
    """Remove what an unfinished earlier attempt of ``job`` left in its folder."""
    folder = output / job.name
    if folder.is_dir():
        shutil.rmtree(folder)


class Progress:
    """A progress bar over all jobs (tqdm, on standard error) with one line per finished job."""

    def __init__(self, total: int, done: int, quiet: bool = False):
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm comes with ComfyUI
            tqdm = None
        self.quiet = quiet
        self.bar = tqdm(total=total, initial=done, unit="job", file=sys.stderr, dynamic_ncols=True,
                        disable=None if not quiet else True) if tqdm else None

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def file(self, path: Path) -> None:
        """A file that landed: its path on standard output (also with ``quiet``: it is the run's result)."""
        if self.bar is not None:
            self.bar.write(str(path), file=sys.stdout)
        else:
            print(path, flush=True)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class Summary:
    """What a run did: jobs done now, skipped (done before), failed, and left undone."""

    done: int = 0
    skipped: int = 0
    records: list[dict] = field(default_factory=list)  # the manifest lines written by this run
    failed: int = 0
    undone: int = 0
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.undone == 0


# --- in this process -------------------------------------------------------------------------------------------


def run_in_process(session, jobs: list[Job], output: Path, summary: Summary, progress: Progress, echo=None) -> None:
    """Run the jobs one after another with ComfyUI's executor in this process (``runner.start_comfyui``'s
    session, whose output folder is ``output``)."""
    from .runner import GraphError, execute
    manifest = Manifest(output)
    for job in jobs:
        clear_job_folder(output, job)
        start = time.monotonic()
        try:
            outputs = execute(session, job.prompt, echo, workflow=job.workflow, reuse=True)
        except GraphError as err:
            summary.failed += 1
            summary.records.append(manifest.append(job, "failed", "in-process", None, [],
                                                   Timing(time.monotonic() - start), str(err)))
            progress.line(f"{job.name} failed: {err}")
            progress.advance()
            continue
        files = [str(Path(item.get("subfolder", ""), item["filename"]))
                 for item in output_files({"outputs": outputs})]
        timing = Timing(time.monotonic() - start)
        summary.records.append(manifest.append(job, "done", "in-process", None, files, timing))
        summary.done += 1
        progress.line(f"{job.name} done in-process, {timing.text()}: {len(files)} file(s) {_values_text(job)}")
        for rel in files:
            progress.file(output / rel)
        progress.advance()


def _values_text(job: Job) -> str:
    return " ".join(f"{k}={v}" for k, v in job.values.items())


# --- on ComfyUI servers ----------------------------------------------------------------------------------------


@dataclass
class Slot:
    """One server and what we have on it."""

    server: ComfyServer
    alive: bool = True
    load: int = 0
    running: dict[str, tuple[Job, float]] = field(default_factory=dict)  # prompt id -> (job, time queued)
    started: dict[str, float] = field(default_factory=dict)  # prompt id -> when the server started running it
    completing: set[str] = field(default_factory=set)
    finished_early: set[str] = field(default_factory=set)  # finished before POST /prompt answered
    uploads: dict[Path, str] = field(default_factory=dict)  # local image -> its name on the server
    listening: asyncio.Event = field(default_factory=asyncio.Event)  # its websocket is connected


class FanOut:
    """Spread jobs over servers, re-queue the work of servers that die, download and record results."""

    def __init__(self, servers: list[ComfyServer], jobs: list[Job], output: Path, progress: Progress,
                 summary: Summary, per_server: int = 2, uploads: dict[tuple[str, str, str], Path] | None = None):
        self.slots = [Slot(s) for s in servers]
        self.pending: deque[Job] = deque(jobs)
        self.output = output
        self.manifest = Manifest(output)
        self.progress = progress
        self.summary = summary
        self.per_server = per_server
        self.images = uploads or {}  # (node id, input, image name) in the prompts -> local file to upload
        self.wake = asyncio.Event()
        self.tasks: set[asyncio.Task] = set()
        self.reported: set[str] = set()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self) -> None:
        """Until every job is done or failed; on cancellation (Ctrl-C) stop our prompts on the servers first."""
        for slot in self.slots:
            self._spawn(self._listen(slot))
            self._spawn(self._poll(slot))
        # follow each server's messages before queueing on it, so no prompt's start is missed (the run time of a
        # 2024 ComfyUI's prompts is known only from its websocket)
        await asyncio.wait([asyncio.ensure_future(slot.listening.wait()) for slot in self.slots], timeout=LISTEN_WAIT,
                           return_when=asyncio.ALL_COMPLETED)
        try:
            while self.pending or any(slot.running for slot in self.slots):
                if not any(slot.alive for slot in self.slots):
                    self.summary.undone = len(self.pending)
                    raise FanOutError(f"every server is gone; {len(self.pending)} job(s) not done: start a server "
                                      "and rerun the same command to resume")
                slot = self._least_busy()
                if slot is not None and self.pending:
                    await self._submit(slot, self.pending.popleft())
                    continue
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), POLL_SECONDS)
                except asyncio.TimeoutError:
                    pass
        except asyncio.CancelledError:
            await asyncio.shield(self._stop_our_prompts())
            raise
        finally:
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def _least_busy(self) -> Slot | None:
        ready = [s for s in self.slots if s.alive and max(s.load, len(s.running)) < self.per_server]
        return min(ready, key=lambda s: max(s.load, len(s.running)), default=None)

    async def _server_prompt(self, slot: Slot, job: Job) -> dict:
        """The job's prompt with its images uploaded to this server and renamed as the server stores them."""
        prompt = json.loads(json.dumps(job.prompt))
        for node_id, node in prompt.items():
            for name, value in node["inputs"].items():
                local = self.images.get((node_id, name, value)) if isinstance(value, str) else None
                if local is not None:
                    if local not in slot.uploads:
                        slot.uploads[local] = await slot.server.upload_image(local)
                    node["inputs"][name] = slot.uploads[local]
        return prompt

    async def _submit(self, slot: Slot, job: Job) -> None:
        try:
            prompt_id = await slot.server.queue_prompt(await self._server_prompt(slot, job), job.workflow)
        except PromptRejected as err:
            self._record_failure(job, slot, None, str(err), Timing(0.0))
            return
        except ServerDown as err:
            self.pending.appendleft(job)
            self._lose(slot, str(err))
            return
        slot.running[prompt_id] = (job, time.monotonic())
        slot.load += 1
        if prompt_id in slot.finished_early:
            self._finished(slot, prompt_id)

    def _finished(self, slot: Slot, prompt_id: str) -> None:
        if prompt_id not in slot.running:
            slot.finished_early.add(prompt_id)
        elif prompt_id not in slot.completing:
            slot.completing.add(prompt_id)
            self._spawn(self._complete(slot, prompt_id))

    async def _complete(self, slot: Slot, prompt_id: str) -> None:
        job, queued = slot.running[prompt_id]
        staging = self.output / ".partial" / f"{job.name}-{uuid.uuid4().hex[:8]}"
        keep_waiting = False
        try:
            record = await slot.server.history(prompt_id)
            if record is None:  # reported finished but not in the history yet: look again at the next poll
                keep_waiting = True
                return
            error = execution_error(record)
            timing = server_timing(record, queued, slot.started.get(prompt_id), time.monotonic())
            if error == "interrupted":
                self.pending.appendleft(job)
            elif error:
                self._record_failure(job, slot, prompt_id, error, timing)
            else:
                files = await self._download(slot, job, output_files(record), staging)
                self._record_done(job, slot, prompt_id, files, timing)
        except ServerDown as err:
            self.pending.appendleft(job)
            self._lose(slot, str(err))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            slot.completing.discard(prompt_id)
            if not keep_waiting:
                slot.running.pop(prompt_id, None)
                slot.started.pop(prompt_id, None)
                slot.load = max(0, slot.load - 1)  # until the next poll says how busy it is
            self.wake.set()

    async def _download(self, slot: Slot, job: Job, items: list[dict], staging: Path) -> list[str]:
        """Fetch all of a job's files into ``staging``, then move them into ``OUTPUT/<job name>/`` in one go."""
        relative = []
        for item in items:
            sub = Path(item.get("subfolder") or "")
            if sub.parts[:1] == (job.name,):
                sub = Path(*sub.parts[1:])
            rel = Path(job.name, sub, item["filename"])
            await slot.server.download(item, staging / rel)
            relative.append(str(rel))
        clear_job_folder(self.output, job)
        if relative:
            (staging / job.name).rename(self.output / job.name)
        return relative

    def _record_done(self, job: Job, slot: Slot, prompt_id: str, files: list[str], timing: Timing) -> None:
        self.summary.records.append(self.manifest.append(job, "done", slot.server.url, prompt_id, files, timing))
        self.summary.done += 1
        self.progress.line(f"{job.name} done on {slot.server.url}, {timing.text()}: {len(files)} file(s) "
                           f"{_values_text(job)}")
        for rel in files:
            self.progress.file(self.output / rel)
        self.progress.advance()

    def _record_failure(self, job: Job, slot: Slot, prompt_id: str | None, error: str, timing: Timing) -> None:
        self.summary.records.append(self.manifest.append(job, "failed", slot.server.url, prompt_id, [], timing,
                                                         error))
        self.summary.failed += 1
        if error not in self.reported:
            self.reported.add(error)
            self.progress.line(f"{job.name} failed on {slot.server.url}: {error}")
        else:
            self.progress.line(f"{job.name} failed on {slot.server.url} (same error as above)")
        self.progress.advance()

    def _lose(self, slot: Slot, reason: str) -> None:
        """Drop a server; its jobs that are not being completed go back to the front of the queue."""
        if not slot.alive:
            return
        slot.alive = False
        lost = [pid for pid in slot.running if pid not in slot.completing]
        for pid in lost:
            self.pending.appendleft(slot.running.pop(pid)[0])
        self.progress.line(f"server {slot.server.url} lost ({reason}); re-queued {len(lost)} job(s) on the others")
        self.wake.set()

    async def _listen(self, slot: Slot) -> None:
        """Follow the server's websocket (reconnecting while it is alive) for finished prompts."""
        while slot.alive:
            try:
                async for message in slot.server.events():
                    slot.listening.set()  # ComfyUI greets a new websocket with its status
                    if (started := started_prompt(message)) is not None:
                        slot.started.setdefault(started, time.monotonic())
                    prompt_id = finished_prompt(message)
                    if prompt_id is not None:
                        self._finished(slot, prompt_id)
            except ServerDown:
                pass
            await asyncio.sleep(POLL_SECONDS)

    async def _poll(self, slot: Slot) -> None:
        """Queue length for scheduling, liveness (two failed polls in a row drop the server), and a /history
        check of our prompts in case a websocket message was missed."""
        misses, tick = 0, 0
        while slot.alive:
            await asyncio.sleep(POLL_SECONDS)
            tick += 1
            try:
                slot.load = await slot.server.queue_remaining()
                misses = 0
                if tick % HISTORY_EVERY == 0:
                    for prompt_id in list(slot.running):
                        if prompt_id not in slot.completing and await slot.server.history(prompt_id) is not None:
                            self._finished(slot, prompt_id)
            except ServerDown as err:
                misses += 1
                if misses >= 2:
                    self._lose(slot, str(err))
            self.wake.set()

    async def _stop_our_prompts(self) -> None:
        """Ctrl-C: take our waiting prompts off every live server and interrupt the ones of ours running."""
        async def stop(slot: Slot) -> None:
            try:
                await slot.server.delete_queued(list(slot.running))
                if set(await slot.server.running_prompts()) & set(slot.running):
                    await slot.server.interrupt()
            except ServerDown:
                pass
        await asyncio.gather(*(stop(s) for s in self.slots if s.alive and s.running))


# --- the whole run ---------------------------------------------------------------------------------------------


async def connect(urls: list[str], session, say=None) -> tuple[list[ComfyServer], list[dict]]:
    """The servers that answer (their ``/object_info`` read), those that do not named through ``say``; a
    FanOutError when none answers."""
    servers = [ComfyServer(url, session) for url in urls]

    async def probe(server: ComfyServer) -> dict:
        await server.queue_remaining()
        return await server.object_info()

    answers = await asyncio.gather(*(probe(s) for s in servers), return_exceptions=True)
    live = [(s, a) for s, a in zip(servers, answers, strict=True) if not isinstance(a, BaseException)]
    silent = [str(a) for a in answers if isinstance(a, BaseException)]
    if not live:
        raise FanOutError(f"cannot reach {len(silent)} of {len(servers)} ComfyUI server(s): " + "; ".join(silent)
                          + " (start them, e.g. python -m blendspace serve --port N, or fix --server)")
    if silent and say is not None:
        say(f"blendspace: skipping {len(silent)} of {len(servers)} server(s) that do not answer ("
            + "; ".join(silent) + f"); running on {', '.join(s.url for s, _ in live)}")
    return [s for s, _ in live], [info for _, info in live]


def check_node_types(servers: list[ComfyServer], infos: list[dict], jobs: list[Job]) -> None:
    """Every server must know every node type the jobs use."""
    needed = {node["class_type"] for job in jobs for node in job.prompt.values()}
    problems = [f"{s.url} lacks {sorted(needed - set(info))}" for s, info in zip(servers, infos, strict=True)
                if needed - set(info)]
    if problems:
        hint = (" (for --smoke, start the servers with python -m blendspace serve --with-test-pack)"
                if any("BlendspaceTest_" in p for p in problems) else "")
        raise FanOutError("; ".join(problems) + ": install the same custom nodes on every server" + hint)


async def run_on_servers(urls: list[str], prepare, output: Path, summary: Summary, per_server: int = 2,
                         quiet: bool = False) -> None:
    """Connect, let ``prepare(node_defs)`` make ``(jobs, uploads)`` (None: nothing to run), skip the jobs the
    manifest shows done, and fan the rest out."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        servers, infos = await connect(urls, session, say=lambda text: print(text, file=sys.stderr, flush=True))
        planned = prepare({name: info.get("input", {}) for name, info in infos[0].items()})
        if planned is None:
            return
        jobs, uploads = planned
        check_node_types(servers, infos, jobs)
        todo, summary.skipped = pending_jobs(jobs, Manifest(output))
        progress = Progress(len(jobs), summary.skipped, quiet)
        try:
            await FanOut(servers, todo, output, progress, summary, per_server, uploads).run()
        finally:
            progress.close()
