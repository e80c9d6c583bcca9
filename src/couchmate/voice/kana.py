"""Kanji → hiragana for espeak-ng's Japanese voice, which reads only kana.

espeak-ng has no kanji dictionary: "死んだ" comes out as "nda" and "一緒" as "Chinese
letter". When `pykakasi` (a small offline dictionary package) is installed, words with
kanji are rewritten in hiragana before synthesis; kana, Latin and digits pass unchanged.
Without it the text goes through as is, with a one-time log line saying why it sounds off.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

log = logging.getLogger(__name__)

_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆]")

_lock = threading.Lock()
_kakasi: Any = None
_missing = False


def has_kanji(text: str) -> bool:
    return _KANJI.search(text) is not None


def _converter() -> Any:
    global _kakasi, _missing
    with _lock:
        if _kakasi is None and not _missing:
            try:
                import pykakasi
            except ImportError:
                _missing = True
                log.info("pykakasi is not installed: espeak-ng will misread Japanese kanji")
            else:
                _kakasi = pykakasi.kakasi()  # loads its dictionary: ~0.5 s, once
        return _kakasi


def to_kana(text: str) -> str:
    """`text` with every kanji-bearing word in hiragana (blocking on first use)."""
    if not has_kanji(text):
        return text
    kakasi = _converter()
    if kakasi is None:
        return text
    return "".join(w["hira"] if has_kanji(w["orig"]) else w["orig"] for w in kakasi.convert(text))


async def to_kana_async(text: str) -> str:
    """to_kana off the event loop (the first call loads the dictionary)."""
    if not has_kanji(text):
        return text
    if _kakasi is not None:
        return to_kana(text)  # sub-millisecond once loaded
    return await asyncio.to_thread(to_kana, text)
