"""Pipeline: the one object the CLI and the API use — question → (conversation) → retrieve → answer.

`Assistant` holds the loaded index, its retriever and the session store. `ask()` is stateless;
`chat()` resolves an elliptical follow-up against the session's earlier turns first and returns the
rewritten query so the user sees what was searched. `swap_index()` replaces index and retriever
together after an admin re-index, so a request never sees one without the other.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from dataclasses import replace

from assistant.answer import asks_every_region, compose, mentioned_region, mentioned_regions
from assistant.conversation import SessionStore, resolve
from assistant.schema import Answer, IndexSwappedError, QueryError

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

        self.settings = settings
        self.embedder = embedder or embedder_for(settings)
        self._lock = threading.RLock()
        # where the index is reloaded from when a re-index elsewhere replaced it (Milvus replicas)
        self.target = target if target is not None else (target_of(settings) if index is None else None)
        self.swap_index(index if index is not None else self.target.load())
        self.sessions = SessionStore.from_settings(settings)
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

        retriever = Retriever.from_settings(index, self.embedder, self.settings)
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

    def _answer(self, query: str, region: str | None, doc_id: str | None) -> Answer:
        return self._retrying(lambda index, retriever: self._answer_with(index, retriever, query, region, doc_id))

    def _answer_with(self, index, retriever, query: str, region: str | None, doc_id: str | None) -> Answer:
        regions = regions_of(index)
        named = mentioned_regions(query, regions) if region is None else []
        if region is None and doc_id is None and not named and asks_every_region(query):
            named = regions  # "各区对…": give every region its chance, not only the best-ranked one
        if len(named) > 1:
            # "蓟州区和芦台经济开发区分别…": search each named region, so every one gets its line.
            hits = []
            for r in named:
                hits.extend(retriever.search(query, k=3, region=r, doc_id=doc_id))
            hits.sort(key=lambda h: -h.score)
            pool = hits
        else:
            soft = region is None and bool(named)
            if soft:
                region = mentioned_region(query, regions)
            pool = retriever.search(query, k=POOL_K, region=region, doc_id=doc_id, unknown_region=soft)
            hits = pool[:SEARCH_K]
        answer = compose(query, hits, regions=regions, documents=index.documents, idf=index.idf(), pool=pool,
                         today=self.today())
        if self._rewriter is not None and not answer.refused:
            answer = self._rewriter.rewrite(query, answer)
        return answer

    def match(self, region: str | None = None, profile: str | None = None, only_current: bool = False) -> list:
        """政策匹配: the clauses granting something to a company of `profile` in `region`, best fit first."""
        from assistant.match import match

        if profile is not None and len(profile) > getattr(self.settings, "max_message_chars", 1000):
            raise QueryError(f"profile: too long ({len(profile)} characters)")
        return self._retrying(lambda index, retriever: match(index, retriever, region, profile, only_current, self.today()))

    def ask(self, question: str, region: str | None = None, doc_id: str | None = None) -> Answer:
        """One grounded answer, no session."""
        question = self._check(question)
        return replace(self._answer(question, region, doc_id), rewritten_query=question)

    def chat(self, message: str, session_id: str | None = None) -> Answer:
        """One turn of a conversation: a new session when session_id is None."""
        message = self._check(message)
        if session_id is None:
            session_id = self.sessions.create()
            history = []
        else:
            history = self.sessions.history(session_id)  # UnknownSessionError for unknown/expired ids
        query = resolve(message, history, self.regions())
        answer = replace(self._answer(query, None, None), rewritten_query=query, session_id=session_id)
        turn = self.sessions.append(session_id, message, query, answer.to_dict())
        return replace(answer, turn=turn)


def format_answer(answer: Answer) -> str:
    """An answer for a terminal: the text, then each citation's title, section and quote."""
    out = [answer.answer]  # the validity notice is already its last line
    if answer.clarify:
        options = " / ".join(f"[{i}] {o}" for i, o in enumerate(answer.clarify["options"], 1))
        out.append(f"{answer.clarify['question']} {options}（输入地区名或序号）")
    if answer.rewritten_query:
        out.insert(0, f"（检索：{answer.rewritten_query}）")
    for c in answer.citations:
        out.append(f"  [{c.n}] 《{c.doc_title}》 {c.section}\n      “{c.quote}”  ({c.clause_id})")
    if answer.related:
        out.append("可能相关：")
        for c in answer.related:
            out.append(f"  - 《{c.doc_title}》 {c.section}  ({c.clause_id})")
    return "\n".join(out)


def format_matches(matches: list) -> str:
    """政策匹配 results for a terminal: benefit, condition, the quoted sentence and where it stands."""
    if not matches:
        return "没有找到适用于该企业的支持条款。"
    out = []
    for i, m in enumerate(matches, 1):
        status = {"current": "现行", "expired": "已过期", "unknown": "未载明有效期"}.get(m.validity.get("status"), "")
        out.append(f"{i}. {m.benefit}" + (f"（条件：{m.condition}）" if m.condition else "") + (f"  匹配：{'、'.join(m.why)}" if m.why else ""))
        out.append(f"   “{m.quote}”")
        out.append(f"   《{m.doc_title}》{'（' + m.region + '）' if m.region else ''} {m.section} [{status}]  ({m.clause_id})")
    return "\n".join(out)


def cli(name: str, argv: list[str]) -> int:
    """`ask "…" [--json] [--region R] [--doc D]`, interactive `chat [--json]` and
    `match ["profile"] [--region R] [--only-current] [--json]`."""
    from assistant.config import Settings

    parser = argparse.ArgumentParser(prog=f"assistant {name}")
    if name == "ask":
        parser.add_argument("question")
        parser.add_argument("--region")
        parser.add_argument("--doc")
    if name == "match":
        parser.add_argument("profile", nargs="?", default="", help="the company: types, recognitions, plans, size")
        parser.add_argument("--region", help="where it is registered")
        parser.add_argument("--only-current", action="store_true", help="only documents whose term has not ended")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")
    args = parser.parse_args(argv)
    assistant = Assistant.from_settings(Settings())
    if name == "match":
        found = assistant.match(args.region, args.profile, args.only_current)
        if args.json:
            print(json.dumps({"matches": [m.to_dict() for m in found]}, ensure_ascii=False, indent=2))
        else:
            print(format_matches(found))
        return 0

    def show(answer: Answer) -> None:
        if args.json:
            print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        else:
            print(format_answer(answer))

    if name == "ask":
        show(assistant.ask(args.question, region=args.region, doc_id=args.doc))
        return 0
    session_id = None
    clarify = None
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            break
        line = line.strip()
        if line in ("exit", "quit", "退出"):
            break
        if not line:
            continue
        if clarify and line.isdigit() and 1 <= int(line) <= len(clarify["options"]):
            line = clarify["options"][int(line) - 1]  # a clarifying option chosen by its number
        try:
            answer = assistant.chat(line, session_id)
        except QueryError as e:
            print(f"error: {e}", file=sys.stderr)
            continue
        session_id = answer.session_id
        clarify = answer.clarify
        show(answer)
        print()
    return 0
