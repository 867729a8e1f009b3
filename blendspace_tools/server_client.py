"""A small client of ComfyUI's own HTTP API (what its web page uses), for running jobs on ComfyUI servers.

Routes used, present in ComfyUI since 2024: ``GET /object_info`` (node definitions, for the UI → API
conversion), ``POST /upload/image``, ``POST /prompt`` (answers 400 with per-node errors when it
refuses a prompt), ``GET /prompt`` (``exec_info.queue_remaining``: how busy the server is),
``GET /history/<prompt id>``, ``GET /view``, ``POST /interrupt``, ``POST /queue`` (delete queued
prompts) and the ``/ws?clientId=…`` websocket, whose ``executing`` message with ``node: null`` says
that a prompt is finished. Uses aiohttp, which ComfyUI itself depends on.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .workflow import describe_execution_error, describe_prompt_errors

TIMEOUT = aiohttp.ClientTimeout(total=60, connect=5)


class ServerDown(ConnectionError):
    """The server did not answer, or answered with a server error: its work must go elsewhere."""


class PromptRejected(ValueError):
    """The server refused a prompt (HTTP 400); the message lists the errors per node and input."""


def normalize_url(url: str) -> str:
    """``host:port`` or ``http://host:port/`` → ``http://host:port`` (a clear error for anything else)."""
    text = url.strip().rstrip("/")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--server {url!r}: give a ComfyUI address such as http://127.0.0.1:8188")
    return text


