"""Schema: the frozen records that flow through the pipeline, and the named errors.

corpus → Document, chunk → Clause, retrieve → Hit, answer → Citation/Answer.
Errors are raised in the core and converted to HTTP statuses or CLI messages only at the edges.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Document:
    """One policy document, boilerplate removed, text faithful to the source."""

    doc_id: str
    title: str
    text: str
    source: str
    issuer: str = ""
    region: str = ""
    level: str = ""  # 市 / 区 / 开发区
    date: str = ""  # ISO yyyy-mm-dd where known
    doc_number: str = ""  # 文号, e.g. 顺政发〔2017〕7号
    title_inferred: bool = False
    valid_until: str = ""  # an override of the term read from the text (sidecar, upload): ISO date
    validity_basis: str = ""  # … and why (shown as the basis)


@dataclass(frozen=True)
class Fact:
    """A structured fact read from a clause: an amount, a count or target, a ratio."""

    kind: str  # amount | count | percent | ratio
    text: str  # exactly as written, e.g. "30—50万元"
    unit: str = ""
    low: float | None = None
    high: float | None = None
    payer: str = ""  # 市财政 / 区财政 …
    beneficiary: str = ""


@dataclass(frozen=True)
class Condition:
    """One condition a rule sets on who may claim its benefit (read by assistant.conditions)."""

    kind: str  # subject | industry | threshold | time | scope
    text: str  # as written, a substring of the clause ("节能量在1000吨标准煤以上")
    name: str = ""  # subject: the qualification; industry: 工业 / 非工业 …; threshold: the quantity's canonical name; time: 首次 / 新认定 / 当年
    op: str = ""  # threshold: ">=", ">", "<=", "<"
    value: float | None = None  # threshold: in the base unit of its dimension (元, 吨标准煤, 人, %)
    unit: str = ""  # threshold: as written (吨标准煤)
    dimension: str = ""  # threshold: money | energy | people | percent | years …
    options: tuple[str, ...] = ()  # subject: any one of these (中国质量奖、鲁班奖 …)

    @classmethod
    def from_dict(cls, d: dict) -> "Condition":
        return cls(**{**d, "options": tuple(d.get("options", ()))})


@dataclass(frozen=True)
class Tier:
    """One step of a benefit by level, kind or size: the condition that selects it and its amount."""

    condition: Condition
    low: float  # 元
    high: float  # 元

    @classmethod
    def from_dict(cls, d: dict) -> "Tier":
        return cls(Condition.from_dict(d["condition"]), d["low"], d["high"])


@dataclass(frozen=True)
class Benefit:
    """What a rule grants: a fixed amount, a range, a rate times a quantity (with a cap), tiers, an
    amount up to a cap, or support of no stated figure. Amounts in 元."""

    kind: str  # fixed | range | rate | percent | tiers | upto | unspecified
    text: str  # as written ("每吨标准煤给予240元")
    low: float | None = None  # fixed / range
    high: float | None = None
    rate: float | None = None  # rate: 元 per base unit of `dimension`; percent: the share (30 for 30%)
    per: str = ""  # rate: the unit as written (吨标准煤, 人)
    quantity: str = ""  # rate / percent: the canonical name of what is multiplied (节能量, 设备投资)
    dimension: str = ""  # rate / percent: the quantity's dimension
    cap: float | None = None  # 元
    cap_text: str = ""  # as written ("同一企业补贴金额不超过300万元")
    tiers: tuple[Tier, ...] = ()
    parts: tuple[float, ...] = ()  # fixed: amounts paid together (市财政20万元 + 区财政再20万元), in 元

    @classmethod
    def from_dict(cls, d: dict) -> "Benefit":
        return cls(**{**d, "tiers": tuple(Tier.from_dict(t) for t in d.get("tiers", ())), "parts": tuple(d.get("parts", ()))})


@dataclass(frozen=True)
class Rule:
    """One grant a clause states: who may claim it, on what conditions, and what it is. A clause
    naming two subjects (工业企业 …；非工业企业 …) states two rules."""

    text: str  # the sentence(s) stating it; a substring of the clause
    conditions: tuple[Condition, ...]
    benefit: Benefit

    @classmethod
    def from_dict(cls, d: dict) -> "Rule":
        return cls(d["text"], tuple(Condition.from_dict(c) for c in d.get("conditions", ())), Benefit.from_dict(d["benefit"]))


@dataclass(frozen=True)
class Clause:
    """The unit of retrieval and citation: one numbered item with its heading path."""

    clause_id: str
    doc_id: str
    doc_title: str
    region: str
    section: str  # heading path, " > "-joined
    text: str  # what is cited: the clause itself, as in the source
    department: str = ""  # responsible department(s) named by the clause
    ordinal: int = 0  # position in its document
    level: str = ""  # the document's level (市/区/开发区)
    facts: tuple[Fact, ...] = ()
    rules: tuple[Rule, ...] = ()  # the grants it states, with their conditions (assistant.conditions)

    def index_text(self) -> str:
        """The text that is embedded and BM25-indexed: title and path give a child its context."""
        return f"{self.doc_title}\n{self.section}\n{self.text}"

    def record(self) -> dict:
        """The public fields of a clause (those of clauses.jsonl that outside tools read)."""
        return {
            "clause_id": self.clause_id,
            "doc_id": self.doc_id,
            "doc_title": self.doc_title,
            "region": self.region,
            "section": self.section,
            "text": self.text,
            "department": self.department,
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        d["facts"] = [asdict(f) for f in self.facts]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Clause":
        d = dict(d)
        d["facts"] = tuple(Fact(**f) for f in d.get("facts", ()))
        d["rules"] = tuple(Rule.from_dict(r) for r in d.get("rules", ()))
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class Filters:
    """What a search is restricted to; every backend applies these inside its searches, so a filter
    never empties a result that exists."""

    region: str | None = None
    doc_id: str | None = None
    department: str | None = None
    # Most documents of a real library state no region; a question about one region must not lose
    # them, only the clauses of documents known to be about another region.
    unknown_region: bool = False
    current_on: object = None  # a date: only documents whose stated term has not ended by then

    def active(self) -> bool:
        return bool(self.region or self.doc_id or self.department or self.current_on)


@dataclass(frozen=True)
class Hit:
    """A retrieved clause with its fused score and the ranks each side gave it."""

    clause: Clause
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None
    dense_score: float | None = None  # cosine similarity, for refusal decisions
    lexical_score: float | None = None  # raw BM25

    def to_dict(self) -> dict:
        """The search-result record: the clauses.jsonl fields plus score."""
        return {**self.clause.record(), "score": round(self.score, 6)}


@dataclass(frozen=True)
class Citation:
    n: int
    clause_id: str
    doc_id: str
    doc_title: str
    region: str
    section: str
    text: str  # the whole cited clause
    quote: str  # the sentence(s) used; always a substring of text
    score: float
    issued: str | None = None  # the document's issue date (ISO) when known
    validity: dict | None = None  # {"status": current|expired|unknown, "until", "basis"}


@dataclass(frozen=True)
class Answer:
    answer: str  # carries [n] markers matching citations[].n
    citations: tuple[Citation, ...] = ()
    refused: bool = False
    rewritten_query: str = ""
    session_id: str | None = None
    related: tuple[Citation, ...] = ()  # "可能相关" when refused: shown, never presented as the answer
    turn: int = 0  # the turn number within its session (for feedback)
    notice: str = ""  # one plain sentence on the validity of a cited document, shown under the answer
    clarify: dict | None = None  # {"question", "options": [region, …]} when the answer differs by region
    source: str = "retrieval"  # or "curated": a staff-written answer served for its question (assistant/curated.py)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "session_id": self.session_id,
            "turn": self.turn,
            "answer": self.answer,
            "notice": self.notice,
            "clarify": self.clarify,
            "refused": self.refused,
            "rewritten_query": self.rewritten_query,
            "citations": [asdict(c) for c in self.citations],
            "related": [asdict(c) for c in self.related],
        }


class AssistantError(Exception):
    """Base of every error the core raises on purpose."""


class CorpusError(AssistantError):
    """A corpus file is unreadable, empty or malformed; the message names the file."""


class DocumentTimeoutError(CorpusError):
    """Chunking one document took longer than the per-document limit; the message names the file."""


class BuildCancelled(AssistantError):
    """A build was asked to stop (the server is shutting down) before it finished; the old index stays."""

    def __init__(self, message: str = "the build was stopped before it finished; the old index is kept"):
        super().__init__(message)


class IndexMissingError(AssistantError):
    """No valid index (no manifest) where one was expected."""


class BackendError(AssistantError):
    """The search backend is misconfigured or unreachable (a bad Milvus URI, a server that is down)."""


class IndexSwappedError(AssistantError):
    """The index generation a search was bound to was replaced and dropped by a re-index meanwhile;
    the caller reloads the current generation and searches again."""


class StaleIndexError(AssistantError):
    """The index was built from another corpus or model than the one configured."""


class QueryError(AssistantError):
    """A query or request parameter is unusable (empty, too long, k out of range …)."""


class FactsError(QueryError):
    """A structured company profile (facts) is unusable: an unknown unit, an unparseable or absurd
    quantity; the message names the field."""

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(f"facts.{field}: {problem}")


class UnknownClauseError(AssistantError):
    """No clause with that id."""


class UnknownDocumentError(AssistantError):
    """No document with that id."""


class UnknownSessionError(AssistantError):
    """No conversation with that session id (or it expired)."""


class UploadError(AssistantError):
    """A file offered to the library is refused before anything is written (the subclass says why)."""


class UnsafeNameError(UploadError):
    """An upload's file name is empty, hidden or carries a path."""


