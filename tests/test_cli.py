"""The command line without servers: sweep specs, jobs, manifest and resume, error messages, ``serve``'s command,
and a sweep run in this process with the workflow written into the saved PNGs."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from comfy_harness import REPO

from blendspace_tools.cli import main, serve_command
from blendspace_tools.fanout import Manifest, pending_jobs
from blendspace_tools.runner import node_definitions
from blendspace_tools.sweep import build_jobs, combinations, expand_values, parse_sweep, prefix_outputs, prompt_key
from blendspace_tools.workflow import (
    UIGraph,
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
    ("Other.seed=3", "no node with id or title 'Other'"),
])
def test_bad_values_name_the_node_and_input(item, message):
    with pytest.raises(WorkflowError, match=re.escape(message)):
        build_jobs(_prompt(), None, DEFS, [parse_sweep(item)])


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
    manifest.append(jobs[0], "done", "http://a", "p1", [f"{jobs[0].name}/a.png"], 1.0)
    manifest.append(jobs[1], "done", "http://a", "p2", [f"{jobs[1].name}/gone.png"], 1.0)
    manifest.append(jobs[2], "failed", "http://b", "p3", [], 1.0, "boom")
    todo, skipped = pending_jobs(jobs, manifest)
    assert skipped == 1 and [j.index for j in todo] == [2, 3]
    line = manifest.records()[0]
    assert line["inputs"] == {"1.seed": 1} and line["server"] == "http://a" and line["prompt_id"] == "p1"


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
    (["--server", "127.0.0.1:1"], "--server needs --output DIR"),
])
def test_bad_options_are_one_line_before_anything_starts(tmp_path, capsys, args, message):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({"1": {"class_type": "KSampler", "inputs": {}}}))
    assert main(["run", str(path), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_serve_command_links_the_packs_and_keeps_files_in_its_folder(tmp_path):
    root = tmp_path / "ComfyUI"
    (root / "comfy").mkdir(parents=True)
    (root / "comfy" / "cli_args.py").write_text('parser.add_argument("--disable-api-nodes")\n'
                                                'parser.add_argument(\n    "--front-end-root",\n)\n')
    args = argparse.Namespace(listen="127.0.0.1", port=8190, gpu=False, with_test_pack=True, input=str(tmp_path / "in"),
                              api_only=True)
    cmd = serve_command(root, tmp_path / "work", args)
    assert cmd[:2] == [sys.executable, "main.py"] and "--cpu" in cmd and "--disable-api-nodes" in cmd
    assert (Path(cmd[cmd.index("--front-end-root") + 1]) / "index.html").is_file()
    assert cmd[cmd.index("--temp-directory") + 1] == str(tmp_path / "work")
    assert cmd[cmd.index("--input-directory") + 1] == str((tmp_path / "in").resolve())
    links = tmp_path / "work" / "custom_nodes"
    assert (links / "Blendspace").resolve() == REPO and (links / "BlendspaceTesting").resolve() == \
        REPO / "tests" / "testing_pack"
    (root / "comfy" / "cli_args.py").write_text("")
    args.with_test_pack, args.input, args.gpu = False, None, True
    cmd = serve_command(root, tmp_path / "work2", args)
    assert "--cpu" not in cmd and "--disable-api-nodes" not in cmd and "--input-directory" not in cmd
    assert "--front-end-root" not in cmd, "a 2024 ComfyUI has no such option (its page is in its own folder)"
    assert [p.name for p in (tmp_path / "work2" / "custom_nodes").iterdir()] == ["Blendspace"]


def test_both_entry_points_answer():
    for module in ("blendspace", "blendspace_tools"):
        res = subprocess.run([sys.executable, "-m", module, "run", "--help"], cwd=str(REPO), capture_output=True,
                             text=True, timeout=120)
        assert res.returncode == 0 and "--sweep" in res.stdout and "--server" in res.stdout, res.stderr


def _tiny_workflow(comfy) -> dict:
    defs, outs = node_definitions(comfy.nodes)
    g = UIGraph(defs, outs)
    ckpt = g.add("CheckpointLoaderSimple", {"ckpt_name": "sd-v1-4.ckpt"})
    positive = g.add("CLIPTextEncode", {"text": "a cat"}, title="Prompt", inputs={"clip": (ckpt, 1)})
    negative = g.add("CLIPTextEncode", {"text": ""}, inputs={"clip": (ckpt, 1)})
    latent = g.add("EmptyLatentImage", {"width": 64, "height": 64, "batch_size": 1})
    sampled = g.add("KSampler", {"seed": 1, "steps": 2, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal",
                                 "denoise": 1.0}, title="Sampler",
                    inputs={"model": (ckpt, 0), "positive": (positive, 0), "negative": (negative, 0),
                            "latent_image": (latent, 0)})
    decoded = g.add("VAEDecode", inputs={"samples": (sampled, 0), "vae": (ckpt, 2)})
    g.add("SaveImage", {"filename_prefix": "tiny"}, inputs={"images": (decoded, 0)})
    return g.to_json()


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


def test_a_sweep_runs_in_process_and_resumes(comfy, tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(_tiny_workflow(comfy)))
    output = tmp_path / "out"
    cmd = [sys.executable, "-m", "blendspace", "run", str(path), "--smoke", "--sweep", "Sampler.seed=3,4",
           "--output", str(output)]
    res = subprocess.run(cmd, cwd=str(REPO), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    records = [json.loads(line) for line in (output / "manifest.jsonl").read_text().splitlines()]
    assert [r["inputs"] for r in records] == [{"Sampler.seed": 3}, {"Sampler.seed": 4}]
    assert all(r["status"] == "done" and r["server"] == "in-process" and len(r["outputs"]) == 1 for r in records)
    from PIL import Image
    for record in records:
        with Image.open(output / record["outputs"][0]) as png:
            embedded = json.loads(png.text["workflow"])
        sampler = next(n for n in embedded["nodes"] if n.get("title") == "Sampler")
        assert sampler["widgets_values"][0] == record["inputs"]["Sampler.seed"]
    again = subprocess.run(cmd, cwd=str(REPO), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 job(s) done, 2 skipped" in again.stderr, again.stderr[-3000:]