class ComfyServer:
    """One ComfyUI server, reached through ``session``; every call raises :class:`ServerDown` when it cannot talk
    to the server."""

    def __init__(self, url: str, session: aiohttp.ClientSession, client_id: str | None = None):
        self.url = normalize_url(url)
        self.session = session
        self.client_id = client_id or uuid.uuid4().hex

    def __repr__(self) -> str:
        return f"ComfyServer({self.url})"

    async def _request(self, method: str, route: str, **kwargs) -> tuple[int, bytes]:
        try:
            async with self.session.request(method, self.url + route, timeout=TIMEOUT, **kwargs) as resp:
                body = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            raise ServerDown(f"{self.url}: {type(err).__name__}: {err}".rstrip(": ")) from err
        if resp.status >= 500:
            raise ServerDown(f"{self.url}{route}: HTTP {resp.status}")
        return resp.status, body

    async def _json(self, method: str, route: str, **kwargs) -> Any:
        status, body = await self._request(method, route, **kwargs)
        if status != 200:
            raise ServerDown(f"{self.url}{route}: HTTP {status} {body[:200]!r}")
        try:
            return json.loads(body)
        except ValueError as err:
            raise ServerDown(f"{self.url}{route}: not a ComfyUI answer ({err})") from err

    async def queue_remaining(self) -> int:
        """Prompts queued or running on the server (everyone's, not only ours)."""
        info = await self._json("GET", "/prompt")
        return int(info.get("exec_info", {}).get("queue_remaining", 0))

    async def object_info(self) -> dict:
        """Every node class the server knows, with its inputs as ``INPUT_TYPES()`` gives them."""
        return await self._json("GET", "/object_info")

    async def upload_image(self, path: Path) -> str:
        """Upload a local image into the server's input folder (same name, replacing a file of that name); return
        the name a Load Image node should use there."""
        form = aiohttp.FormData()
        form.add_field("overwrite", "true")
        form.add_field("image", path.read_bytes(), filename=path.name, content_type="application/octet-stream")
        answer = await self._json("POST", "/upload/image", data=form)
        sub = answer.get("subfolder") or ""
        return f"{sub}/{answer['name']}" if sub else answer["name"]

    async def queue_prompt(self, prompt: dict, workflow: dict | None = None) -> str:
        """Queue an API prompt (with the UI workflow for the images' metadata); return its prompt id."""
        extra: dict = {"extra_pnginfo": {"workflow": workflow}} if workflow is not None else {}
        payload = {"prompt": prompt, "client_id": self.client_id, "extra_data": extra}
        status, body = await self._request("POST", "/prompt", json=payload)
        try:
            answer = json.loads(body)
        except ValueError:
            answer = {"error": body[:300].decode(errors="replace")}
        if status == 400:
            raise PromptRejected(describe_prompt_errors(answer.get("error"), answer.get("node_errors")))
        if status != 200 or "prompt_id" not in answer:
            raise ServerDown(f"{self.url}/prompt: HTTP {status} {answer}")
        return answer["prompt_id"]

    async def history(self, prompt_id: str) -> dict | None:
        """The finished prompt's record (``outputs``, ``status``), or None while it is not finished."""
        return (await self._json("GET", f"/history/{prompt_id}")).get(prompt_id)

    async def download(self, item: dict, dest: Path) -> None:
        """Fetch one output file (an ``images`` entry of a node's UI output) through ``/view`` into ``dest``."""
        params = {"filename": item["filename"], "subfolder": item.get("subfolder", ""), "type": item.get("type", "output")}
        status, body = await self._request("GET", "/view", params=params)
        if status != 200:
            raise ServerDown(f"{self.url}/view {params}: HTTP {status}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(body)

    async def running_prompts(self) -> list[str]:
        """Ids of the prompts the server is executing now (``GET /queue``)."""
        queue = await self._json("GET", "/queue")
        return [item[1] for item in queue.get("queue_running", []) if isinstance(item, list) and len(item) > 1]

    async def interrupt(self) -> None:
        await self._request("POST", "/interrupt")

    async def delete_queued(self, prompt_ids: list[str]) -> None:
        """Take prompts that have not started off the server's queue."""
        if prompt_ids:
            await self._request("POST", "/queue", json={"delete": prompt_ids})

    async def events(self) -> AsyncIterator[dict]:
        """The server's websocket messages for our client id, as ``{"type", "data"}`` dicts (binary previews are
        skipped); ends when the connection closes. Raises :class:`ServerDown` when it cannot connect."""
        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        try:
            async with self.session.ws_connect(ws_url, heartbeat=10) as ws:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        yield json.loads(msg.data)
                    elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                        return
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            raise ServerDown(f"{self.url}/ws: {type(err).__name__}: {err}") from err


def started_prompt(message: dict) -> str | None:
    """The prompt id a websocket message reports as starting to run (``execution_start``), else None."""
    data = message.get("data") or {}
    return data.get("prompt_id") if message.get("type") == "execution_start" else None


def run_seconds(record: dict) -> float | None:
    """How long a finished prompt ran on the server, from the start and end timestamps ComfyUI writes into its
    history (a current ComfyUI does; the 2024 one writes none: None)."""
    stamps = {}
    for entry in (record.get("status") or {}).get("messages") or []:
        if isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[1], dict):
            stamps[entry[0]] = entry[1].get("timestamp")
    start = stamps.get("execution_start")
    end = next((stamps[e] for e in ("execution_success", "execution_error", "execution_interrupted")
                if isinstance(stamps.get(e), (int, float))), None)
    if not isinstance(start, (int, float)) or end is None:
        return None
    return max(0.0, (end - start) / 1000)


def finished_prompt(message: dict) -> str | None:
    """The prompt id a websocket message reports as finished (``executing`` with no node), else None."""
    data = message.get("data") or {}
    if message.get("type") == "executing" and data.get("node") is None and data.get("prompt_id"):
        return data["prompt_id"]
    if message.get("type") in ("execution_success", "execution_error", "execution_interrupted"):
        return data.get("prompt_id")
    return None


def output_files(record: dict) -> list[dict]:
    """The files a finished prompt saved (``type`` output; previews in the temp folder are left out)."""
    items = []
    for ui in (record.get("outputs") or {}).values():
        for key in ("images", "gifs", "animated", "audio", "video"):
            for item in (ui or {}).get(key, []) if isinstance(ui, dict) else []:
                if isinstance(item, dict) and "filename" in item and item.get("type", "output") == "output":
                    items.append(item)
    return items


def execution_error(record: dict) -> str | None:
    """Why a finished prompt failed (the node and ComfyUI's exception message), or None if it succeeded."""
    status = record.get("status") or {}
    if status.get("status_str", "success") == "success":
        return None
    for event, data in status.get("messages", []):
        if event in ("execution_error", "execution_interrupted"):
            return describe_execution_error(event, data)
    return f"failed ({status.get('status_str')})"
