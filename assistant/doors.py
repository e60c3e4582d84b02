"""Doors stage: a stateless client's transcript in, the answer as plain text with its sources out.

The standard doors (the OpenAI-compatible chat and the MCP server, both in assistant/api/) carry no
session id: an OpenAI-style client sends the whole conversation every time. `transcript()` checks it
and takes out the user's turns; `answer_transcript()` resolves each earlier turn into its standalone
query (conversation.resolve, as a session would have stored it), resolves the new question over
them and answers it as a session turn is answered (Assistant.in_context). `answer_text()` renders an Answer for a client that shows only text: the
answer with its [n] markers, the clarifying question, then one 《title》 section line per source.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.conversation import resolve
from assistant.schema import Answer, QueryError

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


@dataclass(frozen=True)
class Message:
    """One message of a transcript: who wrote it and its text."""

    role: str
    content: str


def transcript(messages: list[Message], limit: int, max_turns: int) -> tuple[list[str], str]:
    """The user's earlier messages (oldest first) and the question to answer, which must be the last
    message; QueryError naming the message at fault. The assistant's own replies, system and tool
    messages are not searched: answers come from the documents, never from instructions."""
    if not messages:
        raise QueryError("messages: must not be empty")
    for i, m in enumerate(messages):
        if m.role not in ROLES:
            raise QueryError(f"messages[{i}].role: unknown role {m.role!r} (expected one of {', '.join(ROLES)})")
    last = len(messages) - 1
    if messages[last].role != "user":
        raise QueryError(f"messages[{last}]: the last message must be the user's question (role user)")
    users = [(i, m.content) for i, m in enumerate(messages) if m.role == "user"]
    if len(users) > max_turns:
        raise QueryError(f"messages: {len(users)} user turns, at most {max_turns}; start a new conversation")
    for i, text in users:
        if not text.strip():
            raise QueryError(f"messages[{i}].content: must not be empty")
        if len(text) > limit:
            raise QueryError(f"messages[{i}].content: too long ({len(text)} characters, at most {limit})")
    return [text.strip() for _, text in users[:-1]], users[-1][1].strip()


def answer_transcript(assistant, messages: list[Message]) -> Answer:
    """The cited answer to the transcript's last user message, its follow-up resolved over the earlier ones."""
    settings = assistant.settings
    earlier, question = transcript(messages, settings.max_message_chars, settings.max_turns)
    regions = assistant.regions()
    queries: list[str] = []
    for text in earlier:
        queries.append(resolve(text, queries, regions))
    return assistant.in_context(question, queries)


def answer_text(answer: Answer) -> str:
    """The answer for a client that shows only text: markers kept, the clarifying question with its
    options, then the sources ("来源") it cites, or on a refusal the clauses that may be related."""
    out = [answer.answer]
    if answer.clarify:
        out.append(f"{answer.clarify['question']}（可回复：{' / '.join(answer.clarify['options'])}）")
    if answer.citations:
        out.append("\n来源：")
        out.extend(f"[{c.n}] 《{c.doc_title}》 {c.section}" for c in answer.citations)
    elif answer.related:
        out.append("\n可能相关（并非答案）：")
        out.extend(f"- 《{c.doc_title}》 {c.section}" for c in answer.related)
    return "\n".join(out)
