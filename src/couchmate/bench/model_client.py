"""What the model client costs on top of the model: image encoding and per-call overhead.

Three measurements, each printed as a table and returned as JSON:

- image encoding: encode_image on 1920x1080 / 1280x720 / 640x480 keyframes (downscale +
  JPEG + base64), and prepare() of a 4-keyframe prompt (the executor hop included).
- client overhead: time to first token through ChatBackend.stream() against a real local
  HTTP server that answers instantly (ScriptedServer), side by side with a bare httpx2
  streaming POST that parses the SSE by hand (the floor for any HTTP client). The difference
  is what couchmate + the openai package add per call.
- optionally the same A/B against a real llama.cpp server on a tiny GGUF (model time
  included in both, so the difference is again the client's).

    python -m couchmate.bench.model_client --calls 200 --json out/models.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import numpy as np

from couchmate.bench.stats import percentiles, print_table, table
from couchmate.config import ModelRole
from couchmate.models.backend import ChatBackend
from couchmate.models.prompt import Prompt, encode_image, prepare
from couchmate.models.scripted_server import Answer, ScriptedServer


def game_like_frame(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A synthetic frame with what JPEG finds hard in games: gradients, edges, texture, HUD."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    img[..., 0] = 80 + 60 * np.sin(x / 37.0) + 40 * (y / height)
    img[..., 1] = 60 + 50 * np.cos(y / 23.0)
    img[..., 2] = 90 + 70 * (x / width)
    for _ in range(25):  # walls, sprites
        x0, y0 = rng.integers(0, width - 20), rng.integers(0, height - 20)
        w, h = rng.integers(10, width // 4), rng.integers(10, height // 4)
        img[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 255, 3)
    img += rng.normal(0, 12, img.shape)  # texture
    img[-height // 10 :, :] = (40, 40, 40)  # HUD bar
    return np.clip(img, 0, 255).astype(np.uint8)


def bench_encoding(reps: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for w, h in ((1920, 1080), (1280, 720), (640, 480)):
        frame = game_like_frame(w, h)
        encode_image(frame)  # warm-up (cv2 lazily initialises)
        times, sizes = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            enc = encode_image(frame)
            times.append((time.perf_counter() - t0) * 1000.0)
            sizes.append(enc.n_bytes)
        out[f"{w}x{h}"] = {
            "ms": percentiles(times),
            "sent_size": f"{enc.width}x{enc.height}",
            "jpeg_kb": round(float(np.mean(sizes)) / 1024, 1),
        }
    frames = [game_like_frame(1280, 720, seed=i) for i in range(4)]
    prompt = Prompt(user="what happened?", images=frames)

    async def prep() -> list[float]:
        await prepare(prompt, max_images=4)
        return [(await prepare(prompt, max_images=4)).prepare_ms for _ in range(reps)]

    out["prepare_4x1280x720"] = {"ms": percentiles(asyncio.run(prep()))}
    print_table(
        table(
            "image encoding (ms)",
            ["image", "p50", "p95", "max", "sent as", "JPEG KB"],
            [
                [
                    k,
                    v["ms"]["p50"],
                    v["ms"]["p95"],
                    v["ms"]["max"],
                    v.get("sent_size"),
                    v.get("jpeg_kb"),
                ]
                for k, v in out.items()
            ],
        )
    )
    return out


async def _raw_ttft(client: httpx2.AsyncClient, url: str, model: str) -> float:
    body = {
        "model": model,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "stream": True,
    }
    t0 = time.perf_counter()
    async with client.stream("POST", url + "/chat/completions", json=body) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                choices = json.loads(line[6:]).get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    return (time.perf_counter() - t0) * 1000.0
    raise RuntimeError("no content in the raw stream")


async def _ab(base_url: str, model: str, calls: int) -> dict[str, Any]:
    backend = ChatBackend("bench", ModelRole(base_url=base_url, model=model, max_tokens=8))
    raw = httpx2.AsyncClient(timeout=30.0)
    prompt = Prompt(system="be brief", user="hi")
    ours: list[float] = []
    base: list[float] = []
    build: list[float] = []
    parse: list[float] = []
    for i in range(calls + 5):  # 5 warm-up calls each, interleaved A/B
        async with backend.stream(prompt, budget_s=30.0) as reply:
            async for _ in reply:
                break
        r = await _raw_ttft(raw, base_url, model)
        if i < 5:
            continue
        base.append(r)
        ours.append(reply.ttft_s * 1000.0)
        build.append(reply.timing.span_ms("call", "request_sent"))
        parse.append(reply.timing.span_ms("response_start", "first_token"))
    await backend.aclose()
    await raw.aclose()
    diff = [a - b for a, b in zip(ours, base, strict=True)]
    return {
        "couchmate_ttft_ms": percentiles(ours),
        "raw_httpx_ttft_ms": percentiles(base),
        "overhead_ms": percentiles(diff),
        "request_build_ms": percentiles(build),
        "headers_to_first_token_ms": percentiles(parse),
        "ratio_p50": round(np.median(ours) / max(1e-9, np.median(base)), 2),
    }


def bench_overhead(calls: int, llama: bool) -> dict[str, Any]:
    async def scripted() -> dict[str, Any]:
        async with ScriptedServer(default=Answer("hello there friend")) as srv:
            return await _ab(srv.base_url, "scripted", calls)

    out = {"scripted_server": asyncio.run(scripted())}
    if llama:
        from couchmate.models.local_server import LlamaServer, write_tiny_gguf

        with tempfile.TemporaryDirectory() as d:
            gguf = write_tiny_gguf(Path(d) / "tiny.gguf")
            with LlamaServer(gguf) as srv:
                out["llama_cpp_server"] = asyncio.run(_ab(srv.base_url, "tiny", calls))
    rows = []
    for server, r in out.items():
        for k in ("couchmate_ttft_ms", "raw_httpx_ttft_ms", "overhead_ms", "request_build_ms"):
            rows.append([f"{server}: {k}", r[k]["p50"], r[k]["p95"], r[k]["max"], r[k]["n"]])
    print_table(table("model client per call (ms)", ["what", "p50", "p95", "max", "n"], rows))
    return out


def run(calls: int = 200, reps: int = 50, llama: bool = True) -> dict[str, Any]:
    return {
        "encoding": bench_encoding(reps),
        "overhead": bench_overhead(calls, llama),
        "note": "single process; figures are noisy if other work shares the CPU",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--no-llama", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    result = run(calls=a.calls, reps=a.reps, llama=not a.no_llama)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
