"""The command line without servers: sweep specs, jobs, manifest and resume, nodes found by id, title or type,
error messages (a missing ComfyUI, evaluate's arguments), ``serve``'s command and work folder, and runs in this
process: the workflow written into the saved PNGs, outputs in ./output printed as they land, nothing left in the
system temp folder, the work folder or the ComfyUI folder, also after Ctrl-C."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from comfy_harness import REPO, tiny_ui_workflow

from blendspace_tools.cli import main, serve_command, serve_folder
from blendspace_tools.fanout import Manifest, Timing, pending_jobs
from blendspace_tools.runner import node_definitions
from blendspace_tools.sweep import build_jobs, combinations, expand_values, parse_sweep, prefix_outputs, prompt_key
from blendspace_tools.workflow import (
    WorkflowError,
    describe_execution_error,
    describe_prompt_errors,
    load_workflow_file,
    ui_to_api,
    value_problem,
)

DEFS = {
    "Sampler": {"required": {"model": ("MODEL",), "seed": ("INT", {"default": 0, "min": 0}),
                             "cfg": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 30.0}),
                             "name": (["euler", "ddim"],), "flag": ("BOOLEAN", {"default": True})}},
    "Save": {"required": {"filename_prefix": ("STRING", {"default": "x"}), "images": ("IMAGE",)}},
}


@pytest.mark.parametrize(("raw", "values"), [
    ("1,2,3", [1, 2, 3]),
    ("0.1:0.9:0.2", [0.1, 0.3, 0.5, 0.7, 0.9]),
    ("0:1:0.3", [0.0, 0.3, 0.6, 0.9]),
    ("1:10:4", [1, 5, 9]),
    ("5:1:-2", [5, 3, 1]),
    ("1..4", [1, 2, 3, 4]),
    ("3..1", [3, 2, 1]),
    ("1..2, 7, 0.5:1:0.5", [1, 2, 7, 0.5, 1.0]),
    ("euler,ddim", ["euler", "ddim"]),
    ("true,false", [True, False]),
    ('["a cat, sitting", "a: dog", 3]', ["a cat, sitting", "a: dog", 3]),
])
def test_sweep_values(raw, values):
    assert expand_values(raw) == values
    assert all(type(a) is type(b) for a, b in zip(expand_values(raw), values, strict=True))


BAD_SWEEPS = {  # spec → what the error says
    "seed=1,2": "use NODE.INPUT=VALUE", "3.seed=": "no values", "3.seed=1:5": "START:STOP:STEP",
    "3.seed=1:5:0": "never goes from 1 to 5", "3.seed=5:1:1": "never goes from 5 to 1",
    "3.seed=a:b:1": "is not a number", "3.seed=[1, 2": "does not parse", "3.seed=[]": "no values",
    "3.seed=0:1:0.0000001": "too many",
}


@pytest.mark.parametrize(("item", "message"), BAD_SWEEPS.items())
def test_bad_sweep_specs_say_what_to_write(item, message):
    with pytest.raises(WorkflowError, match=re.escape(message)):
        parse_sweep(item)


def _prompt():
    return {"1": {"class_type": "Sampler", "inputs": {"seed": 1, "cfg": 7.0, "name": "euler", "flag": True,
                                                       "model": ["9", 0]}, "_meta": {"title": "KS"}},
            "2": {"class_type": "Save", "inputs": {"filename_prefix": "out/img", "images": ["1", 0]},
                  "_meta": {"title": "Save"}}}


def test_jobs_are_the_cartesian_product_first_sweep_slowest():
    sweeps = [parse_sweep("KS.seed=1..2"), parse_sweep("1.cfg=5,6,7")]
    assert [tuple(c.values()) for c in combinations(sweeps)] == [(1, 5), (1, 6), (1, 7), (2, 5), (2, 6), (2, 7)]
    ui = {"nodes": [{"id": 1, "type": "Sampler", "title": "KS", "widgets_values": [1, "fixed", 7.0, "euler", True]},
                    {"id": 2, "type": "Save", "widgets_values": ["out/img"]}]}
    jobs, merged = build_jobs(_prompt(), ui, DEFS, sweeps)
    assert merged == 0 and [j.index for j in jobs] == list(range(1, 7))
    assert [(j.prompt["1"]["inputs"]["seed"], j.prompt["1"]["inputs"]["cfg"]) for j in jobs][:2] == [(1, 5), (1, 6)]
    assert jobs[4].workflow["nodes"][0]["widgets_values"] == [2, "fixed", 6, "euler", True]
    assert ui["nodes"][0]["widgets_values"][0] == 1, "the workflow itself is not changed"
    assert len({j.key for j in jobs}) == 6 and all(j.name == f"job-{j.index:04d}-{j.key[:8]}" for j in jobs)
    prefix_outputs(jobs[0].prompt, jobs[0].name)
    assert jobs[0].prompt["2"]["inputs"]["filename_prefix"] == f"{jobs[0].name}/out/img"


def test_identical_jobs_run_once_and_keys_ignore_titles():
    capped = lambda p: {**p, "1": {**p["1"], "inputs": {**p["1"]["inputs"], "cfg": 1.0}}}  # noqa: E731
    jobs, merged = build_jobs(_prompt(), None, DEFS, [parse_sweep("1.cfg=5,6")], capped)
    assert len(jobs) == 1 and merged == 1
    renamed = _prompt()
    renamed["1"]["_meta"]["title"] = "other"
    assert prompt_key(renamed) == prompt_key(_prompt())


@pytest.mark.parametrize(("item", "message"), [
    ("KS.cfg=hot", "'cfg' takes a number, not 'hot'"),
    ("KS.cfg=31", "'cfg' is at most 30.0"),
    ("KS.seed=1.5", "'seed' takes a whole number"),
    ("KS.flag=3", "'flag' takes true or false"),
    ("KS.model=3", "'model' is a MODEL socket"),
    ("KS.sed=3", "there is no input 'sed'; the inputs are model, seed, cfg, name, flag"),
    ("Other.seed=3", "no node with id, title or type 'Other'"),
])
def test_bad_values_name_the_node_and_input(item, message):
    with pytest.raises(WorkflowError, match=re.escape(message)):
        build_jobs(_prompt(), None, DEFS, [parse_sweep(item)])


def test_nodes_are_found_by_id_title_or_a_type_that_occurs_once():
    first = _prompt()["2"]
    prompt = {**_prompt(), "2": {**first, "_meta": {"title": "First"}},
              "3": {"class_type": "Save", "inputs": {"filename_prefix": "b", "images": ["1", 0]},
                    "_meta": {"title": "Second"}}}
    (job,) = build_jobs(prompt, None, DEFS, [parse_sweep("Sampler.seed=9")])[0]
    assert job.prompt["1"]["inputs"]["seed"] == 9, "the only Sampler, found by its type"
    (job,) = build_jobs(prompt, None, DEFS, [parse_sweep("Second.filename_prefix=x")])[0]
    assert job.prompt["3"]["inputs"]["filename_prefix"] == "x" and job.prompt["2"]["inputs"]["filename_prefix"] == \
        "out/img", "a title names its node only"
    with pytest.raises(WorkflowError, match=re.escape("--sweep Save: 2 nodes have the type 'Save' (ids 2, 3); name "
                                                      "one by its id or its title, e.g. --sweep 2.INPUT=...")):
        build_jobs(prompt, None, DEFS, [parse_sweep("Save.filename_prefix=x")])
    titled = {**prompt, "1": {**prompt["1"], "_meta": {"title": "Save"}}}
    (job,) = build_jobs(titled, None, DEFS, [parse_sweep("Save.seed=4")])[0]
    assert job.prompt["1"]["inputs"]["seed"] == 4, "a title that is also a type names the titled node"
    ui = {"nodes": [{"id": 1, "type": "Sampler", "widgets_values": [1, "fixed", 7.0, "euler", True]},
                    {"id": 2, "type": "Save", "widgets_values": ["out/img"]}]}
    (job,) = build_jobs(_prompt(), ui, DEFS, [parse_sweep("Sampler.cfg=3")])[0]
    assert job.workflow["nodes"][0]["widgets_values"][2] == 3, "the PNG's workflow shows the value set by type"


def test_value_check_accepts_what_comfyui_accepts():
    assert value_problem(DEFS["Sampler"], "seed", 3) is None
    assert value_problem(DEFS["Sampler"], "seed", 3.0) is None
    assert value_problem(DEFS["Sampler"], "cfg", 2) is None
    assert value_problem(DEFS["Sampler"], "name", "anything") is None  # combos: ComfyUI checks its own lists


def test_manifest_resume_needs_the_line_and_the_files(tmp_path):
    jobs, _ = build_jobs(_prompt(), None, DEFS, [parse_sweep("1.seed=1..3")])
    manifest = Manifest(tmp_path)
    (tmp_path / jobs[0].name).mkdir()
    (tmp_path / jobs[0].name / "a.png").write_bytes(b"x")
    manifest.append(jobs[0], "done", "http://a", "p1", [f"{jobs[0].name}/a.png"], Timing(1.0, 2.5))
    manifest.append(jobs[1], "done", "http://a", "p2", [f"{jobs[1].name}/gone.png"], Timing(1.0))
    manifest.append(jobs[2], "failed", "http://b", "p3", [], Timing(None, None), "boom")
    todo, skipped = pending_jobs(jobs, manifest)
    assert skipped == 1 and [j.index for j in todo] == [2, 3]
    line = manifest.records()[0]
    assert line["inputs"] == {"1.seed": 1} and line["server"] == "http://a" and line["prompt_id"] == "p1"
    assert (line["run_seconds"], line["queue_seconds"]) == (1.0, 2.5)
    assert (manifest.records()[2]["run_seconds"], manifest.records()[2]["queue_seconds"]) == (None, None)


def test_comfyui_refusals_are_put_in_words():
    answer = {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                        "details": "", "extra_info": {}},
              "node_errors": {"3": {"class_type": "KSampler", "dependent_outputs": ["9"], "errors": [
                  {"type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1",
                   "details": "steps", "extra_info": {"input_name": "steps"}}]}}}
    text = describe_prompt_errors(answer["error"], answer["node_errors"])
    assert text.splitlines() == ["ComfyUI refused the prompt: Prompt outputs failed validation",
                                 "  node 3 (KSampler) input 'steps': Value 0 smaller than min of 1: steps"]
    error = {"node_id": "7", "node_type": "LoadImage", "exception_type": "PIL.UnidentifiedImageError",
             "exception_message": "cannot identify\nimage file", "traceback": ["..."]}
    assert describe_execution_error("execution_error", error) == \
        "node 7 (LoadImage): PIL.UnidentifiedImageError: cannot identify image file"


@pytest.mark.parametrize(("content", "message"), [
    ('{"nodes": [{"id": 1, "type": "KSampler"', "is not valid JSON (Expecting"),
    ("not json at all", "is not valid JSON"),
    ('{"a": 1}', "is neither a UI workflow"),
    (None, "no such file"),
])
def test_unreadable_workflow_files_are_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "wf.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(WorkflowError, match=re.escape(message)):
        load_workflow_file(path)
    assert main(["run", str(path), "--smoke"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("blendspace: ") and message in err[0]


@pytest.mark.parametrize(("args", "message"), [
    (["--sweep", "3.seed=1:5"], "START:STOP:STEP"),
    (["--set", "seed=1"], "use NODE.INPUT=VALUE"),
    (["--server", "ftp://x"], "give a ComfyUI address"),
    (["--set", "1.seed=2", "--comfyui", "/nonexistent/ComfyUI"], "--comfyui /nonexistent/ComfyUI: there is no folder"),
])
def test_bad_options_are_one_line_before_anything_starts(tmp_path, capsys, args, message):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({"1": {"class_type": "KSampler", "inputs": {}}}))
    assert main(["run", str(path), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def _fake_comfyui(root: Path, options: str) -> Path:
    (root / "comfy").mkdir(parents=True)
    (root / "nodes.py").write_text("")
    (root / "comfy" / "cli_args.py").write_text(options)
    return root


CURRENT_OPTIONS = ('parser.add_argument("--disable-api-nodes")\nparser.add_argument(\n    "--front-end-root",\n)\n'
                   'parser.add_argument("--user-directory", type=is_valid_directory)\n'
                   'parser.add_argument("--database-url", type=str)\n')


def test_serve_command_links_the_packs_and_keeps_files_in_its_folder(tmp_path):
    root = _fake_comfyui(tmp_path / "ComfyUI", CURRENT_OPTIONS)
    args = argparse.Namespace(listen="127.0.0.1", port=8190, gpu=False, with_test_pack=True, input=str(tmp_path / "in"),
                              api_only=True, output=str(tmp_path / "out"))
    work = tmp_path / "work"
    cmd = serve_command(root, work, args)
    assert cmd[:2] == [sys.executable, "main.py"] and "--cpu" in cmd and "--disable-api-nodes" in cmd
    assert (Path(cmd[cmd.index("--front-end-root") + 1]) / "index.html").is_file()
    assert cmd[cmd.index("--temp-directory") + 1] == str(work)
    assert cmd[cmd.index("--output-directory") + 1] == str((tmp_path / "out").resolve())
    assert cmd[cmd.index("--input-directory") + 1] == str((tmp_path / "in").resolve())
    assert cmd[cmd.index("--user-directory") + 1] == str(work / "user") and (work / "user").is_dir()
    assert cmd[cmd.index("--database-url") + 1] == f"sqlite:///{work / 'user' / 'comfyui.db'}"
    links = work / "custom_nodes"
    assert (links / "Blendspace").resolve() == REPO and (links / "BlendspaceTesting").resolve() == \
        REPO / "tests" / "testing_pack"
    (root / "comfy" / "cli_args.py").write_text("")
    args.with_test_pack, args.input, args.gpu = False, None, True
    cmd = serve_command(root, tmp_path / "work2", args)
    assert "--cpu" not in cmd and "--disable-api-nodes" not in cmd and "--input-directory" not in cmd
    assert "--front-end-root" not in cmd, "a 2024 ComfyUI has no such option (its page is in its own folder)"
    assert "--user-directory" not in cmd and "--database-url" not in cmd, "nor these: it keeps user/ in its folder"
    assert [p.name for p in (tmp_path / "work2" / "custom_nodes").iterdir()] == ["Blendspace"]


def test_serve_keeps_its_work_folder_in_the_packs_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDSPACE_CACHE", str(tmp_path / "cache"))
    args = argparse.Namespace(workdir=None, port=8191)
    assert serve_folder(args) == (tmp_path / "cache" / "serve-8191").resolve() and serve_folder(args).is_dir()
    args.workdir = str(tmp_path / "mine")
    assert serve_folder(args) == (tmp_path / "mine").resolve()


@pytest.mark.parametrize("command", [
    ["run", "{wf}", "--smoke"], ["serve"], ["models", "{wf}"], ["build-workflows", "--dest", "{tmp}/built"],
])
@pytest.mark.parametrize(("where", "message"), [
    ("{tmp}/no/such/ComfyUI", "there is no folder"),
    ("{tmp}", "is not a ComfyUI folder (it has no nodes.py and comfy/)"),
])
def test_a_missing_or_wrong_comfyui_folder_is_one_line(tmp_path, capsys, monkeypatch, command, where, message):
    wf = tmp_path / "wf.json"
    wf.write_text(json.dumps({"1": {"class_type": "KSampler", "inputs": {}}}))
    folder = where.format(tmp=tmp_path)
    monkeypatch.chdir(tmp_path)
    for way in ("option", "environment"):
        argv = [part.format(wf=wf, tmp=tmp_path) for part in command]
        if way == "option":
            argv += ["--comfyui", folder]
            origin = f"--comfyui {folder}"
        else:
            monkeypatch.setenv("COMFYUI_PATH", folder)
            origin = f"COMFYUI_PATH={folder}"
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and origin in err[0] and message in err[0], err
    assert not (tmp_path / "output").exists(), "nothing is made before the ComfyUI is found"


def _evaluation_folders(tmp_path: Path) -> None:
    from PIL import Image
    for folder in (tmp_path / "out", tmp_path / "photos"):
        folder.mkdir()
        Image.new("RGB", (32, 32), (120, 80, 40)).save(folder / "bear.png")


@pytest.mark.parametrize(("args", "message"), [
    (["--open-clip", "{tmp}/nothing.safetensors"], "--open-clip {tmp}/nothing.safetensors: there is no such file"),
    (["--open-clip", "{tmp}"], "--open-clip {tmp}: not a file"),
    (["--open-clip", "{tmp}/weights.safetensors"],
     "weights.safetensors does not fit the ViT-B-32-quickgelu architecture"),
    (["--open-clip", "{tmp}/weights.safetensors", "--architecture", "NoSuchNet"],
     "open_clip has no architecture 'NoSuchNet'"),
    (["--open-clip", "{tmp}/weights.safetensors", "--results", "{tmp}/none", "--originals", "{tmp}/photos"],
     "--results {tmp}/none: there is no such folder"),
    (["--open-clip", "{tmp}/weights.safetensors", "--vgg19", "{tmp}/vgg.pth"], "--vgg19 needs --style-refs"),
    (["--open-clip", "{tmp}/weights.safetensors", "--vgg19", "{tmp}/vgg.pth", "--style-refs", "{tmp}/out"],
     "--vgg19 {tmp}/vgg.pth: there is no such file"),
])
def test_evaluate_says_what_is_wrong_with_any_argument(tmp_path, capsys, args, message):
    """The README's evaluate example gave tracebacks for a missing weights file or folder; every argument is now
    checked before a model is built, and what the model loader refuses is one line too."""
    import torch
    from safetensors.torch import save_file
    _evaluation_folders(tmp_path)
    save_file({"not.a.clip": torch.zeros(2)}, str(tmp_path / "weights.safetensors"))
    texts = ["--encode-text", "a bear", "--decode-text", "a painted bear"]
    argv = [a.format(tmp=tmp_path) for a in args]
    if "--results" not in argv:
        argv += ["--results", str(tmp_path / "out"), "--originals", str(tmp_path / "photos")]
    assert main(["evaluate", *argv, *texts]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    expected = message.format(tmp=tmp_path)
    assert len(err) == 1 and err[0].startswith("blendspace evaluate: ") and expected in err[0], err
    assert main(["evaluate", "--open-clip", str(tmp_path / "weights.safetensors")]) == 1
    assert "give --manifest, or --results, --originals, --encode-text and --decode-text" in capsys.readouterr().err


def test_both_entry_points_answer():
    for module in ("blendspace", "blendspace_tools"):
        res = subprocess.run([sys.executable, "-m", module, "run", "--help"], cwd=str(REPO), capture_output=True,
                             text=True, timeout=120)
        assert res.returncode == 0 and "--sweep" in res.stdout and "--server" in res.stdout, res.stderr


def _tiny_workflow(comfy) -> dict:
    return tiny_ui_workflow(comfy)


def test_in_process_execution_writes_the_workflow_into_pngs(comfy):
    from PIL import Image

    from blendspace_tools.runner import execute, smoke_prompt
    workflow = _tiny_workflow(comfy)
    prompt, _ = smoke_prompt(ui_to_api(workflow, node_definitions(comfy.nodes)[0]))
    outputs = execute(comfy.session, prompt, workflow=workflow)
    (item,) = outputs["7"]["images"]
    with Image.open(Path(comfy.folder_paths.get_output_directory(), item["subfolder"], item["filename"])) as png:
        assert json.loads(png.text["workflow"]) == workflow
        assert json.loads(png.text["prompt"])["5"]["inputs"]["seed"] == 1


def _files(root: Path) -> set[str]:
    """Every file and folder under ``root`` (Python's byte-code caches left out)."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts}


def _private_run_env(tmp_path: Path) -> dict:
    """A private system temp folder and pack cache (where the run's work folder goes), both empty."""
    (tmp_path / "tmp").mkdir()
    return {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "BLENDSPACE_CACHE": str(tmp_path / "cache"),
            "PYTHONPATH": str(REPO)}


def test_a_sweep_runs_in_process_and_resumes(comfy, tmp_path):
    """Outputs land in ./output (named at the start, each file printed as it lands), the manifest has run and queue
    times apart, and nothing is left in the system temp folder, the pack's cache or the ComfyUI folder."""
    import shutil
    comfyui = tmp_path / "ComfyUI"  # a private copy, so that only this run's writes are seen
    shutil.copytree(comfy.root, comfyui, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(comfyui / "input" / "3d", ignore_errors=True)  # the current Load 3D makes it when asked its inputs
    before = _files(comfyui)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(_tiny_workflow(comfy)))
    cmd = [sys.executable, "-m", "blendspace", "run", str(path), "--smoke", "--sweep", "Sampler.seed=3,4",
           "--comfyui", str(comfyui)]
    env = _private_run_env(tmp_path)
    res = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    output = tmp_path / "output"
    assert f"blendspace: outputs go to {output}" in res.stderr.splitlines(), "named before the jobs run"
    records = [json.loads(line) for line in (output / "manifest.jsonl").read_text().splitlines()]
    assert [r["inputs"] for r in records] == [{"Sampler.seed": 3}, {"Sampler.seed": 4}]
    assert all(r["status"] == "done" and r["server"] == "in-process" and len(r["outputs"]) == 1 for r in records)
    assert all(r["run_seconds"] > 0 and r["queue_seconds"] == 0 for r in records)
    assert [line for line in res.stdout.splitlines() if line.strip()] == [str(output / r["outputs"][0])
                                                                         for r in records]
    from PIL import Image
    for record in records:
        with Image.open(output / record["outputs"][0]) as png:
            embedded = json.loads(png.text["workflow"])
        sampler = next(n for n in embedded["nodes"] if n.get("title") == "Sampler")
        assert sampler["widgets_values"][0] == record["inputs"]["Sampler.seed"]
    again = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 job(s) done, 2 skipped" in again.stderr, again.stderr[-3000:]
    assert not list((tmp_path / "tmp").iterdir()), "nothing in the system temp folder"
    assert not list((tmp_path / "cache" / "work").iterdir()), "the run's work folder is removed"
    assert _files(comfyui) == before, "nothing written into the ComfyUI folder"


def test_ctrl_c_and_errors_remove_the_runs_work_folder(comfy, tmp_path):
    path = tmp_path / "tiny.json"
    wf = _tiny_workflow(comfy)
    path.write_text(json.dumps(wf))
    env = _private_run_env(tmp_path)
    work = tmp_path / "cache" / "work"
    cmd = [sys.executable, "-m", "blendspace", "run", str(path), "--smoke", "--sweep", "Sampler.seed=1..50",
           "--comfyui", str(comfy.root), "--output", str(tmp_path / "out")]
    proc = subprocess.Popen(cmd, cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "out" / "manifest.jsonl").is_file():  # ComfyUI is up and the first job done
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-3000:]
            time.sleep(0.2)
        assert len(list(work.iterdir())) == 1, "the work folder exists while the run goes on"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err and "rerun the same command to resume" in err, err[-3000:]
    assert not list(work.iterdir()) and not list((tmp_path / "tmp").iterdir())
    wf["nodes"][0]["widgets_values"] = ["no-such-model.ckpt"]
    path.write_text(json.dumps(wf))
    res = subprocess.run([c for c in cmd if c != "--smoke"], cwd=str(tmp_path), env=env, capture_output=True,
                         text=True, timeout=600)  # without --smoke the missing model is an error once ComfyUI is up
    assert res.returncode == 1 and "model file 'no-such-model.ckpt' not found" in res.stderr, res.stderr[-3000:]
    assert not list(work.iterdir()) and not list((tmp_path / "tmp").iterdir())
