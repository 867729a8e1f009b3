"""The fan-out scheduler against fake servers (no ComfyUI, no network): spreading, a server dying with jobs on
it, a prompt ComfyUI refuses, a failed execution, run time apart from queue wait. The real-server runs are in
test_servers.py."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from blendspace_tools import fanout
from blendspace_tools.fanout import FanOut, FanOutError, Progress, Summary
from blendspace_tools.server_client import PromptRejected, ServerDown
from blendspace_tools.sweep import build_jobs, parse_sweep, prefix_outputs

DEFS = {"Sampler": {"required": {"seed": ("INT", {"default": 0})}},
        "Save": {"required": {"filename_prefix": ("STRING", {"default": "x"}), "images": ("IMAGE",)}}}


class FakeServer:
    """Runs one prompt at a time for ``work`` seconds and 'saves' one file named after its prefix."""

    def __init__(self, url: str, work: float = 0.02, die_after: int | None = None, fail_seed: int | None = None):
        self.url, self.work, self.die_after, self.fail_seed = url, work, die_after, fail_seed
        self.queue: list[tuple[str, dict]] = []
        self.history_records: dict[str, dict] = {}
        self.events_out: asyncio.Queue = asyncio.Queue()
        self.started: list[int] = []
        self.dead = False
        self.worker: asyncio.Task | None = None

    def _alive(self) -> None:
        if self.dead:
            raise ServerDown(f"{self.url}: connection refused")

    async def queue_remaining(self) -> int:
        self._alive()
        return len(self.queue)

    async def queue_prompt(self, prompt: dict, workflow: dict | None = None) -> str:
        self._alive()
        if prompt["1"]["inputs"]["seed"] < 0:
            raise PromptRejected("ComfyUI refused the prompt: bad seed")
        prompt_id = uuid.uuid4().hex
        self.queue.append((prompt_id, prompt))
        if self.worker is None:
            self.worker = asyncio.create_task(self._work())
        return prompt_id

    async def _work(self) -> None:
        while self.queue and not self.dead:
            prompt_id, prompt = self.queue[0]
            self.started.append(prompt["1"]["inputs"]["seed"])
            await self.events_out.put({"type": "execution_start", "data": {"prompt_id": prompt_id}})
            if self.die_after is not None and len(self.started) > self.die_after:
                self.dead = True  # dies while running this one
                return
            await asyncio.sleep(self.work)
            self.queue.pop(0)
            folder, name = prompt["2"]["inputs"]["filename_prefix"].rsplit("/", 1)
            failed = prompt["1"]["inputs"]["seed"] == self.fail_seed
            self.history_records[prompt_id] = {
                "outputs": {} if failed else {"2": {"images": [{"filename": f"{name}_00001_.png", "subfolder": folder,
                                                                "type": "output"}]}},
                "status": {"status_str": "error" if failed else "success", "messages": [[
                    "execution_error", {"node_id": "1", "node_type": "Sampler", "exception_type": "ValueError",
                                        "exception_message": "boom"}]] if failed else []}}
            await self.events_out.put({"type": "executing", "data": {"node": None, "prompt_id": prompt_id}})
        self.worker = None

    async def history(self, prompt_id: str) -> dict | None:
        self._alive()
        return self.history_records.get(prompt_id)

    async def download(self, item: dict, dest: Path) -> None:
        self._alive()
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f"{self.url} {item['subfolder']}/{item['filename']}")

    async def events(self):
        yield {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": len(self.queue)}}}}
        while not self.dead:
            try:
                yield await asyncio.wait_for(self.events_out.get(), 0.05)
            except asyncio.TimeoutError:
                continue
        raise ServerDown(f"{self.url}: closed")

    async def running_prompts(self) -> list[str]:
        self._alive()
        return [self.queue[0][0]] if self.queue else []

    async def interrupt(self) -> None:
        self._alive()

    async def delete_queued(self, prompt_ids: list[str]) -> None:
        self._alive()
        self.queue = [q for q in self.queue if q[0] not in prompt_ids[1:]]


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch):
    monkeypatch.setattr(fanout, "POLL_SECONDS", 0.01)


def _jobs(seeds: str):
    prompt = {"1": {"class_type": "Sampler", "inputs": {"seed": 0}},
              "2": {"class_type": "Save", "inputs": {"filename_prefix": "Blendspace/img", "images": ["1", 0]}}}
    jobs, _ = build_jobs(prompt, None, DEFS, [parse_sweep(f"1.seed={seeds}")])
    for job in jobs:
        prefix_outputs(job.prompt, job.name)
    return jobs


def _run(servers, jobs, output: Path, per_server: int = 2) -> Summary:
    summary = Summary()
    progress = Progress(len(jobs), 0, quiet=True)
    asyncio.run(asyncio.wait_for(FanOut(servers, jobs, output, progress, summary, per_server).run(), 30))
    return summary


def _records(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "manifest.jsonl").read_text().splitlines()]


def test_jobs_spread_over_the_servers_and_land_in_job_folders(tmp_path):
    servers = [FakeServer("http://a"), FakeServer("http://b")]
    jobs = _jobs("1..8")
    summary = _run(servers, jobs, tmp_path)
    assert summary.ok and summary.done == 8
    records = _records(tmp_path)
    assert sorted(r["inputs"]["1.seed"] for r in records) == list(range(1, 9))
    assert {r["server"] for r in records} == {"http://a", "http://b"}
    for record in records:
        (rel,) = record["outputs"]
        assert rel == f"{record['job']}/Blendspace/img_00001_.png" and (tmp_path / rel).read_text().startswith(
            record["server"])
    assert not any((tmp_path / ".partial").iterdir())


def test_a_dying_server_loses_no_job_and_runs_none_twice(tmp_path):
    doomed = FakeServer("http://b", work=0.05, die_after=1)
    servers = [FakeServer("http://a"), doomed]
    summary = _run(servers, _jobs("1..6"), tmp_path)
    assert summary.ok and summary.done == 6
    records = _records(tmp_path)
    assert sorted(r["inputs"]["1.seed"] for r in records) == [1, 2, 3, 4, 5, 6], "each job exactly once"
    lost = doomed.started[-1]
    assert next(r for r in records if r["inputs"]["1.seed"] == lost)["server"] == "http://a", "re-queued"
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert files == sorted(r["outputs"][0] for r in records)


def test_when_every_server_is_gone_the_run_stops_and_says_so(tmp_path):
    servers = [FakeServer("http://a", die_after=1), FakeServer("http://b", die_after=1)]
    with pytest.raises(FanOutError, match="every server is gone; .* rerun the same command to resume"):
        _run(servers, _jobs("1..6"), tmp_path, per_server=1)


def test_refused_and_failed_jobs_are_recorded_and_the_rest_run(tmp_path):
    servers = [FakeServer("http://a", fail_seed=2)]
    summary = _run(servers, _jobs("-1..3"), tmp_path)
    assert (summary.done, summary.failed, summary.ok) == (3, 2, False)
    failed = {r["inputs"]["1.seed"]: r["error"] for r in _records(tmp_path) if r["status"] == "failed"}
    assert failed == {-1: "ComfyUI refused the prompt: bad seed", 2: "node 1 (Sampler): ValueError: boom"}


def test_the_manifest_keeps_run_time_and_queue_wait_apart(tmp_path):
    """One server, two of our prompts on it at a time: the second waits in its queue while the first runs, and its
    line says so instead of counting the wait as running time."""
    work = 0.3
    summary = _run([FakeServer("http://a", work=work)], _jobs("1..4"), tmp_path, per_server=2)
    assert summary.ok
    records = sorted(_records(tmp_path), key=lambda r: r["index"])
    assert all(work * 0.9 <= r["run_seconds"] < work * 2.5 for r in records), [r["run_seconds"] for r in records]
    assert records[0]["queue_seconds"] < work * 0.5, "the first job starts at once"
    assert all(r["queue_seconds"] >= work * 0.8 for r in records[1:]), [r["queue_seconds"] for r in records]


def test_timings_come_from_the_servers_own_stamps_when_it_writes_them():
    from blendspace_tools.fanout import server_timing
    record = {"status": {"messages": [["execution_start", {"prompt_id": "p", "timestamp": 1_000_000}],
                                      ["execution_success", {"prompt_id": "p", "timestamp": 1_002_500}]]}}
    timing = server_timing(record, queued=10.0, started=14.0, now=17.0)
    assert (timing.run, timing.queue) == (2.5, 4.0)
    assert (server_timing({}, queued=10.0, started=14.0, now=17.0).run, ) == (3.0, )
    unknown = server_timing({}, queued=10.0, started=None, now=17.0)
    assert (unknown.run, unknown.queue) == (None, None), "never a made-up split"
