"""BM25 over one user's memories: tokenizer, stemmer and an incremental inverted index.

The index is numpy CSR postings (frozen part) plus a small dict of recent postings (tail)
that is merged in when it grows; scoring adds each query term's BM25 contribution into one
dense score vector, so a query over a million memories is a few vector operations per term.
Statistics (document frequency, average length) are per user: another user's memories
never change this user's scores.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter

import numpy as np

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")

_STOPWORD_TEXT = """
    a about above after again against all am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each few for from further had hadn't has hasn't have
    haven't having he he'd he'll he's her here here's hers herself him himself his how how's i
    i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my
    myself no nor not of off on once only or other ought our ours ourselves out over own same
    shan't she she'd she'll she's should shouldn't so some such than that that's the their
    theirs them themselves then there there's these they they'd they'll they're they've this
    those through to too under until up very was wasn't we we'd we'll we're we've were weren't
    what what's when when's where where's which while who who's whom why why's with won't
    would wouldn't you you'd you'll you're you've your yours yourself yourselves
    also just really yeah yes oh hey hi wow ok okay
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def stem(w: str) -> str:
    """A light English suffix stripper: plurals, -ing, -ed, -ly (enough for BM25 matching)."""
    if len(w) <= 3 or not w.isascii():
        return w
    if w.endswith("'s"):
        w = w[:-2]
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        w = w[:-1]
    for suf in ("ing", "ed"):
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            base = w[: -len(suf)]
            if not any(c in "aeiouy" for c in base):
                break
            if len(base) > 2 and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]  # running → run, stopped → stop
            w = base
            break
    if w.endswith("ly") and len(w) > 5:
        w = w[:-2]
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]  # make/making, love/loved meet at the same stem
    return w


_stem_cached = functools.lru_cache(maxsize=500_000)(stem)


def tokens(text: str) -> list[str]:
    """Lowercased, stemmed words without stopwords; CJK runs become character bigrams."""
    out: list[str] = []
    for w in _WORD.findall(text.lower()):
        if "’" in w:
            w = w.replace("’", "'")
        if not w.isascii() and _CJK.search(w):
            chars = list(w)
            out.extend(a + b for a, b in zip(chars, chars[1:], strict=False))
            if len(chars) == 1:
                out.append(chars[0])
            continue
        if w in STOPWORDS:
            continue
        out.append(_stem_cached(w))
    return out


