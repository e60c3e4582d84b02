"""Browser: the staff console (/admin) driven in headless Chromium, on a desktop and a phone viewport.

(a) sign in, upload two files, watch the re-index finish, write a curated answer from a feedback item, and
see the widget serve it; (b) run an evaluation from the console and see its report. Screenshots go to
test-artifacts/console-*.png.
"""

from __future__ import annotations

import json

import httpx
import pytest

from test_browser import ARTIFACTS, CHROMIUM, serving

pytestmark = pytest.mark.browser

TOKEN = "alice-token-123"
QUESTION = "蓟州区对首次获批的国家高新技术企业奖励多少钱？"
PARAPHRASE = "蓟州区首次获批国家高新技术企业的，奖励多少钱？"
CURATED = "经核实：首次获批的国家高新技术企业，按规模给予30—50万元奖励[1]。"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def console_server(hash_settings):
    with serving(hash_settings.model_copy(update={"admin_tokens": f"alice:{TOKEN}", "rate_limit": "10000/minute"})) as url:
        yield url


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu",
                              "--disable-background-networking", "--disable-component-update", "--no-first-run"])
        yield b
        b.close()


def new_page(browser, viewport):
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(30_000)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


def sign_in(page, server):
    page.goto(f"{server}/admin")
    page.locator("#token").fill("wrong-token-000")
    page.locator("#signin-btn").click()
    page.locator("#signin-error", has_text="令牌不正确").wait_for()
    page.locator("#token").fill(TOKEN)
    page.locator("#signin-btn").click()
    page.locator("#whoami", has_text="alice").wait_for()


def thumbs_down(server, question):
    # a user's turn and their thumbs-down, as the widget sends them
    with httpx.Client(base_url=server) as c:
        answer = c.post("/api/chat", json={"message": question}).json()
        c.post("/api/feedback", json={"session_id": answer["session_id"], "turn": answer["turn"], "rating": "down",
                                      "comment": "希望给出确切的金额"})