class UnsupportedFileError(UploadError):
    """An upload's file type is not one the library can read."""


class FileTooLargeError(UploadError):
    """An upload is larger than the configured limit."""


class UploadLimitError(UploadError, CorpusError):
    """A file is past one of the bounds on what reading it may cost (its expanded size, pages, nesting,
    length of text, time or memory). It is a CorpusError too: a build skips such a corpus file by name."""


class DecompressionBombError(UploadLimitError):
    """A compressed file expands past the limits: a .docx (zip) that declares more uncompressed bytes,
    entries or a higher compression ratio than allowed (refused before anything is decompressed), or a
    PDF stream that inflates past its bound (refused when it reaches it)."""


class TooManyPagesError(UploadLimitError):
    """A PDF has more pages than allowed."""


class NestingTooDeepError(UploadLimitError):
    """An HTML page nests its elements deeper than allowed."""


class DocumentTooLongError(UploadLimitError):
    """The text of a file is longer than a document may be."""


class UploadMemoryError(UploadLimitError):
    """Reading a file needed more memory than its worker process may use."""


class ReindexRunningError(AssistantError):
    """A re-index was asked for while one is already running."""


class UnknownRecordError(AssistantError):
    """No staff record (curated answer, feedback item, evaluation run, test set) with that id."""


class BusyError(AssistantError):
    """A background job (an evaluation run) was asked for while one is already running."""
