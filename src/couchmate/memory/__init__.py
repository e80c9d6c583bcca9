"""Long-term memory: one user's memories in, ranked recollections out.

- service.MemoryService — the door: remember / recall / about / forget / purge_expired.
- store.MemoryStore — the storage interface; embedded_store.EmbeddedStore (SQLite + in-memory
  indexes, the zero-set-up default) and postgres_store.PostgresStore implement it.
- retrieval — hybrid ranking on the store primitives and token-budget packing.
- embeddings — the local all-MiniLM-L6-v2 (int8 ONNX Runtime, minilm_onnx; or exact numpy,
  minilm_numpy) or an OpenAI-compatible API.
- topics, lexical, vectors, user_index — topic names and entities, BM25, vector indexes.

Nothing is imported here, so `import couchmate.memory` stays cheap.
"""
