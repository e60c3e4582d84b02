"""Pipeline: the `Assistant`, the one object every edge calls — question → (conversation) → retrieve → answer.

`Assistant` holds the loaded index, its retriever and the session store. `ask()` is stateless;
`chat()` resolves an elliptical follow-up against the session's earlier turns first and returns the
rewritten query so the user sees what was searched. `swap_index()` replaces index and retriever
together after an admin re-index, so a request never sees one without the other.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from assistant.answer import MAX_REGION_LINES, compose, mentioned_region, mentioned_regions, regions_asked_apart
from assistant.conversation import SessionStore, own_words, resolve
from assistant.intents import asks_every_region
from assistant.schema import Answer, IndexSwappedError, QueryError
from assistant.text import normalize

SEARCH_K = 8  # clauses an answer may quote from
POOL_K = 30  # clauses searched for evidence that the library covers a place the question names


def regions_of(index) -> list[str]:
    """The regions the documents of an index state, sorted."""
    return sorted({d.get("region", "") for d in index.documents if d.get("region")})


class Assistant:
    """Grounded answers and conversations over one policy index."""

    def __init__(self, settings, index=None, embedder=None, target=None):
        from assistant.backends import target_of
        from assistant.embed import embedder_for

        from assistant.calibration import thresholds_for

        self.settings = settings
        self.embedder = embedder or embedder_for(settings)
        # the answer thresholds and ranking weights calibrated for this model (a setting overrides a weight)
        self.thresholds = thresholds_for(self.embedder.name, settings)
        self._lock = threading.RLock()
        # where the index is reloaded from when a re-index elsewhere replaced it (Milvus replicas)
        self.target = target if target is not None else (target_of(settings) if index is None else None)
        self.swap_index(index if index is not None else self.target.load())
        self.sessions = SessionStore.from_settings(settings)
        from assistant.curated import CuratedAnswers

        self.curated = CuratedAnswers.from_settings(settings)
        self._rewriter = None
        if getattr(settings, "llm_base_url", ""):
            from assistant.llm import Rewriter

            self._rewriter = Rewriter(settings.llm_base_url, settings.llm_model, settings.llm_api_key)

    @classmethod
    def from_settings(cls, settings) -> "Assistant":
        """An assistant over the index and model the settings name."""
        return cls(settings)

    def swap_index(self, index) -> None:
        """Replace index and retriever together (thread-safe), e.g. after an admin re-index."""
        from assistant.retrieve import Retriever

        retriever = Retriever.from_settings(index, self.embedder, self.settings, self.thresholds)
        with self._lock:
            self.index, self.retriever = index, retriever

    def _retrying(self, work):
        """Run work(index, retriever); when another process re-indexed and dropped the generation the
        index was bound to (IndexSwappedError), load the current one and run it once more."""
        replaced = getattr(self.target, "replaced", None)  # FAISS: a folder another replica swapped
        if replaced is not None and replaced(self.index):
            with self._lock:
                if replaced(self.index):
                    self.swap_index(self.target.load())
        with self._lock:
            index, retriever = self.index, self.retriever
        try:
            return work(index, retriever)
        except IndexSwappedError:
            if self.target is None:
                raise
            with self._lock:
                if self.index is index:
                    self.swap_index(self.target.load())
                index, retriever = self.index, self.retriever
            return work(index, retriever)

    def search(self, query: str, **kwargs) -> list:
        """The retriever's hybrid search over the current index (see Retriever.search)."""
        return self._retrying(lambda _, retriever: retriever.search(query, **kwargs))

    def today(self):
        """The date document validity is judged against (settings.today, else the real today)."""
        import datetime as dt

        value = getattr(self.settings, "today", "")
        return dt.date.fromisoformat(value) if value else dt.date.today()

    def regions(self) -> list[str]:
        """The regions the corpus covers."""
        with self._lock:
            index = self.index
        return regions_of(index)

    def _check(self, message: str) -> str:
        if not isinstance(message, str) or not message.strip():
            raise QueryError("message: must not be empty")
        limit = getattr(self.settings, "max_message_chars", 1000)
        if len(message) > limit:
            raise QueryError(f"message: too long ({len(message)} characters, at most {limit})")
        return message.strip()

    def _answer(self, query: str, region: str | None, doc_id: str | None, focus: str | None = None) -> Answer:
        return self._retrying(lambda index, retriever: self._answer_with(index, retriever, query, region, doc_id, focus))

    def _answer_with(self, index, retriever, query: str, region: str | None, doc_id: str | None,
                     focus: str | None = None) -> Answer:
        hits, pool = self._hits(index, retriever, query, region, doc_id)
        answer = compose(query, hits, regions=regions_of(index), documents=index.documents, idf=index.idf(), pool=pool,
                         today=self.today(), thresholds=self.thresholds, focus=focus)
        if self._rewriter is not None and not answer.refused:
            answer = self._rewriter.rewrite(query, answer)
        return answer

    @staticmethod
    def _hits(index, retriever, query: str, region: str | None, doc_id: str | None) -> tuple[list, list]:
        """The clauses an answer may quote, and the deeper pool its place check reads."""
        regions = regions_of(index)
        named = mentioned_regions(query, regions) if region is None else []
        if region is None and doc_id is None and not named and asks_every_region(query) and len(regions) <= MAX_REGION_LINES:
            # "各区对…": give every region its chance, not only the best-ranked one. A library of more
            # regions than an answer lists (a province's) is searched once: the per-region searches'
            # scores do not compare, and the deep pool already holds the regions the question is about.
            named = regions
        if len(named) > 1 and (named == regions or regions_asked_apart(query, named)):
            # "海淀区和龙河经济开发区分别…": search each named region, so every one gets its line.
            hits = []
            for r in named:
                hits.extend(retriever.search(query, k=3, region=r, doc_id=doc_id))
            hits.sort(key=lambda h: -h.score)
            return hits, hits
        # "重庆市为湖北支援了…" names two places in different roles: one search of the whole library
        soft = region is None and len(named) == 1
        if soft:
            region = mentioned_region(query, regions)
        pool = retriever.search(query, k=POOL_K, region=region, doc_id=doc_id, unknown_region=soft)
        return pool[:SEARCH_K], pool

    def evidence(self, query: str) -> tuple[str, list, list]:
        """(query, hits, pool): what `ask` would compose its answer from (calibration re-composes
        them under other thresholds)."""
        query = self._check(query)
        return self._retrying(lambda index, retriever: (query, *self._hits(index, retriever, query, None, None)))

    def _curated(self, question: str) -> Answer | None:
        """The staff's curated answer for the question or a close paraphrase (assistant/curated.py), or None."""
        with self._lock:
            index = self.index
        return self.curated.serve(question, index, self.embedder, regions_of(index), self.today())

    def match(self, region: str | None = None, profile: str | None = None, only_current: bool = False) -> list:
        """政策匹配: the clauses granting something to a company of `profile` in `region`, best fit first."""
        return list(self.match_report(region, profile, None, only_current).matches)

    def match_report(self, region: str | None = None, profile: str | None = None, facts: dict | None = None,
                     only_current: bool = False):
        """政策计算器: `match` with a structured profile (facts) — each rule checked condition by
        condition, the amount estimated — and the facts no clause of the library conditions on."""
        from assistant.match import match_report

        if profile is not None and len(profile) > getattr(self.settings, "max_message_chars", 1000):
            raise QueryError(f"profile: too long ({len(profile)} characters)")
        return self._retrying(lambda index, retriever: match_report(index, retriever, region, profile, only_current,
                                                                    self.today(), facts=facts))

    def match_options(self, region: str | None = None) -> dict:
        """What a calculator form offers: the library's qualifications, quantities, industries and units."""
        from assistant.match import options

        return self._retrying(lambda index, _: options(index, region))

    def ask(self, question: str, region: str | None = None, doc_id: str | None = None) -> Answer:
        """One grounded answer, no session."""
        question = self._check(question)
        served = self._curated(question) if region is None and doc_id is None else None
        return replace(served or self._answer(question, region, doc_id), rewritten_query=question)

    def in_context(self, message: str, history: list) -> Answer:
        """The answer to a message after the conversation's earlier turns (Turn, dict or standalone
        query strings, oldest first): a follow-up is resolved over them first (`rewritten_query`).
        Sessions and the stateless doors both answer through here."""
        message = self._check(message)
        query = resolve(message, history, self.regions())
        # a curated answer is served to a standalone question only, never to a follow-up the conversation rewrote
        standalone = query == normalize(message)
        served = self._curated(query) if standalone else None
        # a rewritten follow-up is answered with its own words leading ("园区升级呢？" after a 楼宇升级 question)
        focus = None if standalone else own_words(message)
        return replace(served or self._answer(query, None, None, focus), rewritten_query=query)

    def chat(self, message: str, session_id: str | None = None) -> Answer:
        """One turn of a conversation: a new session when session_id is None."""
        message = self._check(message)
        if session_id is None:
            session_id = self.sessions.create()
            history = []
        else:
            history = self.sessions.history(session_id)  # UnknownSessionError for unknown/expired ids
        answer = replace(self.in_context(message, history), session_id=session_id)
        turn = self.sessions.append(session_id, message, answer.rewritten_query, answer.to_dict())
        return replace(answer, turn=turn)
