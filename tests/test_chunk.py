"""Chunk stage: the clause hierarchy on the real seeds and on small cases."""

from __future__ import annotations

import re

from assistant.chunk import cn_to_int, department_of, split
from assistant.schema import Document
from assistant.text import compact


def _doc(text: str, doc_id: str = "d") -> Document:
    return Document(doc_id=doc_id, title="测试文件", text=text, source="t.txt", region="天津市测试区")


def by_id(clauses):
    return {c.clause_id: c for c in clauses}


def test_cn_numbers():
    assert [cn_to_int(x) for x in ("一", "十", "十二", "二十", "二十四", "九十九")] == [1, 10, 12, 20, 24, 99]


def test_xiqing_single_line_items_with_path(seed_clauses):
    xq = [c for c in seed_clauses if c.doc_id == "xiqing-2017"]
    items = [c for c in xq if re.search(r"> \d+\. ", c.section)]
    numbers = sorted(int(re.search(r"> (\d+)\. ", c.section).group(1)) for c in items)
    assert numbers == list(range(1, 21)), numbers  # every numbered task is its own clause
    c = by_id(xq)["xiqing-2017#二.(一).4"]
    assert c.section == "二、重点任务 > (一)提升企业自主创新能力 > 4. 促进企业“专精特新”发展"
    assert c.text.startswith("4. 促进企业“专精特新”发展")
    assert c.department == "区工信委、区科委、各街镇和西青开发区"


def test_jizhou_listing_children_carry_heading(seed_clauses):
    jz = by_id([c for c in seed_clauses if c.doc_id == "jizhou-2018"])
    for n in (1, 2, 3):
        c = jz[f"jizhou-2018#三.(五).{n}"]
        assert c.section == f"三、政策扶持 > （五）支持企业股改上市 > {n}．"
        assert c.text.startswith(f"{n}．")
    assert "区财政再一次性补助150万元" in jz["jizhou-2018#三.(五).2"].text
    assert jz["jizhou-2018#三.(五).3"].department == "区金融办"
    # the heading's lead sentence (who is eligible) is a clause of its own
    assert "蓟州区注册并纳税的企业" in jz["jizhou-2018#三.(五)"].text


def test_every_numbered_item_is_a_clause(seed_docs, seed_clauses):
    expected = {
        "jizhou-2018": ["二.(一).4", "二.(二).6.(1)", "二.(二).6.(2)", "二.(三).3", "三.(一)", "三.(四)", "四.(三)", "附件1.二"],
        "baodi-2019": [f"四.{n}" for n in range(1, 14)] + ["三.(一).1", "三.(二)", "五.(四)"],
        "lutai-zjtx": ["三.(一).3", "三.(二).3", "三.(三).4", "四.(三).6", "四.(四)"],
        "tianjin-2022": [f"{sec}.({num})" for sec, num in [("一", "一"), ("二", "四"), ("三", "十"), ("七", "二十三"), ("八", "二十四")]],
    }
    ids = {c.clause_id for c in seed_clauses}
    for doc_id, keys in expected.items():
        for key in keys:
            assert f"{doc_id}#{key}" in ids, f"{doc_id}#{key} missing"


def test_tianjin_numbering_continues_across_sections(seed_clauses):
    tj = [c for c in seed_clauses if c.doc_id == "tianjin-2022" and "(" in c.clause_id]
    assert len(tj) == 24 - 1 + 1  # (一)…(二十四), each its own clause
    c = by_id(tj)["tianjin-2022#二.(四)"]
    assert "2:2:4:2" in c.text and c.section == "二、加大融资支持力度 > (四)加强信贷支持"


def test_table_rows_keep_headers(seed_clauses):
    rows = [c for c in seed_clauses if "#表" in c.clause_id]
    assert len(rows) == 11
    texts = [r.text for r in rows]
    assert "责任部门：区工信委；子路径名称：设备升级；子路径计划数：13" in texts
    # merged cells: the department of the row above carries down
    assert "责任部门：区科委（知识产权局）；子路径名称：专利提升；子路径计划数：7" in texts
    assert all(r.section.startswith("2018年蓟州区新一轮中小企业创新转型任务及责任部门 > ") for r in rows)