def test_console_library_feedback_curated_and_widget(console_server, browser, tmp_path):
    server = console_server
    thumbs_down(server, QUESTION)
    page, errors = new_page(browser, {"width": 1280, "height": 900})
    sign_in(page, server)
    page.screenshot(path=str(ARTIFACTS / "console-library.png"), full_page=True)
    one, two = tmp_path / "无人机.txt", tmp_path / "人才.txt"
    one.write_text("关于支持无人机产业发展的若干措施\n一、对新落户的无人机整机企业，给予一次性奖励200万元。\n", encoding="utf-8")
    two.write_text("关于引进高层次人才的若干措施\n一、对新引进的博士，给予安家补贴10万元。\n", encoding="utf-8")
    page.locator("#files").set_input_files([str(one), str(two)])
    page.locator('#upload-results li[data-ok="true"]').nth(1).wait_for()
    assert page.locator('#docs tbody tr', has_text="无人机").locator(".badge", has_text="待索引").count() == 1
    page.locator("#reindex").click()
    page.locator('.reindex-state[data-state="done"]').wait_for()
    row = page.locator("#docs tbody tr", has_text="关于支持无人机产业发展的若干措施")
    row.locator(".badge", has_text="已索引").wait_for()
    assert "没有跳过的文件" in page.locator("#reindex-status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "console-reindexed.png"), full_page=True)

    page.locator('.tabs button[data-tab="feedback"]').click()
    item = page.locator("article.feedback", has_text=QUESTION).first
    item.wait_for()
    assert "希望给出确切的金额" in item.inner_text()
    page.screenshot(path=str(ARTIFACTS / "console-feedback.png"), full_page=True)
    item.locator("button.write-curated").click()
    dialog = page.locator("#curated-dialog")
    dialog.wait_for(state="visible")
    assert page.locator("#cu-question").input_value() == QUESTION
    page.locator("#cu-search").fill("首次获批 国家高新技术企业 奖励")
    page.locator("#cu-search-btn").click()
    hit = page.locator("#cu-hits li", has_text="jizhou-2018#三.(一)").first
    hit.wait_for()
    page.locator("#cu-answer").fill(CURATED.replace("[1]", ""))
    _pick_only(page, hit)
    page.screenshot(path=str(ARTIFACTS / "console-curated-editor.png"))
    assert page.locator("#cu-picked li").count() == 1 and page.locator("#cu-answer").input_value().endswith("[1]")
    page.locator("#cu-save").click()
    card = page.locator("article.curated", has_text=QUESTION)
    card.wait_for()
    assert "生效中" in card.inner_text() and "jizhou-2018#三.(一)" in card.inner_text()
    page.screenshot(path=str(ARTIFACTS / "console-curated.png"), full_page=True)
    page.locator('.tabs button[data-tab="audit"]').click()
    page.locator('#audit tr[data-action="curated.add"]').wait_for()
    audit = page.locator("#audit").inner_text()
    assert "登录失败" in audit and "上传文档" in audit and "重新索引" in audit and TOKEN not in audit
    page.screenshot(path=str(ARTIFACTS / "console-audit.png"), full_page=True)

    widget, widget_errors = new_page(browser, {"width": 1280, "height": 860})
    widget.goto(f"{server}/")
    widget.locator("#policy-assistant-widget .pa-launcher").click()
    widget.locator("#policy-assistant-widget .pa-input").fill(PARAPHRASE)
    widget.locator("#policy-assistant-widget .pa-send").click()
    answer = widget.locator('#policy-assistant-widget .pa-msg.pa-bot[data-state="done"]').last
    answer.wait_for()
    text = answer.inner_text()
    assert "经核实" in text and "工作人员审定答复" in text, text
    widget.screenshot(path=str(ARTIFACTS / "console-widget-serves-curated.png"))
    assert not errors and not widget_errors, errors + widget_errors


def _pick_only(page, hit):
    # the editor starts with the feedback's citations; keep only the clause picked from the search
    while page.locator("#cu-picked li .btn.danger").count():
        page.locator("#cu-picked li .btn.danger").first.click()
    hit.locator("button.pick").click()
    page.locator("#cu-picked li").first.locator("button", has_text="插入 [1]").click()


def test_console_runs_an_evaluation_and_shows_the_report(console_server, browser, tmp_path):
    server = console_server
    page, errors = new_page(browser, PHONE)
    sign_in(page, server)
    page.screenshot(path=str(ARTIFACTS / "console-phone-library.png"), full_page=True)
    page.locator('.tabs button[data-tab="eval"]').click()
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"question": "a"}\n{"question": \n', encoding="utf-8")
    page.locator("#testset-file").set_input_files(str(bad))
    page.locator("#testset-result", has_text="line 2").wait_for()
    items = [{"id": "a", "question": QUESTION, "gold_quotes": ["给予30—50万元奖励"], "facts": ["30—50万元"], "refuse": False},
             {"id": "b", "question": "蓟州区对获评中国驰名商标的企业一次性奖励多少？", "gold_quotes": ["中国驰名商标"], "facts": ["10万元"],
              "refuse": False},
             {"id": "c", "question": "今天天气怎么样？", "gold_quotes": [], "refuse": True}]
    good = tmp_path / "mini.jsonl"
    good.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    page.locator("#testset-file").set_input_files(str(good))
    page.locator("#testset-result", has_text="3 题").wait_for()
    page.locator("#eval-start").click()
    report = page.locator("#eval-report")
    report.locator(".metric").first.wait_for()
    report.locator('img[alt="recall_at_k.png"]').wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('#eval-report img')].every(i => i.complete && i.naturalWidth > 0)")
    assert "mini.jsonl" in report.inner_text() and "hybrid" in report.inner_text()
    page.locator('#runs tbody tr[data-run]').first.wait_for()
    assert "完成" in page.locator("#runs tbody").inner_text()
    page.screenshot(path=str(ARTIFACTS / "console-phone-eval-report.png"), full_page=True)
    desktop, desktop_errors = new_page(browser, {"width": 1280, "height": 900})
    sign_in(desktop, server)
    desktop.locator('.tabs button[data-tab="eval"]').click()
    desktop.locator('#runs tbody tr[data-run]').first.click()
    desktop.locator('#eval-report img[alt="recall_at_k.png"]').wait_for()
    desktop.wait_for_function("() => [...document.querySelectorAll('#eval-report img')].every(i => i.complete && i.naturalWidth > 0)")
    desktop.screenshot(path=str(ARTIFACTS / "console-eval-report.png"), full_page=True)
    assert not errors and not desktop_errors, errors + desktop_errors