class LexicalIndex:
    """BM25 (k1, b) postings keyed by document number (the owner's dense row number)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75):
        self.k1 = k1
        self.b = b
        self.vocab: dict[str, int] = {}
        self.df = np.zeros(0, dtype=np.int32)
        self.indptr = np.zeros(1, dtype=np.int64)
        self.post_doc = np.zeros(0, dtype=np.int32)
        self.post_tf = np.zeros(0, dtype=np.float32)
        self.tail: dict[int, tuple[list[int], list[float]]] = {}
        self.tail_size = 0
        self.doc_len = np.zeros(0, dtype=np.float32)
        self.n_docs = 0
        self.total_len = 0.0

    # --- building -----------------------------------------------------------------------
    def _term_id(self, term: str) -> int:
        tid = self.vocab.get(term)
        if tid is None:
            tid = len(self.vocab)
            self.vocab[term] = tid
            if tid >= len(self.df):
                self.df = np.concatenate([self.df, np.zeros(max(1024, len(self.df)), np.int32)])
        return tid

    def add(self, doc: int, text: str) -> None:
        toks = tokens(text)
        if doc >= len(self.doc_len):
            grown = np.zeros(max(doc + 1, 2 * len(self.doc_len), 1024), dtype=np.float32)
            grown[: len(self.doc_len)] = self.doc_len
            self.doc_len = grown
        self.doc_len[doc] = len(toks)
        self.n_docs = max(self.n_docs, doc + 1)
        self.total_len += len(toks)
        for term, tf in Counter(toks).items():
            tid = self._term_id(term)
            self.df[tid] += 1
            docs, tfs = self.tail.setdefault(tid, ([], []))
            docs.append(doc)
            tfs.append(float(tf))
            self.tail_size += 1
        if self.tail_size > 50_000 + len(self.post_doc) // 4:
            self.merge()

    def remove(self, doc: int) -> None:
        """Forget a document's length (its postings are masked by the owner until compaction)."""
        if doc < len(self.doc_len):
            self.total_len -= float(self.doc_len[doc])
            self.doc_len[doc] = 0.0

    def merge(self) -> None:
        """Fold the tail into the CSR arrays."""
        if not self.tail:
            return
        n_terms = len(self.vocab)
        old_counts = np.diff(self.indptr)
        old_terms = np.repeat(np.arange(len(old_counts), dtype=np.int64), old_counts)
        t_terms, t_docs, t_tfs = [], [], []
        for tid, (docs, tfs) in self.tail.items():
            t_terms.append(np.full(len(docs), tid, dtype=np.int64))
            t_docs.append(np.asarray(docs, dtype=np.int32))
            t_tfs.append(np.asarray(tfs, dtype=np.float32))
        terms = np.concatenate([old_terms, *t_terms])
        docs = np.concatenate([self.post_doc, *t_docs])
        tfs = np.concatenate([self.post_tf, *t_tfs])
        order = np.lexsort((docs, terms))
        self.post_doc = docs[order]
        self.post_tf = tfs[order]
        counts = np.bincount(terms, minlength=n_terms)
        self.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.tail = {}
        self.tail_size = 0

    # --- searching ----------------------------------------------------------------------
    def scores(self, query: str | list[str], alive: np.ndarray | None = None) -> np.ndarray:
        """BM25 score per document (0 where no term matches)."""
        n = self.n_docs
        out = np.zeros(n, dtype=np.float32)
        if n == 0:
            return out
        toks = tokens(query) if isinstance(query, str) else query
        n_alive = int(alive[:n].sum()) if alive is not None else n
        avg = max(self.total_len / max(n_alive, 1), 1e-6)
        norm = self.k1 * (1.0 - self.b + self.b * self.doc_len[:n] / avg)
        for term, qtf in Counter(toks).items():
            tid = self.vocab.get(term)
            if tid is None:
                continue
            df = int(self.df[tid])
            if df <= 0:
                continue
            idf = math.log(1.0 + (n_alive - df + 0.5) / (df + 0.5))
            docs, tfs = self._postings(tid)
            out[docs] += (idf * qtf) * tfs * (self.k1 + 1.0) / (tfs + norm[docs])
        if alive is not None:
            out[~alive[:n]] = 0.0
        return out

    def _postings(self, tid: int) -> tuple[np.ndarray, np.ndarray]:
        if tid + 1 < len(self.indptr):
            a, b = self.indptr[tid], self.indptr[tid + 1]
            docs, tfs = self.post_doc[a:b], self.post_tf[a:b]
        else:
            docs, tfs = self.post_doc[:0], self.post_tf[:0]
        tail = self.tail.get(tid)
        if tail:
            docs = np.concatenate([docs, np.asarray(tail[0], dtype=np.int32)])
            tfs = np.concatenate([tfs, np.asarray(tail[1], dtype=np.float32)])
        return docs, tfs

    # --- snapshot -----------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        self.merge()
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        return {
            "lex_terms": np.array(terms, dtype=object).astype(str) if terms else np.zeros(0, "U1"),
            "lex_df": self.df[: len(terms)].copy(),
            "lex_indptr": self.indptr,
            "lex_doc": self.post_doc,
            "lex_tf": self.post_tf,
            "lex_len": self.doc_len[: self.n_docs].copy(),
        }

    @classmethod
    def from_state(
        cls, st: dict[str, np.ndarray], k1: float = 1.2, b: float = 0.75
    ) -> LexicalIndex:
        ix = cls(k1, b)
        terms = [str(t) for t in st["lex_terms"]]
        ix.vocab = {t: i for i, t in enumerate(terms)}
        ix.df = np.concatenate([st["lex_df"].astype(np.int32), np.zeros(1024, np.int32)])
        ix.indptr = st["lex_indptr"].astype(np.int64)
        ix.post_doc = st["lex_doc"].astype(np.int32)
        ix.post_tf = st["lex_tf"].astype(np.float32)
        ix.doc_len = st["lex_len"].astype(np.float32)
        ix.n_docs = len(ix.doc_len)
        ix.total_len = float(ix.doc_len.sum())
        return ix