def test_attachment_list_is_not_read_as_items(seed_clauses):
    jz = by_id([c for c in seed_clauses if c.doc_id == "jizhou-2018"])
    assert "附件：" in jz["jizhou-2018#附件"].text
    assert "jizhou-2018#四.(三).1" not in jz
    assert jz["jizhou-2018#附件1.一"].section.startswith("附件1 蓟州区新一轮中小企业创新转型行动计划领导小组及主要职责 > 一、组织机构")


def test_cited_text_is_faithful_and_covers_the_document(seed_docs, seed_clauses):
    for doc in seed_docs:
        source = compact(doc.text)
        clauses = [c for c in seed_clauses if c.doc_id == doc.doc_id and "#表" not in c.clause_id]
        for c in clauses:
            assert c.text in doc.text, c.clause_id  # cited text is a verbatim slice
        covered = sum(len(compact(c.text)) for c in clauses)
        assert covered >= 0.9 * len(source) - 600, doc.doc_id  # (tables are re-laid out as rows)


def test_ids_unique_and_stable(seed_docs, seed_clauses):
    ids = [c.clause_id for c in seed_clauses]
    assert len(ids) == len(set(ids))
    again = [c.clause_id for d in seed_docs for c in split(d)]
    assert again == ids


def test_size_cap_splits_at_sentence_ends():
    body = "".join(f"第{i}句话说明了一项支持措施的具体内容和要求。" for i in range(40))
    clauses = split(_doc("一、总则\n" + body + "（区科委负责）"), max_chars=200)
    assert len(clauses) > 3
    assert all(len(c.text) <= 200 for c in clauses)
    assert all(c.section == "一、总则" for c in clauses)
    assert all(c.text.endswith(("。", "）")) for c in clauses)
    assert {c.department for c in clauses} == {"区科委"}
    assert clauses[0].clause_id == "d#一~1"


def test_inline_markers_and_false_positives():
    text = (
        "一、总体要求 (一)工作思路。以创新驱动为核心,比重提升至 1.4% 以上,实施“3.0升级版”。"
        " (二)主要目标。到 2020 年底,达 30% 以上。 二、重点任务 1. 鼓励企业建设研发机构。"
        "(责任单位:区工信委) 2. 激发创新动力。统一、规范管理。(责任单位:区科委)"
    )
    clauses = split(_doc(text))
    sections = [c.section for c in clauses]
    assert "一、总体要求 > (一)工作思路" in sections
    assert "一、总体要求 > (二)主要目标" in sections
    assert "二、重点任务 > 1. 鼓励企业建设研发机构" in sections
    assert "二、重点任务 > 2. 激发创新动力" in sections
    assert len(clauses) == 4  # nothing opened at "1.4%", "3.0", "统一、"
    assert by_id(clauses)["d#二.2"].department == "区科委"


def test_tiny_heading_merges_into_children():
    text = "三、具体任务\n(一)发展科技型中小企业\n1.鼓励企业提升员工学历水平;\n2.支持企业加大研发投入。"
    clauses = split(_doc(text))
    assert [c.clause_id for c in clauses] == ["d#三.(一).1", "d#三.(一).2"]
    assert clauses[0].section == "三、具体任务 > (一)发展科技型中小企业 > 1."


def test_department_patterns():
    assert department_of("……提高企业全要素生产率。（区科委负责）") == "区科委"
    assert department_of("……(责任单位:市财政局、市工业和信息化局)") == "市财政局、市工业和信息化局"
    assert department_of("……2019年底完成。（区科技局、宝坻经济开发区管委会、各街镇）") == "区科技局、宝坻经济开发区管委会、各街镇"
    assert department_of("对首次获批的国家高新技术企业给予奖励。") == ""


def test_index_text_has_title_and_path(seed_clauses):
    c = next(c for c in seed_clauses if c.clause_id == "jizhou-2018#三.(五).3")
    assert c.index_text().startswith("2018年蓟州区新一轮中小企业创新转型行动计划\n三、政策扶持 > （五）支持企业股改上市")
