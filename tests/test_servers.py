"""``python -m blendspace run --server``: sweeps fanned out over two real ComfyUI servers on 127.0.0.1.

The two servers are started once for the module with ``python -m blendspace serve --with-test-pack --api-only``
(tiny random models, CPU), each on a free port with its own input and output folders, and stopped
at the end; the last test checks that no process of any server this session started is left. A
third, short-lived server checks that ``serve`` leaves nothing in the system temp folder and writes
nothing into the ComfyUI folder.
The workflow is built here from the servers' own node definitions and loads a local image, so
every run converts, uploads, queues, follows the websocket and downloads for real.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from comfy_servers import (
    REPO,
    free_port,
    leftover_processes,
    share_cores,
    start_server,
    tiny_img2img_workflow,
    write_start_image,
)

from blendspace_tools.workflow import ui_to_api

RUN_TIMEOUT = 600


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    work = tmp_path_factory.mktemp("servers")
    started = [start_server(work / name, with_test_pack=True, api_only=True, input_dir=work / name / "input",
                            env=share_cores(2)) for name in "ab"]
    try:
        for server in started:
            server.wait_ready()
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="module")
def workflow(servers, tmp_path_factory):
    """The tiny img2img workflow as a UI file, beside its local input image."""
    folder = tmp_path_factory.mktemp("workflow")
    write_start_image(folder)
    path = folder / "tiny.json"
    path.write_text(json.dumps(tiny_img2img_workflow(servers[0])))
    return path


def _run(workflow: Path, *args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "blendspace", "run", str(workflow), "--input", str(workflow.parent), *args]
    return subprocess.run(cmd, cwd=str(REPO), capture_output=True, text=True, timeout=timeout)


def _on(*servers) -> list[str]:
    return [arg for s in servers for arg in ("--server", s.url)]


def _manifest(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "manifest.jsonl").read_text().splitlines()]


def _pngs(output: Path) -> list[Path]:
    return sorted(p for p in output.rglob("*.png") if ".partial" not in p.parts)


def _history_size(server) -> int:
    return len(server.get("/history"))


def test_a_sweep_spreads_over_both_servers_and_every_output_arrives(servers, workflow, tmp_path):
    output = tmp_path / "out"
    res = _run(workflow, *_on(*servers), "--sweep", "Sampler.seed=1..6", "--output", str(output))
    assert res.returncode == 0, res.stderr[-3000:]
    records = _manifest(output)
    assert len(records) == 6 and {r["status"] for r in records} == {"done"}
    assert sorted(r["inputs"]["Sampler.seed"] for r in records) == [1, 2, 3, 4, 5, 6]
    assert {r["server"] for r in records} == {s.url for s in servers}, "both servers get jobs"
    assert all(r["prompt_id"] and r["run_seconds"] > 0 and r["queue_seconds"] >= 0 for r in records)
    files = _pngs(output)
    assert len(files) == 6 and sorted(str(f.relative_to(output)) for f in files) == \
        sorted(f for r in records for f in r["outputs"])
    assert sorted(res.stdout.split()) == sorted(str(f) for f in files), "each file is printed as it lands"
    assert {f.parent.name for f in files} == {r["job"] for r in records}, "one folder per job"
    assert "6 job(s) done, 0 skipped" in res.stderr


def test_a_resumed_run_does_no_repeated_work(servers, workflow, tmp_path):
    output = tmp_path / "out"
    first = _run(workflow, *_on(*servers), "--sweep", "Sampler.seed=1..3", "--output", str(output))
    assert first.returncode == 0, first.stderr[-3000:]
    before = [_history_size(s) for s in servers]
    files = {f: f.stat().st_mtime_ns for f in _pngs(output)}
    again = _run(workflow, *_on(*servers), "--sweep", "Sampler.seed=1,2,3,4", "--output", str(output))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 job(s) done, 3 skipped" in again.stderr
    assert sum(_history_size(s) for s in servers) == sum(before) + 1, "only the new job was queued"
    assert all(f.stat().st_mtime_ns == t for f, t in files.items()), "finished outputs are not rewritten"
    assert len(_manifest(output)) == 4 and len(_pngs(output)) == 4


def test_a_run_goes_on_with_the_servers_that_answer_and_names_the_one_skipped(servers, workflow, tmp_path):
    """Resume is most needed when a server is down: the run skips it, says so, and does the rest on the others."""
    output = tmp_path / "out"
    first = _run(workflow, *_on(servers[0]), "--sweep", "Sampler.seed=31..32", "--output", str(output))
    assert first.returncode == 0, first.stderr[-3000:]
    nobody = f"http://127.0.0.1:{free_port()}"
    again = _run(workflow, "--server", nobody, *_on(servers[0]), "--sweep", "Sampler.seed=31..34", "--output",
                 str(output))
    assert again.returncode == 0, again.stderr[-3000:]
    skipped = [line for line in again.stderr.splitlines() if "skipping" in line]
    assert len(skipped) == 1 and "skipping 1 of 2 server(s) that do not answer" in skipped[0] and nobody in skipped[0]
    assert f"running on {servers[0].url}" in skipped[0]
    assert "2 job(s) done, 2 skipped" in again.stderr
    assert sorted(r["inputs"]["Sampler.seed"] for r in _manifest(output)) == [31, 32, 33, 34]
    assert {r["server"] for r in _manifest(output)} == {servers[0].url}


def test_saved_png_carries_the_jobs_workflow(servers, workflow, tmp_path):
    from PIL import Image
    output = tmp_path / "out"
    res = _run(workflow, *_on(servers[0]), "--set", "Prompt.text=a dog", "--sweep", "Sampler.seed=7",
               "--output", str(output))
    assert res.returncode == 0, res.stderr[-3000:]
    (png,) = _pngs(output)
    with Image.open(png) as image:
        embedded = json.loads(image.text["workflow"])
        ran = json.loads(image.text["prompt"])
    original = json.loads(workflow.read_text())
    assert [n["id"] for n in embedded["nodes"]] == [n["id"] for n in original["nodes"]]
    info = servers[0].get("/object_info", timeout=60)
    reloaded = ui_to_api(embedded, {k: v["input"] for k, v in info.items()})
    sampler = next(k for k, v in reloaded.items() if v["class_type"] == "KSampler")
    assert reloaded[sampler]["inputs"]["seed"] == 7 and ran[sampler]["inputs"]["seed"] == 7
    prompt_node = next(k for k, v in reloaded.items() if v["_meta"]["title"] == "Prompt")
    assert reloaded[prompt_node]["inputs"]["text"] == "a dog"


def test_refused_prompts_are_explained_per_node_and_input(servers, workflow, tmp_path):
    res = _run(workflow, *_on(servers[0]), "--set", "Sampler.sampler_name=no_such_sampler", "--output",
               str(tmp_path / "out"))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "node 6 (KSampler) input 'sampler_name'" in res.stderr, res.stderr[-3000:]


@pytest.mark.parametrize(("args", "message"), [
    (("--set", "Sampler.steps=many"), "'steps' takes a whole number, not 'many'"),
    (("--sweep", "Sampler.denoise=0.5:1.5:0.5"), "'denoise' is at most 1.0"),
    (("--set", "Nowhere.seed=1"), "no node with id, title or type 'Nowhere'"),
    (("--set", "Start image.image=broken.png"), "cannot read image"),
    (("--set", "Start image.image=absent.png"), "'absent.png' is neither in"),
])
def test_bad_input_is_one_clear_line(servers, workflow, tmp_path, args, message):
    (workflow.parent / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    res = _run(workflow, *_on(servers[0]), *args, "--output", str(tmp_path / "out"))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], res.stderr


def test_an_unknown_node_type_is_one_clear_line(servers, workflow, tmp_path):
    broken = json.loads(workflow.read_text())
    broken["nodes"][0]["type"] = "NoSuchNode"
    path = workflow.parent / "unknown.json"
    path.write_text(json.dumps(broken))
    res = _run(path, *_on(servers[0]), "--output", str(tmp_path / "out"))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        "blendspace: unknown node types ['NoSuchNode']: install the custom node pack that provides them "
        "(for Blendspace's own nodes, check that the pack is loaded)."]


def test_emit_api_writes_one_prompt_per_job(servers, workflow, tmp_path):
    res = _run(workflow, *_on(servers[0]), "--sweep", "Sampler.cfg=2,3", "--emit-api", str(tmp_path / "api"),
               "--output", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr[-3000:]
    prompts = sorted((tmp_path / "api").glob("job-*.json"))
    assert len(prompts) == 2 and not (tmp_path / "out").exists()
    cfgs = sorted(json.loads(p.read_text())["6"]["inputs"]["cfg"] for p in prompts)
    assert cfgs == [2, 3]
    single = _run(workflow, *_on(servers[0]), "--set", "Sampler.cfg=4", "--emit-api", str(tmp_path / "one.json"),
                  "--output", str(tmp_path / "out"))
    assert single.returncode == 0, single.stderr[-3000:]
    prompt = json.loads((tmp_path / "one.json").read_text())
    assert prompt["6"]["inputs"]["cfg"] == 4 and prompt["4"]["inputs"]["image"] == "start.png"
    bundled = _run(REPO / "workflows" / "latent_walk.json", *_on(servers[0]), "--smoke", "--emit-api",
                   str(tmp_path / "walk.json"), "--output", str(tmp_path / "out"))
    assert bundled.returncode == 0, bundled.stderr[-3000:]
    walk = json.loads((tmp_path / "walk.json").read_text())
    assert walk["1"]["class_type"] == "BlendspaceTest_TinyCheckpoint", "--smoke swaps loaders for the server's tiny ones"


def test_ctrl_c_stops_our_prompts_and_exits_cleanly(servers, workflow, tmp_path):
    output = tmp_path / "out"
    cmd = [sys.executable, "-m", "blendspace", "run", str(workflow), "--input", str(workflow.parent),
           *_on(servers[0]), "--sweep", "Sampler.seed=100..111", "--output", str(output)]
    proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until(lambda: servers[0].get("/queue")["queue_running"], RUN_TIMEOUT)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert "interrupted" in err and "rerun the same command to resume" in err
    _wait_until(lambda: not any(servers[0].get("/queue").values()), 120)


def _wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_server_killed_mid_sweep_loses_no_job(servers, workflow, tmp_path):
    first, doomed = servers
    output = tmp_path / "out"
    cmd = [sys.executable, "-m", "blendspace", "run", str(workflow), "--input", str(workflow.parent),
           *_on(first, doomed), "--sweep", "Sampler.seed=21..28", "--output", str(output)]
    proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until(lambda: doomed.get("/queue")["queue_running"], RUN_TIMEOUT)
        doomed.kill()
        _, err = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert f"server {doomed.url} lost" in err
    records = _manifest(output)
    assert sorted(r["inputs"]["Sampler.seed"] for r in records) == list(range(21, 29)), "every job once"
    assert {r["status"] for r in records} == {"done"}
    files = _pngs(output)
    assert len(files) == 8 and sorted(f.parent.name for f in files) == sorted(r["job"] for r in records)
    assert not (output / ".partial").exists() or not any((output / ".partial").iterdir())


def test_unreachable_servers_are_listed(workflow, tmp_path):
    nobody = f"http://127.0.0.1:{free_port()}"
    res = _run(workflow, "--server", nobody, "--output", str(tmp_path / "out"), timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach 1 of 1 ComfyUI server(s)" in lines[0] and nobody in lines[0]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts}


def test_serve_leaves_nothing_in_the_temp_folder_or_the_comfyui_folder(tmp_path):
    """A private system temp folder and a private copy of the ComfyUI: after serving and stopping, the temp folder is
    empty and the ComfyUI folder holds what it held (the 2024 ComfyUI, which has no --user-directory, adds only its
    user/ folder); the user settings and database are in serve's work folder."""
    import shutil

    from blendspace_tools.comfyui_locator import comfyui_root
    comfyui = tmp_path / "ComfyUI"
    shutil.copytree(comfyui_root(), comfyui, ignore=shutil.ignore_patterns("__pycache__", "user"))
    before = _files(comfyui)
    (tmp_path / "tmp").mkdir()
    server = start_server(tmp_path / "work", api_only=True, comfyui=comfyui, env={"TMPDIR": str(tmp_path / "tmp")})
    try:
        server.wait_ready()
        assert server.get("/system_stats")
    finally:
        server.stop()
    assert not list((tmp_path / "tmp").iterdir()), list((tmp_path / "tmp").iterdir())
    added = _files(comfyui) - before
    has_user_option = '"--user-directory"' in (comfyui / "comfy" / "cli_args.py").read_text()
    if has_user_option:
        assert not added and (tmp_path / "work" / "user").is_dir(), added
    else:
        assert all(a == "user" or a.startswith("user/") for a in added), added
    assert not _files(comfyui) - before - {a for a in added if a.split("/")[0] == "user"}


def test_serve_became_comfyui_and_no_server_process_is_left(servers):
    import psutil
    alive = [s for s in servers if s.proc.poll() is None]
    for server in alive:
        assert "main.py" in psutil.Process(server.proc.pid).cmdline(), "serve hands its process over to ComfyUI"
        server.stop()
        assert server.proc.returncode is not None
    assert not leftover_processes(), leftover_processes()
