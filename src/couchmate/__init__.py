"""couchmate: an AI companion that watches your screen and talks with you."""

import os

# onnxruntime (OCR and the embedder run on it) queues usage telemetry for Microsoft's
# collector and tries to upload it from a thread of every process that loads it. Nothing
# leaves the machine unless the user configured a remote model, so it is off before any
# couchmate module can load onnxruntime (a user who wants it can set the variable to 0).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
