"""Answer stage, optional: rewrite the extractive answer more fluently with an OpenAI-compatible model.

Off by default (settings.llm_base_url empty). The model only rephrases; grounding is enforced after
it: every sentence it returns must end in a `[n]` marker that maps to a retrieved clause, and any
sentence without one (or with an unknown one) is dropped. If nothing survives, or the endpoint
fails, the extractive answer stands.
"""

from __future__ import annotations

import re
from dataclasses import replace

from assistant.schema import Answer

_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?(?:\s*\[\d+\])*")
_MARK = re.compile(r"\[(\d+)\]")

PROMPT = (
    "你是政策咨询助手。请把下面的摘录式回答改写得更通顺，但只能使用其中的信息，"
    "不得添加任何数字或事实；每句话末尾保留对应的引用标记，如 [1]。\n\n问题：{q}\n\n回答：\n{a}"
)


def keep_grounded(text: str, valid: set[int]) -> str:
    """Only the sentences that carry at least one marker, all of which name a valid citation."""
    kept = []
    for m in _SENTENCE.finditer(text):
        s = m.group(0).strip()
        marks = [int(x) for x in _MARK.findall(s)]
        if marks and all(n in valid for n in marks):
            kept.append(s)
    return "\n".join(kept)


class Rewriter:
    """Calls POST {base_url}/chat/completions and keeps only grounded sentences."""

    def __init__(self, base_url: str, model: str = "", api_key: str = "", transport=None, timeout: float = 20.0):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.transport = transport
        self.timeout = timeout

    def rewrite(self, question: str, answer: Answer) -> Answer:
        """The answer with a fluent, still fully cited text; the original on any failure."""
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        # the validity line is the assistant's own words, not the documents': it is kept out of the
        # rewrite (where it would be dropped or reworded) and put back as the last line
        quoted, _, warning = answer.answer.rpartition("\n") if answer.notice else (answer.answer, "", "")
        if answer.notice and not quoted:
            quoted, warning = warning, ""
        body = {"model": self.model, "messages": [{"role": "user", "content": PROMPT.format(q=question, a=quoted)}], "temperature": 0}
        try:
            with httpx.Client(transport=self.transport, timeout=self.timeout) as client:
                r = client.post(f"{self.base_url}/chat/completions", json=body, headers=headers)
                r.raise_for_status()
                content = r.json()["choices"][0]["message"]["content"]
        except Exception:  # the endpoint is optional: any failure keeps the extractive answer
            return answer
        text = keep_grounded(content or "", {c.n for c in answer.citations})
        if not text:
            return answer
        return replace(answer, answer=text + (f"\n{warning}" if warning else ""))
