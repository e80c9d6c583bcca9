"""Text embeddings from an OpenAI-compatible /embeddings endpoint (memory may use it when
`memory.embedder = "openai"`). Same retry policy, breaker and error mapping as chat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from couchmate.config import MemorySettings
from couchmate.errors import ConfigError, ModelError
from couchmate.models.client import make_openai_client, resolve_api_key
from couchmate.models.failures import invalid_response, map_error
from couchmate.models.health import BackendHealth, HealthOptions
from couchmate.models.retry import RetryPolicy, call_with_retries
from couchmate.types import now


class EmbeddingBackend:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "",
        name: str = "embed",
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        health: HealthOptions | None = None,
    ):
        if not base_url or not model:
            raise ConfigError(
                "the embeddings endpoint needs a base_url and a model",
                hint="set memory.embed_base_url and memory.embed_model",
            )
        self.name = name
        self.base_url = base_url
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.health = BackendHealth(name, health, base_url=base_url)
        self.client = make_openai_client(base_url, resolve_api_key(name, api_key_env), timeout_s)

    @classmethod
    def from_settings(cls, memory: MemorySettings, **kwargs: Any) -> EmbeddingBackend:
        return cls(
            memory.embed_base_url,
            memory.embed_model,
            api_key_env=memory.embed_api_key_env,
            **kwargs,
        )

    async def embed(self, texts: Sequence[str], *, budget_s: float | None = None) -> np.ndarray:
        """One float32 row per text, in order: shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, 0), np.float32)
        budget = budget_s or self.timeout_s
        permit = self.health.acquire()

        async def attempt(n: int) -> Any:
            return await self.client.embeddings.create(
                model=self.model, input=list(texts), encoding_format="float"
            )

        try:
            resp = await call_with_retries(
                attempt,
                policy=self.retry,
                deadline=now() + budget,
                on_timeout=lambda: ModelError(
                    f"embeddings gave no reply within {budget:.2f}s",
                    hint=f"is the embeddings server at {self.base_url} overloaded?",
                ),
                map_exc=self._map,
            )
            vectors = self._parse(resp, len(texts))
        except ModelError as e:
            self.health.record_failure(permit, e)
            raise
        except BaseException:
            self.health.release(permit)
            raise
        self.health.record_success(permit)
        return vectors

    def _map(self, e: BaseException) -> ModelError:
        return map_error(
            e, base_url=self.base_url, model=self.model, key_env=self.api_key_env, role=self.name
        )

    def _parse(self, resp: Any, n: int) -> np.ndarray:
        try:
            items = sorted(resp.data, key=lambda d: d.index if d.index is not None else 0)
            rows = [item.embedding for item in items]
        except (AttributeError, TypeError) as e:
            raise invalid_response(
                f"no data[].embedding: {str(resp)[:120]!r}", base_url=self.base_url, role=self.name
            ) from e
        if len(rows) != n:
            raise invalid_response(
                f"{len(rows)} embeddings for {n} texts", base_url=self.base_url, role=self.name
            )
        if rows and rows[0] and isinstance(rows[0][0], list):
            # llama.cpp without pooling returns one vector per token, not per text.
            raise ModelError(
                f"embeddings from {self.base_url} are per token, not per text",
                hint="serve the embedding model with pooling (llama.cpp: --pooling mean)",
                retryable=False,
            )
        try:
            out = np.asarray(rows, dtype=np.float32)
        except (ValueError, TypeError) as e:
            raise invalid_response(
                f"embeddings are not equal-length number lists ({e})",
                base_url=self.base_url,
                role=self.name,
            ) from e
        if out.ndim != 2 or out.shape[1] == 0:
            raise invalid_response(
                f"embeddings have shape {out.shape}", base_url=self.base_url, role=self.name
            )
        return out

    async def aclose(self) -> None:
        await self.client.close()
