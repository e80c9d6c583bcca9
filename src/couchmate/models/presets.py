"""Known OpenAI-compatible model servers. Pure data: a preset fills in what a role leaves out."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlparse


@dataclass(frozen=True, slots=True)
class Preset:
    base_url: str
    api_key_env: str = ""
    example_model: str = ""
    note: str = ""


PRESETS: dict[str, Preset] = {
    "ollama": Preset("http://localhost:11434/v1", "", "qwen2.5vl:3b", "local; `ollama serve`"),
    "vllm": Preset("http://localhost:8000/v1", "", "Qwen/Qwen2.5-VL-7B-Instruct", "local GPU"),
    "llamacpp": Preset("http://localhost:8080/v1", "", "local", "llama.cpp server"),
    "lmstudio": Preset("http://localhost:1234/v1", "", "qwen2.5-vl-7b-instruct", "local"),
    "sglang": Preset("http://localhost:30000/v1", "", "Qwen/Qwen2.5-VL-7B-Instruct", "local GPU"),
    "openai": Preset("https://api.openai.com/v1", "OPENAI_API_KEY", "gpt-4o-mini", "cloud"),
    "gemini": Preset(
        "https://generativelanguage.googleapis.com/v1beta/openai/",
        "GEMINI_API_KEY",
        "gemini-2.5-flash",
        "cloud",
    ),
    "dashscope": Preset(
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "DASHSCOPE_API_KEY",
        "qwen-vl-max",
        "cloud (Qwen)",
    ),
}


def is_local_url(url: str) -> bool:
    """True when `url` points at this machine or a private network (nothing leaves home)."""
    host = urlparse(url).hostname or ""
    if host in ("localhost", "") or host.endswith(".local"):
        return True
    try:
        ip = ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local
