"""Browser: the real widget embedded in a host page and the /lookup page, driven in headless Chromium."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from serving import in_thread

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
QUESTION = "首次获批的国家高新技术企业有什么奖励？"



@pytest.fixture
def host_site(tmp_path):
    """A separate "host website" on another localhost port (another origin), serving tmp_path."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    thread.join(10)


@contextmanager
def serving(settings):
    """The real app over `settings` on a free localhost port, for the browser; yields its base URL."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium); no browser is downloaded")
    with in_thread(settings) as url:
        yield url


@pytest.fixture
def server(hash_settings, host_site):
    """The real app over the hash index, served by uvicorn on a free localhost port."""
    with serving(hash_settings.model_copy(update={"cors_origins": [host_site[1]], "rate_limit": "1000/minute"})) as url:
        yield url


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )
        pg = browser.new_page(viewport={"width": 1280, "height": 860})
        pg.set_default_timeout(20_000)
        yield pg
        browser.close()


def test_widget_in_host_page_answers_and_shows_citation(server, host_site, page):
    # A host site on another origin embeds the widget with one script tag; its own CSS must not leak in.
    host = f"""<!doctype html><html><head><meta charset="utf-8"><title>某园区门户</title>
<style>* {{ color: red !important; font-size: 40px !important; }} button {{ display: none !important; }}</style></head>
<body><h1>园区门户网站</h1><p>欢迎访问。</p>
<script src="{server}/widget.js" data-title="政策助手" defer></script></body></html>"""
    folder, origin = host_site
    (folder / "host.html").write_text(host, encoding="utf-8")
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{origin}/host.html")
    page.locator("#policy-assistant-widget .pa-launcher").click()
    page.locator("#policy-assistant-widget .pa-panel").wait_for(state="visible")
    page.locator("#policy-assistant-widget .pa-input").fill(QUESTION)
    page.locator("#policy-assistant-widget .pa-send").click()
    answer = page.locator('#policy-assistant-widget .pa-msg.pa-bot[data-state="done"]').last
    answer.wait_for()
    assert "30—50万元" in answer.inner_text()
    page.screenshot(path=str(ARTIFACTS / "widget-answer.png"))
    answer.locator("button.cite").first.click()
    popover = page.locator("#policy-assistant-widget .popover")
    popover.wait_for(state="visible")
    text = popover.inner_text()
    assert "蓟州区" in text and "首次获批的国家高新技术企业" in text
    page.screenshot(path=str(ARTIFACTS / "widget-popover.png"))
    assert not errors, errors


def test_lookup_search_and_open_clause(server, page):
    page.goto(f"{server}/lookup")
    page.locator("#q").fill("高新技术企业 奖励")
    page.locator("#search-btn").click()
    first = page.locator("#results .result").first
    first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "lookup-results.png"))
    first.locator(".open-clause").first.click()
    selected = page.locator("#doc-view .selected[data-clause-id]")
    selected.wait_for()
    clause_id = selected.get_attribute("data-clause-id")
    assert clause_id and "#" in clause_id
    assert page.locator("#doc-view").inner_text().count("\n") > 5  # the whole clause tree, not only the clause
    page.screenshot(path=str(ARTIFACTS / "lookup-clause.png"))


def test_lookup_deep_link(server, page):
    from urllib.parse import quote

    cid = "jizhou-2018#三.(一)"
    page.goto(f"{server}/lookup?clause={quote(cid, safe='')}")
    selected = page.locator("#doc-view .selected[data-clause-id]")
    selected.wait_for()
    assert selected.get_attribute("data-clause-id") == cid


def test_demo_page_embeds_widget(server, page):
    page.goto(f"{server}/")
    page.locator("#policy-assistant-widget .pa-launcher").click()
    page.locator("#policy-assistant-widget .pa-panel").wait_for(state="visible")
    page.locator("#policy-assistant-widget .pa-input").fill("蓟州区对企业上市有什么支持？")
    page.locator("#policy-assistant-widget .pa-send").click()
    answer = page.locator('#policy-assistant-widget .pa-msg.pa-bot[data-state="done"]').last
    answer.wait_for()
    page.screenshot(path=str(ARTIFACTS / "demo-page.png"))
    # the answer quotes a listing clause of 蓟州's plan, cited
    text = answer.inner_text()
    assert "支持企业股改上市" in text and answer.locator("button.cite").count() >= 1, text
    # the session survives a reload (sessionStorage): the same answer is shown again
    page.reload()
    restored = page.locator("#policy-assistant-widget .pa-msg.pa-bot").last
    restored.wait_for(state="attached")
    assert "支持企业股改上市" in restored.text_content()


def _wait_answers(page, n: int) -> None:
    """Wait until the widget shows n finished answers."""
    page.wait_for_function(
        "n => document.querySelector('#policy-assistant-widget').shadowRoot"
        ".querySelectorAll('.pa-msg.pa-bot[data-state=\"done\"]').length >= n", arg=n)


def _first_citation(page, answer) -> str:
    """Open an answer's first citation and return the popover's text."""
    answer.locator("button.cite").first.click()
    popover = page.locator("#policy-assistant-widget .popover")
    popover.wait_for(state="visible")
    return popover.inner_text()


def test_widget_followup_cites_the_new_topic(server, page):
    # "我们公司刚被认定为高企，能拿多少钱？" then "那上市呢？": the follow-up's first citation is the listing clause
    page.goto(f"{server}/")
    page.locator("#policy-assistant-widget .pa-launcher").click()
    page.locator("#policy-assistant-widget .pa-panel").wait_for(state="visible")
    done = page.locator('#policy-assistant-widget .pa-msg.pa-bot[data-state="done"]')
    for n, message in enumerate(("我们公司刚被认定为高企，能拿多少钱？", "那上市呢？"), 1):
        page.locator("#policy-assistant-widget .pa-input").fill(message)
        page.locator("#policy-assistant-widget .pa-send").click()
        _wait_answers(page, n)
    answer = done.last
    assert "上市" in answer.inner_text()
    assert "上市" in _first_citation(page, answer)
    page.screenshot(path=str(ARTIFACTS / "widget-followup.png"))


def test_widget_clarify_option_asks_again_in_that_region(server, page):
    page.goto(f"{server}/")
    page.locator("#policy-assistant-widget .pa-launcher").click()
    page.locator("#policy-assistant-widget .pa-panel").wait_for(state="visible")
    page.locator("#policy-assistant-widget .pa-input").fill(QUESTION)
    page.locator("#policy-assistant-widget .pa-send").click()
    done = page.locator('#policy-assistant-widget .pa-msg.pa-bot[data-state="done"]')
    done.last.wait_for()
    options = done.last.locator(".pa-clarify .pa-option")
    assert options.all_inner_texts() == ["天津市蓟州区", "天津市宝坻区"]
    # both cited plans have ended (judged today): the warning is shown once, set apart from the quotes
    notice = done.last.locator(".pa-notice").inner_text()
    assert notice.startswith("提示：") and "期限均已届满" in notice
    assert "提示：" not in done.last.locator(".pa-answer").inner_text() and "⚠" not in done.last.locator(".pa-answer").inner_text()
    page.screenshot(path=str(ARTIFACTS / "widget-clarify.png"))
    options.nth(1).click()
    _wait_answers(page, 2)
    answer = done.last
    assert "已检索：天津市宝坻区" in answer.inner_text()
    assert "宝坻区" in _first_citation(page, answer)


def test_widget_match_tab_lists_the_granting_clauses(server, page):
    page.goto(f"{server}/")
    page.locator("#policy-assistant-widget .pa-launcher").click()
    page.locator("#policy-assistant-widget .pa-panel").wait_for(state="visible")
    page.locator("#policy-assistant-widget .pa-tab", has_text="政策匹配").click()
    region = page.locator("#policy-assistant-widget .pa-m-region")
    page.wait_for_function("() => document.querySelector('#policy-assistant-widget').shadowRoot"
                           ".querySelectorAll('.pa-m-region option').length > 1")
    region.select_option("天津市蓟州区")
    page.locator("#policy-assistant-widget .pa-m-profile").fill("首次获批的国家高新技术企业，计划在新三板挂牌")
    page.locator("#policy-assistant-widget .pa-m-go").click()
    items = page.locator("#policy-assistant-widget .pa-m-item")
    items.first.wait_for()
    ids = [items.nth(i).get_attribute("data-clause-id") for i in range(items.count())]
    assert {"jizhou-2018#三.(一)", "jizhou-2018#三.(五).2"} <= set(ids[:2])
    assert "30—50万元" in page.locator("#policy-assistant-widget .pa-m-results").inner_text()
    page.screenshot(path=str(ARTIFACTS / "widget-match.png"))


@pytest.mark.parametrize("viewport,name", [((1280, 860), "desktop"), ((390, 844), "phone")])
def test_widget_shows_the_fact_first_and_one_header_per_document(server, page, viewport, name):
    # issue 22: the typed value the question asks for opens the answer, set large; each cited document's
    # title heads one line; the short validity line is replaced by the notice under the answer
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    page.goto(f"{server}/")
    page.locator("#policy-assistant-widget .pa-launcher").click()
    page.locator("#policy-assistant-widget .pa-panel").wait_for(state="visible")
    page.locator("#policy-assistant-widget .pa-input").fill("蓟州区对首次获批的国家高新技术企业奖励多少？")
    page.locator("#policy-assistant-widget .pa-send").click()
    answer = page.locator('#policy-assistant-widget .pa-msg.pa-bot[data-state="done"]').last
    answer.wait_for()
    fact = answer.locator(".pa-answer .pa-fact")
    assert fact.is_visible() and fact.inner_text().startswith("30—50万元")
    assert fact.locator("button.cite").count() >= 1
    size = fact.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    body = answer.locator(".pa-answer").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert size > body  # the fact line stands out from the quoted text
    text = answer.locator(".pa-answer").inner_text()
    titles = [line[: line.index("》") + 1] for line in text.splitlines() if line.startswith("《")]
    assert titles and len(titles) == len(set(titles)), text
    assert "⚠" not in text and "提示：" not in text
    page.screenshot(path=str(ARTIFACTS / f"widget-fact-{name}.png"))


def _open_match_tab(page, server):
    page.goto(f"{server}/")
    page.locator("#policy-assistant-widget .pa-launcher").click()
    page.locator("#policy-assistant-widget .pa-panel").wait_for(state="visible")
    page.locator("#policy-assistant-widget .pa-tab", has_text="政策匹配").click()
    page.wait_for_function("() => document.querySelector('#policy-assistant-widget').shadowRoot"
                           ".querySelectorAll('.pa-m-region option').length > 1")
    page.locator("#policy-assistant-widget .pa-m-region").select_option("天津市蓟州区")
    page.locator("#policy-assistant-widget .pa-m-qual", has_text="通过清洁生产审核的企业").wait_for()


def _card(page, clause_id: str, text: str):
    """The result card of one rule: its clause and a word of its conditions."""
    return page.locator(f'#policy-assistant-widget .pa-m-item[data-clause-id="{clause_id}"]', has_text=text)


def test_widget_calculator_form_checklist_estimate_and_answer_in_place(server, page):
    # the calculator: the form's facts → cards with a checklist and the formula; an unknown condition's
    # question answered on its card fills in the form and runs the match again
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _open_match_tab(page, server)
    w = "#policy-assistant-widget "
    page.locator(w + ".pa-m-industry").select_option("工业")
    page.locator(w + ".pa-m-qual", has_text="国家高新技术企业").locator("input").check()
    page.locator(w + ".pa-m-go").click()
    energy = _card(page, "jizhou-2018#三.(四)", "节能量在1000吨标准煤以上")
    energy.wait_for()
    # 节能量 not given: the card asks for it in its unit, with an input beside the question
    assert energy.get_attribute("data-group") == "unknown"
    assert "贵企业节能量是多少吨标准煤？" in energy.inner_text()
    assert energy.locator(".pa-m-check[data-status=unknown] .pa-m-unit").inner_text() == "吨标准煤"
    high_tech = _card(page, "jizhou-2018#三.(一)", "国家高新技术企业")
    assert high_tech.locator(".pa-m-check[data-status=met]").count() == 1  # the ticked qualification
    page.screenshot(path=str(ARTIFACTS / "widget-calculator-unknown.png"))
    energy.locator(".pa-m-answer").fill("2000")
    energy.locator(".pa-m-answer-go").click()
    eligible = page.locator(w + '.pa-m-item[data-clause-id="jizhou-2018#三.(四)"][data-group="eligible"]')
    eligible.wait_for()
    assert eligible.locator(".pa-m-formula").inner_text() == "2000吨 × 240元/吨 = 48万元（未达上限300万元）"
    assert eligible.locator(".pa-m-amount").inner_text() == "48万元"
    assert eligible.locator(".pa-m-mark").all_inner_texts() == ["✓", "✓"]
    assert eligible.locator(".pa-m-v").inner_text() in ("现行有效", "已过期")  # the validity badge
    link = eligible.locator(".pa-m-src a").get_attribute("href")
    assert "/lookup?clause=" in link and "jizhou-2018" in link
    # the answer went into the form: a 节能量 row, which the next run sends again
    assert page.locator(w + ".pa-m-qname").input_value() == "节能量"
    assert page.locator(w + ".pa-m-qunit").input_value() == "吨标准煤"
    # the high-tech award asks whether the recognition is new: 是 runs the match again, now eligible
    high_tech.locator(".pa-m-yes").click()
    page.locator(w + '.pa-m-item[data-clause-id="jizhou-2018#三.(一)"][data-group="eligible"]',
                 has_text="国家高新技术企业").wait_for()
    assert "首次获批" in page.locator(w + ".pa-m-profile").input_value()
    cards = page.locator(w + ".pa-m-item")
    groups = [cards.nth(i).get_attribute("data-group") for i in range(cards.count())]
    assert groups[:2] == ["eligible", "eligible"] and "30万元—50万元" in page.locator(w + ".pa-m-results").inner_text()
    page.screenshot(path=str(ARTIFACTS / "widget-calculator.png"))
    assert not errors, errors


def test_widget_calculator_on_a_phone(server, page):
    page.set_viewport_size({"width": 390, "height": 844})
    _open_match_tab(page, server)
    w = "#policy-assistant-widget "
    panel = page.locator(w + ".pa-panel").bounding_box()
    assert panel["width"] == 390  # full screen on a phone
    page.locator(w + ".pa-m-industry").select_option("工业")
    page.locator(w + ".pa-m-add").click()
    page.locator(w + ".pa-m-qname").fill("节能量")
    page.locator(w + ".pa-m-qname").dispatch_event("change")
    page.locator(w + ".pa-m-qvalue").fill("800")
    assert page.locator(w + ".pa-m-qunit").input_value() == "吨标准煤"  # the library's unit for 节能量 comes first
    # nothing of the form, nor later of a card, is wider than the screen
    widest = ("() => Math.max(...[...document.querySelector('#policy-assistant-widget').shadowRoot"
              ".querySelectorAll('.pa-match *')].map(e => e.getBoundingClientRect().right))")
    assert page.evaluate(widest) <= 390
    page.screenshot(path=str(ARTIFACTS / "widget-calculator-phone-form.png"))
    page.locator(w + ".pa-m-go").click()
    near = page.locator(w + '.pa-m-item[data-clause-id="jizhou-2018#三.(四)"][data-group="near_miss"]')
    near.wait_for()
    assert "尚缺" in near.inner_text() and near.locator(".pa-m-check[data-status=unmet]").count() == 1
    assert "节能量800吨标准煤" in page.locator(w + ".pa-m-summary").inner_text()  # the form folded to one line
    assert page.evaluate(widest) <= 390
    near.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "widget-calculator-phone.png"))
