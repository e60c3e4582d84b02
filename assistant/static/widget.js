/*
 * 政策助手 — embeddable chat widget for government / park websites.
 *
 *   <script src="http://HOST/widget.js" data-title="政策助手" defer></script>
 *
 * Optional attributes: data-question (asked when the panel first opens, or at once with
 * data-open="true"), data-open, data-api (API base; default: derived from this script's src),
 * data-suggestions ("|"-separated starter questions).
 *
 * Everything lives in an open Shadow DOM on #policy-assistant-widget. Server text is only ever
 * inserted as text nodes (textContent / createTextNode / Node.append(string)), never as HTML.
 */
(function () {
  'use strict';
  if (window.__policyAssistantWidget || document.getElementById('policy-assistant-widget')) return;
  window.__policyAssistantWidget = true;

  const script = document.currentScript ||
    Array.from(document.querySelectorAll('script[src]')).find((s) => /widget\.js([?#]|$)/.test(s.src));
  const ds = (script && script.dataset) || {};
  const API = (ds.api || (script && script.src
    ? script.src.replace(/[?#].*$/, '').replace(/(\/static)?\/widget\.js$/, '')
    : location.origin)).replace(/\/+$/, '');
  const TITLE = ds.title || '政策助手';
  const QUESTION = (ds.question || '').trim();
  const MAX = 1000;
  const SUGGESTIONS = (ds.suggestions ? ds.suggestions.split('|') : [
    '首次获批的国家高新技术企业有什么奖励？',
    '企业在新三板挂牌有什么补助？',
    '专精特新“小巨人”企业有什么奖励？',
  ]).map((s) => s.trim()).filter(Boolean);
  const KEY = 'policy-assistant:' + API;

  // ---------------------------------------------------------------- state & storage
  let state = { sessionId: null, items: [], open: false, asked: false };
  try {
    const saved = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    if (saved && Array.isArray(saved.items)) state = Object.assign(state, saved);
  } catch (e) { /* storage unavailable or corrupt: start fresh */ }
  function save() {
    state.items = state.items.slice(-60);
    try { sessionStorage.setItem(KEY, JSON.stringify(state)); } catch (e) { /* quota / disabled */ }
  }
  let busy = false;

  // ---------------------------------------------------------------- DOM helpers
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) if (kid != null && kid !== false) el.append(kid); // strings → text nodes
    return el;
  }
  const SVG = 'http://www.w3.org/2000/svg';
  function icon(paths, size) {
    const svg = document.createElementNS(SVG, 'svg');
    const attrs = { viewBox: '0 0 24 24', width: size || 20, height: size || 20, fill: 'none', stroke: 'currentColor',
      'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true', focusable: 'false' };
    for (const [k, v] of Object.entries(attrs)) svg.setAttribute(k, String(v));
    for (const d of [].concat(paths)) {
      const p = document.createElementNS(SVG, 'path');
      p.setAttribute('d', d);
      svg.appendChild(p);
    }
    return svg;
  }
  const I = {
    chat: ['M21 11.5a8.4 8.4 0 0 1-12.2 7.5L3 21l2-5.2A8.5 8.5 0 1 1 21 11.5z', 'M8 10h8M8 13.5h5'],
    close: 'M6 6l12 12M18 6L6 18',
    send: ['M22 2L11 13', 'M22 2l-7 20-4-9-9-4 20-7z'],
    thumb: ['M7 11v10H3V11h4z', 'M7 11l4-8a2.5 2.5 0 0 1 3.5 2.3L14 10h5.5a2 2 0 0 1 2 2.4l-1.5 7A2 2 0 0 1 18 21H7'],
  };

  /** Text nodes of `text` with every occurrence of `quote` wrapped in <mark>. */
  function highlighted(text, quote) {
    const frag = document.createDocumentFragment();
    text = String(text || '');
    quote = String(quote || '').trim();
    if (!quote || text.indexOf(quote) < 0) { frag.appendChild(document.createTextNode(text)); return frag; }
    text.split(quote).forEach((part, i) => {
      if (i > 0) { const m = document.createElement('mark'); m.textContent = quote; frag.appendChild(m); }
      if (part) frag.appendChild(document.createTextNode(part));
    });
    return frag;
  }
  const pathOf = (section) => String(section || '').split(' > ').map((s) => s.trim()).filter(Boolean).join(' › ');
  const metaOf = (c) => [c.region, pathOf(c.section)].filter(Boolean).join(' · ');

  // ---------------------------------------------------------------- API
  class ApiError extends Error {}
  function detailOf(d) {
    if (!d) return '';
    const x = d.detail;
    if (typeof x === 'string') return x;
    if (Array.isArray(x)) return x.map((e) => (e && e.msg) || String(e)).join('；');
    return x ? String(x.message || JSON.stringify(x)) : '';
  }
  async function post(path, payload) {
    let res;
    try {
      res = await fetch(API + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload) });
    } catch (e) { throw new ApiError('无法连接到服务，请检查网络后重试。'); }
    let data = null;
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) throw new ApiError(detailOf(data) || `请求失败（${res.status}），请稍后重试。`);
    if (!data) throw new ApiError('服务返回了无法识别的数据。');
    return data;
  }

  /** POST /api/chat/stream, parse SSE from the response body; falls back to /api/chat when streaming is unavailable. */
  async function chat(payload, view) {
    let res;
    try {
      res = await fetch(API + '/api/chat/stream', { method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' }, body: JSON.stringify(payload) });
    } catch (e) { return post('/api/chat', payload); }
    if (!res.ok || !res.body || /json/.test(res.headers.get('content-type') || '')) {
      if (res.body) res.body.cancel().catch(() => {});
      return post('/api/chat', payload);
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder('utf-8');
    let raw = '', pending = '', text = '', record = null, meta = null;
    const dispatch = (event, data) => {
      let obj = {};
      try { obj = data ? JSON.parse(data) : {}; } catch (e) { return; }
      if (event === 'meta') { meta = obj; if (obj.session_id) state.sessionId = obj.session_id; view.meta(obj); }
      else if (event === 'delta') { text += obj.text == null ? '' : String(obj.text); view.delta(text); }
      else if (event === 'done') record = obj;
      else if (event === 'error') throw new ApiError(detailOf(obj) || '服务出错，请稍后重试。');
    };
    const block = (b) => {
      let event = 'message';
      const data = [];
      for (const line of b.split('\n')) {
        if (!line || line[0] === ':') continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let value = i < 0 ? '' : line.slice(i + 1);
        if (value[0] === ' ') value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length) dispatch(event, data.join('\n'));
    };
    const feed = (chunk, final) => {
      raw += chunk;
      const keep = !final && raw.endsWith('\r') ? 1 : 0; // a CR may be the first half of CRLF
      pending += raw.slice(0, raw.length - keep).replace(/\r\n?/g, '\n');
      raw = raw.slice(raw.length - keep);
      let i;
      while (!record && (i = pending.indexOf('\n\n')) >= 0) { block(pending.slice(0, i)); pending = pending.slice(i + 2); }
      if (final && !record && pending.trim()) block(pending);
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) { feed(decoder.decode(), true); break; }
        feed(decoder.decode(value, { stream: true }), false);
        if (record) { reader.cancel().catch(() => {}); break; }
      }
    } catch (e) {
      reader.cancel().catch(() => {});
      if (e instanceof ApiError) throw e;
      if (!meta && !text) return post('/api/chat', payload);
    }
    if (record) {
      if (!record.session_id && meta) record.session_id = meta.session_id;
      if (record.answer == null) record.answer = text;
      return record;
    }
    if (!meta && !text) return post('/api/chat', payload);
    throw new ApiError('连接中断，回答未完整接收，请重试。');
  }

  // ---------------------------------------------------------------- shell
  const host = h('div', { id: 'policy-assistant-widget' });
  const shadow = host.attachShadow({ mode: 'open' });
  const style = document.createElement('style');
  style.textContent = `
:host{all:initial!important;position:fixed!important;right:0!important;bottom:0!important;width:0!important;height:0!important;
  display:block!important;z-index:2147483000!important;transform:none!important;filter:none!important;visibility:visible!important;opacity:1!important;contain:none!important}
.pa-root,.pa-root *{box-sizing:border-box}
.pa-root{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC","Source Han Sans SC","WenQuanYi Micro Hei",sans-serif;
  font-size:14px;line-height:1.65;color:#1f2937;text-align:left;letter-spacing:normal;font-weight:400;font-style:normal;
  text-transform:none;word-spacing:normal;direction:ltr;-webkit-font-smoothing:antialiased}
button,textarea{font:inherit;color:inherit;letter-spacing:inherit;text-transform:none}
button{cursor:pointer}
:focus-visible{outline:2px solid #2563eb;outline-offset:2px}
.pa-launcher{position:fixed;right:24px;bottom:24px;width:60px;height:60px;border-radius:50%;border:0;padding:0;
  background:linear-gradient(135deg,#1e40af,#2563eb);color:#fff;display:flex;align-items:center;justify-content:center;
  box-shadow:0 8px 24px rgba(30,64,175,.35);transition:transform .15s ease,box-shadow .15s ease}
.pa-launcher:hover{transform:translateY(-2px);box-shadow:0 12px 28px rgba(30,64,175,.45)}
.pa-launcher:focus-visible{outline:3px solid #93c5fd;outline-offset:3px}
.pa-panel{position:fixed;right:24px;bottom:96px;width:400px;max-width:calc(100vw - 32px);height:640px;max-height:calc(100vh - 120px);
  background:#fff;border-radius:16px;box-shadow:0 18px 48px rgba(15,23,42,.28),0 0 0 1px rgba(15,23,42,.06);
  display:flex;flex-direction:column;overflow:hidden}
.pa-panel[hidden]{display:none}
.pa-head{display:flex;align-items:center;gap:10px;padding:12px 12px 12px 16px;background:linear-gradient(135deg,#1e40af,#2563eb);color:#fff}
.pa-head .pa-ico{width:34px;height:34px;border-radius:50%;background:rgba(255,255,255,.18);display:flex;align-items:center;justify-content:center;flex:none}
.pa-titles{flex:1;min-width:0}
.pa-title{margin:0;font-size:16px;font-weight:600;line-height:1.3}
.pa-subtitle{margin:0;font-size:12px;opacity:.85;line-height:1.4}
.pa-hbtn{border:0;background:rgba(255,255,255,.14);color:#fff;border-radius:8px;height:30px;padding:0 9px;font-size:12px;display:flex;align-items:center}
.pa-hbtn:hover{background:rgba(255,255,255,.26)}
.pa-hbtn:focus-visible{outline-color:#fff}
.pa-msgs{flex:1;overflow-y:auto;padding:14px 14px 6px;background:#f4f6fb;overscroll-behavior:contain}
.pa-welcome{background:#fff;border:1px solid #e3e8f2;border-radius:12px;padding:12px 14px;margin-bottom:12px}
.pa-welcome p{margin:0 0 8px}
.pa-suggest{display:flex;flex-direction:column;gap:6px}
.pa-suggest button{border:1px solid #c7d5f5;background:#f5f8ff;color:#1e40af;border-radius:10px;padding:7px 10px;text-align:left;font-size:13px;line-height:1.5}
.pa-suggest button:hover{background:#e8efff}
.pa-msg{display:flex;flex-direction:column;margin:0 0 14px}
.pa-user{align-items:flex-end}
.pa-bubble{max-width:86%;padding:9px 13px;border-radius:14px;white-space:pre-wrap;word-break:break-word;overflow-wrap:anywhere}
.pa-user .pa-bubble{background:#2563eb;color:#fff;border-bottom-right-radius:4px}
.pa-bot .pa-bubble{max-width:100%;background:#fff;border:1px solid #e3e8f2;border-bottom-left-radius:4px}
.pa-bot.pa-streaming .pa-bubble::after{content:"▍";color:#2563eb;animation:pa-blink 1s steps(2) infinite}
.pa-bot .pa-bubble.pa-refused{background:#fffbeb;border-color:#fcd34d;color:#78350f}
.pa-tabs{display:flex;gap:4px;padding:6px 10px 0;background:#eef2fb;border-bottom:1px solid #e3e8f2}
.pa-tab{border:0;background:transparent;padding:7px 12px;font-size:13px;color:#475569;border-radius:8px 8px 0 0;cursor:pointer}
.pa-tab[aria-selected="true"]{background:#fff;color:#1d4ed8;font-weight:600}
.pa-match{flex:1;overflow-y:auto;padding:12px 14px;background:#f4f6fb}
.pa-match[hidden],.pa-msgs[hidden],.pa-foot[hidden]{display:none}
.pa-m-form{display:flex;flex-direction:column;gap:8px;font-size:13px;color:#334155}
.pa-match input,.pa-match select,.pa-match textarea{font:inherit;color:#1f2937;border:1px solid #cbd5e1;border-radius:8px;padding:5px 8px;background:#fff;min-width:0;margin:0}
.pa-match input[type=checkbox]{width:auto;padding:0;margin:0 2px 0 0;accent-color:#2563eb}
.pa-m-field{display:flex;align-items:center;gap:6px}
.pa-m-field>span{flex:none;color:#475569}
.pa-m-field>select,.pa-m-field>input{flex:1}
.pa-m-field>i{font-style:normal;color:#64748b;flex:none}
.pa-m-set{border:1px solid #e3e8f2;border-radius:8px;padding:4px 8px 6px;margin:0;background:#fff}
.pa-m-set legend{padding:0 4px;color:#475569}
.pa-m-quals{display:flex;flex-wrap:wrap;gap:2px 10px;max-height:96px;overflow-y:auto}
.pa-m-qual{display:inline-flex;align-items:center;font-size:12.5px;white-space:nowrap}
.pa-m-grid{display:grid;grid-template-columns:1fr 1fr;gap:6px 10px}
.pa-m-grid input{width:100%}
.pa-m-qrow{display:flex;gap:6px;align-items:center}
.pa-m-qrow .pa-m-qname{flex:1.6;width:0}.pa-m-qrow .pa-m-qvalue{flex:1;width:0}.pa-m-qrow select{flex:1.4;width:0}
.pa-m-del{border:0;background:#f1f5f9;border-radius:6px;width:26px;height:26px;flex:none;color:#64748b}
.pa-m-add{align-self:flex-start;border:1px dashed #93c5fd;background:#f5f8ff;color:#1d4ed8;border-radius:8px;padding:3px 10px;font-size:12.5px}
.pa-m-row{display:flex;align-items:center;justify-content:space-between}
.pa-m-details{border:1px solid #e3e8f2;border-radius:8px;background:#fbfcfe;padding:0 8px}
.pa-m-details[open]{padding-bottom:8px}
.pa-m-summary{cursor:pointer;padding:5px 0;color:#1d4ed8;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.pa-m-details[open]>.pa-m-summary{color:#475569}
.pa-m-go{border:0;border-radius:8px;padding:7px 16px;background:#2563eb;color:#fff;font-size:13px;cursor:pointer}
.pa-m-go:disabled{opacity:.6}
.pa-m-status{font-size:12.5px;color:#64748b;margin:10px 0 6px;white-space:pre-line}
.pa-m-g{flex:none;font-size:11.5px;font-weight:600;padding:0 7px;border-radius:999px;background:#e2e8f0;color:#334155}
.pa-g-eligible{background:#dcfce7;color:#166534}.pa-g-unknown{background:#fef3c7;color:#92400e}.pa-g-near_miss{background:#fee2e2;color:#991b1b}
.pa-m-amount{font-size:15px;color:#111827}
.pa-m-formula{margin-top:3px;padding:3px 8px;background:#f0f7ff;border-radius:6px;color:#1e3a8a;font-size:12.5px;word-break:break-word}
.pa-m-checks{list-style:none;margin:6px 0 0;padding:0}
.pa-m-check{display:flex;gap:6px;padding:3px 0;border-top:1px dashed #eef2f7}
.pa-m-mark{flex:none;width:18px;height:18px;margin-top:2px;border-radius:50%;display:flex;align-items:center;justify-content:center;font-size:11px;font-weight:700}
[data-status=met]>.pa-m-mark{background:#dcfce7;color:#15803d}
[data-status=unmet]>.pa-m-mark{background:#fee2e2;color:#b91c1c}
[data-status=unknown]>.pa-m-mark{background:#fef3c7;color:#b45309}
.pa-m-ctext{flex:1;min-width:0;word-break:break-word}
.pa-m-ctext small{display:block;color:#64748b;font-size:12px;line-height:1.45}
.pa-m-q{display:block;color:#92400e;font-size:12.5px;margin-top:2px}
.pa-m-ask{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:4px 0 2px}
.pa-m-ask input{width:110px}.pa-m-ask select{max-width:100%}
.pa-m-ask button{border:1px solid #93c5fd;background:#eff6ff;color:#1d4ed8;border-radius:8px;padding:3px 12px;font-size:12.5px}
.pa-m-unit{color:#64748b}
.pa-m-missing{margin-top:4px;color:#991b1b;font-size:12.5px}
.pa-m-results{list-style:none;margin:0;padding:0}
.pa-m-item{background:#fff;border:1px solid #e3e8f2;border-radius:10px;padding:8px 10px;margin-bottom:8px;font-size:13px}
.pa-m-benefit{font-weight:600;color:#111827;display:flex;gap:6px;align-items:center}
.pa-m-cond{color:#475569;margin-top:2px}
.pa-m-quote{margin:6px 0;padding:4px 8px;border-left:3px solid #93c5fd;color:#334155;background:#f8fafc}
.pa-m-src{font-size:12px;color:#64748b;display:flex;flex-wrap:wrap;gap:6px;align-items:center}
.pa-m-src a{color:#2563eb;text-decoration:none}
.pa-m-v{padding:0 6px;border-radius:999px;background:#e2e8f0}
.pa-v-current{background:#dcfce7;color:#166534}.pa-v-expired{background:#fee2e2;color:#991b1b}
.pa-clarify{margin-top:8px}
.pa-clarify p{margin:0 0 6px;font-size:13px;color:#334155}
.pa-option{margin:0 6px 6px 0;padding:5px 12px;border:1px solid #93c5fd;border-radius:999px;background:#eff6ff;color:#1d4ed8;font-size:12.5px;cursor:pointer}
.pa-option:hover{background:#dbeafe}
.pa-option:disabled{opacity:.5;cursor:default}
.pa-fact{margin:0 0 6px;padding:0 0 6px;border-bottom:1px solid #e3e8f2;font-size:16px;font-weight:600;color:#0f172a;white-space:normal}
.pa-fact p{margin:0 0 2px}
.pa-notice{margin:6px 2px 0;padding:6px 10px;border-left:3px solid #f59e0b;background:#fffbeb;color:#78350f;font-size:12.5px;line-height:1.5}
.pa-error .pa-bubble{background:#fef2f2;border-color:#fecaca;color:#991b1b}
.pa-rq{font-size:12px;color:#8a94a6;margin:0 0 4px 2px;line-height:1.4}
.pa-rq.pa-curated{color:#047857;font-weight:600}
.pa-typing{display:inline-flex;gap:4px;padding:4px 0}
.pa-typing i{width:7px;height:7px;border-radius:50%;background:#94a3b8;animation:pa-bounce 1.2s infinite ease-in-out}
.pa-typing i:nth-child(2){animation-delay:.15s}.pa-typing i:nth-child(3){animation-delay:.3s}
@keyframes pa-bounce{0%,80%,100%{transform:translateY(0);opacity:.5}40%{transform:translateY(-5px);opacity:1}}
@keyframes pa-blink{0%{opacity:1}100%{opacity:0}}
.cite{display:inline-flex;align-items:center;justify-content:center;min-width:18px;height:18px;padding:0 4px;margin:0 2px;
  border:0;border-radius:9px;background:#dbe6ff;color:#1e40af;font-size:11px;font-weight:600;line-height:1;vertical-align:super}
.cite:hover,.cite[aria-expanded="true"]{background:#2563eb;color:#fff}
.pa-box{margin-top:8px;background:#fff;border:1px solid #e3e8f2;border-radius:10px;padding:8px 10px}
.pa-box h4{margin:0 0 4px;font-size:12px;font-weight:600;color:#64748b;letter-spacing:.05em}
.pa-box.pa-related{border-color:#fcd34d;background:#fffdf5}
.pa-box .pa-hint{margin:0 0 6px;font-size:12px;color:#92400e}
.pa-box ol{list-style:none;margin:0;padding:0}
.pa-box li+li{border-top:1px dashed #e5e7eb}
.pa-src{display:flex;gap:8px;width:100%;border:0;background:none;padding:6px 2px;text-align:left;font-size:12.5px;line-height:1.5;border-radius:6px}
.pa-src:hover{background:#f1f5fd}
.pa-src .pa-n{flex:none;min-width:20px;height:18px;border-radius:9px;background:#eef2fb;color:#1e40af;font-size:11px;font-weight:600;display:flex;align-items:center;justify-content:center;margin-top:1px}
.pa-src .pa-st{display:block;color:#1f2937;font-weight:500}
.pa-src .pa-sm{display:block;color:#8a94a6;font-size:12px}
.pa-src .pa-sx{display:block;color:#475569;font-size:12px;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}
.pa-fb{display:flex;align-items:center;gap:6px;margin-top:6px;font-size:12px;color:#8a94a6;min-height:28px}
.pa-fb button{border:1px solid #e3e8f2;background:#fff;color:#64748b;border-radius:8px;width:30px;height:26px;display:flex;align-items:center;justify-content:center;padding:0}
.pa-fb button:hover{color:#2563eb;border-color:#93c5fd}
.pa-fb .pa-down svg{transform:rotate(180deg)}
.pa-fb .pa-retry{width:auto;padding:0 8px}
.pa-thanks{color:#059669}
.pa-foot{border-top:1px solid #e5e9f2;padding:10px 12px 8px;background:#fff}
.pa-row{display:flex;gap:8px;align-items:flex-end}
.pa-input{flex:1;resize:none;min-height:40px;max-height:130px;border:1px solid #cfd8e6;border-radius:10px;padding:8px 10px;font-size:14px;line-height:1.5;background:#fff;color:#111827;outline:none}
.pa-input:focus{border-color:#2563eb;box-shadow:0 0 0 3px rgba(37,99,235,.15)}
.pa-send{flex:none;width:40px;height:40px;border:0;border-radius:10px;background:#2563eb;color:#fff;display:flex;align-items:center;justify-content:center}
.pa-send:disabled{background:#cbd5e1;cursor:not-allowed}
.pa-meta{display:flex;justify-content:space-between;font-size:11px;color:#9aa3b2;margin-top:5px;line-height:1.4}
.pa-count.pa-near{color:#dc2626}
.popover{position:absolute;z-index:5;width:340px;max-width:calc(100% - 16px);max-height:62%;overflow:auto;background:#fff;border-radius:12px;
  box-shadow:0 12px 36px rgba(15,23,42,.25),0 0 0 1px rgba(15,23,42,.08);padding:12px 14px;font-size:13px;line-height:1.7}
.popover[hidden]{display:none}
.popover .pp-head{display:flex;gap:8px;align-items:flex-start}
.popover .pp-title{flex:1;margin:0;font-size:14px;font-weight:600;line-height:1.45;color:#111827}
.popover .pp-x{border:0;background:#f1f5f9;border-radius:6px;width:26px;height:26px;display:flex;align-items:center;justify-content:center;padding:0;color:#475569;flex:none}
.popover .pp-meta{margin:4px 0 8px;color:#64748b;font-size:12px;line-height:1.5}
.popover .pp-text{margin:0;white-space:pre-wrap;word-break:break-word;color:#334155}
.popover mark{background:#fde68a;color:#111827;padding:0 1px;border-radius:2px}
.popover .pp-link{display:inline-block;margin-top:8px;font-size:12px;color:#2563eb;text-decoration:none}
.popover .pp-link:hover{text-decoration:underline}
@media (max-width:600px){
  .pa-panel{left:0;right:0;top:0;bottom:0;width:100%;max-width:none;height:100%;max-height:none;border-radius:0}
  .pa-root.pa-open .pa-launcher{display:none}
  .pa-launcher{right:16px;bottom:16px}
  .pa-input{font-size:16px}
  .pa-match input,.pa-match select,.pa-match textarea{font-size:16px}
  .pa-m-quals{max-height:132px}
  .pa-m-grid{grid-template-columns:1fr}
}
@media (prefers-reduced-motion:reduce){.pa-root *{animation:none!important;transition:none!important}}
`;

  const input = h('textarea', { class: 'pa-input', rows: 1, maxlength: MAX, placeholder: '请输入您的问题（Enter 发送）',
    title: 'Enter 发送，Shift+Enter 换行',
    'aria-label': '输入问题' });
  const count = h('span', { class: 'pa-count', 'aria-live': 'polite' }, `0/${MAX}`);
  const sendBtn = h('button', { type: 'button', class: 'pa-send', 'aria-label': '发送', title: '发送', disabled: true }, icon(I.send, 18));
  const msgs = h('div', { class: 'pa-msgs', role: 'log', 'aria-live': 'polite', 'aria-label': '对话记录' });
  const popover = h('div', { class: 'popover', role: 'dialog', 'aria-label': '条款原文', tabindex: '-1', hidden: true });
  const closeBtn = h('button', { type: 'button', class: 'pa-hbtn pa-close', 'aria-label': '关闭对话窗口', title: '关闭' }, icon(I.close, 16));
  const resetBtn = h('button', { type: 'button', class: 'pa-hbtn pa-reset', title: '开始新对话', 'aria-label': '开始新对话' }, '新对话');
  const foot = h('div', { class: 'pa-foot' },
    h('div', { class: 'pa-row' }, input, sendBtn),
    h('div', { class: 'pa-meta' }, h('span', null, '回答由系统依据政策原文生成，请以原文为准'), count));

  // ---------------------------------------------------------------- 政策匹配 (policy matching) tab
  // A policy calculator: region, qualifications (the library's own, from /api/match/options), industry,
  // size and free quantities become `facts`; each result is a card with its condition checklist, the
  // estimate and its formula. An unknown condition's question is answered on its card, which fills in
  // the form (the one source of what is sent) and runs the match again. Nothing filled in: the
  // free-text match of the profile, as before.
  const tabChat = h('button', { type: 'button', class: 'pa-tab', role: 'tab', 'aria-selected': 'true' }, '政策问答');
  const tabMatch = h('button', { type: 'button', class: 'pa-tab', role: 'tab', 'aria-selected': 'false' }, '政策匹配');
  const tabs = h('div', { class: 'pa-tabs', role: 'tablist' }, tabChat, tabMatch);
  const num = (cls, label, attrs) => h('input', Object.assign({ class: cls, type: 'number', inputmode: 'decimal',
    min: '0', 'aria-label': label }, attrs || {}));
  const mRegion = h('select', { class: 'pa-m-region', 'aria-label': '注册地区' }, h('option', { value: '' }, '全部地区'));
  const mQuals = h('div', { class: 'pa-m-quals', role: 'group', 'aria-label': '资质' });
  const mIndustry = h('select', { class: 'pa-m-industry', 'aria-label': '行业' }, h('option', { value: '' }, '行业（未填）'));
  const mEmployees = num('pa-m-employees', '从业人数', { step: '1' });
  const mRevenue = num('pa-m-revenue', '营业收入');
  const mRd = num('pa-m-rd', '研发投入占比', { max: '100' });
  const mFounded = num('pa-m-founded', '成立年份', { step: '1', min: '1800', max: String(new Date().getFullYear()) });
  const mQtys = h('div', { class: 'pa-m-qtys' });
  const mQtyNames = h('datalist', { id: 'pa-m-qnames' });
  const mAddQty = h('button', { type: 'button', class: 'pa-m-add' }, '＋ 其他数量（如节能量）');
  const mProfile = h('textarea', { class: 'pa-m-profile', rows: 2, maxlength: MAX, 'aria-label': '企业情况',
    placeholder: '企业情况，如：首次获批的国家高新技术企业，计划在新三板挂牌' });
  const mCurrent = h('input', { type: 'checkbox', class: 'pa-m-current' });
  const mGo = h('button', { type: 'button', class: 'pa-m-go' }, '匹配政策');
  const mStatus = h('p', { class: 'pa-m-status', 'aria-live': 'polite' });
  const mResults = h('ol', { class: 'pa-m-results' });
  const field = (label, el, unit) => h('label', { class: 'pa-m-field' }, h('span', null, label), el, unit ? h('i', null, unit) : null);
  // the company's details fold away once results are shown (a line says what was sent); a tap reopens them
  const mSummary = h('summary', { class: 'pa-m-summary' }, '企业信息');
  const mDetails = h('details', { class: 'pa-m-details', open: true }, mSummary,
    h('div', { class: 'pa-m-form' },
      h('fieldset', { class: 'pa-m-set' }, h('legend', null, '资质（可多选）'), mQuals),
      h('div', { class: 'pa-m-grid' }, field('行业', mIndustry), field('从业人数', mEmployees, '人'),
        field('营业收入', mRevenue, '万元'), field('研发占比', mRd, '%'), field('成立年份', mFounded, '年')),
      mQtys, mQtyNames, mAddQty, mProfile));
  const matchPane = h('div', { class: 'pa-match', hidden: true },
    h('div', { class: 'pa-m-form' }, field('注册地区', mRegion), mDetails,
      h('div', { class: 'pa-m-row' }, h('label', null, mCurrent, ' 仅现行有效'), mGo)),
    mStatus, mResults);

  let options = { qualifications: [], quantities: [], industries: [], units: {} };
  let declined = new Set(); // "clause_id|condition" a user answered 否 to: that rule is not for them
  let optionsFor = null;
  let regionsLoaded = false;
  function loadOptions() {
    const region = mRegion.value;
    if (optionsFor === region) return;
    optionsFor = region;
    fetch(API + '/api/match/options' + (region ? '?region=' + encodeURIComponent(region) : ''))
      .then((r) => (r.ok ? r.json() : null)).then((d) => {
        if (!d || optionsFor !== region) return;
        options = d;
        const ticked = new Set(qualifications());
        mQuals.replaceChildren(...[...new Set([...d.qualifications, ...ticked])].map((q) => h('label', { class: 'pa-m-qual' },
          h('input', { type: 'checkbox', value: q, checked: ticked.has(q) }), ' ' + q)));
        const industry = mIndustry.value;
        mIndustry.replaceChildren(h('option', { value: '' }, '行业（未填）'), ...d.industries.map((i) => h('option', { value: i }, i)));
        setIndustry(industry);
        mQtyNames.replaceChildren(...d.quantities.map((q) => h('option', { value: q.name })));
      }).catch(() => { optionsFor = null; });
  }
  function setIndustry(value) {
    if (value && ![...mIndustry.options].some((o) => o.value === value)) mIndustry.append(h('option', { value }, value));
    mIndustry.value = value || '';
  }
  const qualifications = () => [...mQuals.querySelectorAll('input:checked')].map((i) => i.value);
  function unitsFor(name) {
    const known = (options.quantities || []).find((q) => q.name === name);
    const all = options.units || {};
    return known ? [known.unit, ...(all[known.dimension] || []).filter((u) => u !== known.unit)]
      : [...new Set(Object.values(all).flat())];
  }
  function addQuantity(name, value, unit) {
    const nameEl = h('input', { class: 'pa-m-qname', list: 'pa-m-qnames', placeholder: '名称，如节能量', 'aria-label': '数量名称', value: name || '' });
    const valueEl = num('pa-m-qvalue', '数值', { placeholder: '数值', value: value == null ? '' : value });
    const unitEl = h('select', { class: 'pa-m-qunit', 'aria-label': '单位' });
    const fill = () => {
      const keep = unitEl.value;
      unitEl.replaceChildren(...unitsFor(nameEl.value.trim()).map((u) => h('option', { value: u }, u)));
      if (keep && [...unitEl.options].some((o) => o.value === keep)) unitEl.value = keep;
    };
    nameEl.addEventListener('change', fill);
    fill();
    if (unit) { if (![...unitEl.options].some((o) => o.value === unit)) unitEl.append(h('option', { value: unit }, unit)); unitEl.value = unit; }
    const row = h('div', { class: 'pa-m-qrow' }, nameEl, valueEl, unitEl,
      h('button', { type: 'button', class: 'pa-m-del', 'aria-label': '删除', title: '删除', onclick: () => row.remove() }, '×'));
    mQtys.append(row);
    return row;
  }
  mAddQty.addEventListener('click', () => addQuantity().querySelector('input').focus());
  mRegion.addEventListener('change', loadOptions);

  /** The facts the form states (null when it states none: the free-text match). */
  function facts() {
    const f = {};
    const quals = qualifications();
    if (quals.length) f.qualifications = quals;
    if (mIndustry.value) f.industry = mIndustry.value;
    for (const [key, el] of [['employees', mEmployees], ['revenue_10k', mRevenue], ['rd_ratio', mRd], ['founded', mFounded]]) {
      if (el.value.trim() !== '') f[key] = Number(el.value);
    }
    const q = {};
    for (const row of mQtys.querySelectorAll('.pa-m-qrow')) {
      const name = row.querySelector('.pa-m-qname').value.trim();
      const value = row.querySelector('.pa-m-qvalue').value.trim();
      if (name && value !== '') q[name] = value + row.querySelector('.pa-m-qunit').value;
    }
    if (Object.keys(q).length) f.quantities = q;
    return Object.keys(f).length ? f : null;
  }

  function showTab(which) {
    const onMatch = which === 'match';
    tabChat.setAttribute('aria-selected', String(!onMatch));
    tabMatch.setAttribute('aria-selected', String(onMatch));
    msgs.hidden = onMatch; foot.hidden = onMatch; matchPane.hidden = !onMatch;
    if (onMatch && !regionsLoaded) {
      regionsLoaded = true;
      loadOptions();
      fetch(API + '/api/health').then((r) => r.json()).then((d) => {
        for (const r of (d && d.regions) || []) mRegion.append(h('option', { value: r }, r));
      }).catch(() => { regionsLoaded = false; });
    }
  }
  tabChat.addEventListener('click', () => showTab('chat'));
  tabMatch.addEventListener('click', () => showTab('match'));
  const STATUS = { current: '现行有效', expired: '已过期', unknown: '未载明有效期' };
  const GROUP = { eligible: '符合条件', unknown: '待确认', near_miss: '差一项' };
  const MARK = { met: '✓', unmet: '✗', unknown: '?' };
  const yuan = (v) => (v >= 1e8 ? `${+(v / 1e8).toFixed(4)}亿元` : v >= 1e4 ? `${+(v / 1e4).toFixed(4)}万元` : `${+v.toFixed(2)}元`);
  function amountOf(e) {
    if (!e) return '';
    if (e.amount_yuan != null) return yuan(e.amount_yuan);
    if (e.max_yuan != null) return e.min_yuan ? `${yuan(e.min_yuan)}—${yuan(e.max_yuan)}` : `最高${yuan(e.max_yuan)}`;
    return '';
  }

  /** Put an answer where its hint says (the form), then match again. */
  function answer(hint, value) {
    const fact = String(hint.fact || '');
    if (fact.startsWith('quantities.')) {
      const name = fact.slice('quantities.'.length);
      const row = [...mQtys.querySelectorAll('.pa-m-qrow')].find((r) => r.querySelector('.pa-m-qname').value.trim() === name);
      if (row) row.remove();
      addQuantity(name, value, hint.unit);
    } else if (fact === 'industry') {
      setIndustry(value);
    } else if (fact === 'profile') {
      const text = mProfile.value.trim();
      if (!text.includes(value)) mProfile.value = text ? `${text}；${value}` : value;
    } else {
      const el = { employees: mEmployees, revenue_10k: mRevenue, rd_ratio: mRd, founded: mFounded }[fact];
      if (el) el.value = value;
    }
    // back to the top of the results: the answered card may have moved to another group
    runMatch().then(() => { matchPane.scrollTop = Math.max(0, mStatus.offsetTop - matchPane.offsetTop - 8); });
  }

  function askInPlace(m, c) {
    const hint = c.answer || {};
    const go = (value) => { if (!mGo.disabled) answer(hint, value); };
    if (hint.unit) {
      const inp = num('pa-m-answer', c.question, Object.assign({ placeholder: '数值' }, hint.fact === 'founded' ? { step: '1' } : {}));
      const send = () => { if (inp.value.trim() !== '') go(inp.value.trim()); };
      inp.addEventListener('keydown', (e) => { if (e.key === 'Enter') send(); });
      return h('div', { class: 'pa-m-ask' }, inp, h('span', { class: 'pa-m-unit' }, hint.unit),
        h('button', { type: 'button', class: 'pa-m-answer-go', onclick: send }, '确定'));
    }
    if (Array.isArray(hint.choices) && hint.choices.length) {
      const sel = h('select', { class: 'pa-m-choice', 'aria-label': c.question }, hint.choices.map((o) => h('option', { value: o }, o)));
      return h('div', { class: 'pa-m-ask' }, sel, h('button', { type: 'button', class: 'pa-m-answer-go', onclick: () => go(sel.value) }, '确定'));
    }
    if (!hint.yes) return null;
    const no = hint.no ? () => go(hint.no) : () => { declined.add(`${m.clause_id}|${c.text}`); runMatch(); };
    return h('div', { class: 'pa-m-ask' },
      h('button', { type: 'button', class: 'pa-m-yes', onclick: () => go(hint.yes) }, '是'),
      h('button', { type: 'button', class: 'pa-m-no', onclick: no }, '否'));
  }

  function checklist(m) {
    return h('ul', { class: 'pa-m-checks' }, (m.conditions || []).map((c) => h('li', { class: 'pa-m-check', 'data-status': c.status },
      h('span', { class: 'pa-m-mark', 'aria-label': { met: '满足', unmet: '不满足', unknown: '未知' }[c.status] }, MARK[c.status] || '?'),
      h('span', { class: 'pa-m-ctext' }, String(c.text || ''),
        h('small', null, String(c.why || '')),
        c.status === 'unknown' && c.question ? h('span', { class: 'pa-m-q' }, String(c.question)) : null,
        c.status === 'unknown' && c.question ? askInPlace(m, c) : null))));
  }

  function card(m, i) {
    const v = m.validity || {};
    const link = `${API}/lookup?clause=${encodeURIComponent(m.clause_id || '')}`;
    const e = m.estimate;
    const calc = Boolean(m.group);
    return h('li', { class: 'pa-m-item', 'data-clause-id': m.clause_id, 'data-group': m.group || null },
      h('div', { class: 'pa-m-benefit' }, h('span', { class: 'pa-n' }, String(i + 1)),
        calc ? h('span', { class: 'pa-m-g pa-g-' + m.group }, GROUP[m.group] || m.group) : null,
        h('span', { class: 'pa-m-amount' }, calc ? amountOf(e) || String(m.benefit || '未定金额') : String(m.benefit || ''))),
      calc && e ? h('div', { class: 'pa-m-formula' }, String(e.formula || '')) : null,
      !calc && m.condition ? h('div', { class: 'pa-m-cond' }, '条件：' + m.condition) : null,
      calc ? checklist(m) : null,
      m.missing ? h('div', { class: 'pa-m-missing' }, '尚缺：' + m.missing) : null,
      h('blockquote', { class: 'pa-m-quote' }, String(m.quote || '')),
      h('div', { class: 'pa-m-src' }, `《${m.doc_title || m.doc_id}》`, m.region ? ` ${m.region}` : '',
        h('span', { class: 'pa-m-v pa-v-' + (v.status || 'unknown') }, STATUS[v.status] || ''),
        !calc && (m.why || []).length ? h('span', { class: 'pa-m-why' }, '匹配：' + m.why.join('、')) : null,
        h('a', { href: link, target: '_blank', rel: 'noopener' }, '原文 ↗')));
  }

  let matchRun = 0;
  async function runMatch() {
    const f = facts();
    const payload = { region: mRegion.value || null, profile: mProfile.value.trim() || null, only_current: mCurrent.checked };
    if (f) payload.facts = f;
    if (!payload.region && !payload.profile && !f) { mStatus.textContent = '请选择地区、勾选资质或填写企业情况。'; return; }
    const run = ++matchRun;
    mGo.disabled = true;
    mResults.setAttribute('aria-busy', 'true');
    mStatus.textContent = '正在匹配…';
    try {
      const data = await post('/api/match', payload);
      if (run !== matchRun) return;
      const all = Array.isArray(data.matches) ? data.matches : [];
      const items = all.filter((m) => !(m.conditions || []).some((c) => declined.has(`${m.clause_id}|${c.text}`)));
      const counts = ['eligible', 'unknown', 'near_miss'].map((g) => [g, items.filter((m) => m.group === g).length]).filter(([, n]) => n);
      let text = !items.length ? '没有找到适用于该企业的支持条款。'
        : f ? counts.map(([g, n]) => `${GROUP[g]} ${n} 条`).join('，') + '：' : `找到 ${items.length} 条可能适用的支持条款：`;
      if (all.length > items.length) text += `（已按您的答复排除 ${all.length - items.length} 条）`;
      if ((data.unused || []).length) text += `\n未用到的信息：${data.unused.join('、')}`;
      mStatus.textContent = text;
      mResults.replaceChildren(...items.map(card));
      if (items.length) {
        const said = [f && f.industry, ...((f && f.qualifications) || []),
          ...Object.entries((f && f.quantities) || {}).map(([k, v]) => k + v), payload.profile].filter(Boolean);
        mSummary.textContent = said.length ? `企业信息：${said.join('；')}` : '企业信息';
        mDetails.open = false;
      }
    } catch (e) {
      if (run === matchRun) mStatus.textContent = e.message || '匹配失败，请稍后重试。';
    } finally {
      if (run === matchRun) { mGo.disabled = false; mResults.removeAttribute('aria-busy'); }
    }
  }
  mGo.addEventListener('click', () => { declined = new Set(); runMatch(); });

  const panel = h('section', { class: 'pa-panel', role: 'dialog', 'aria-label': TITLE, hidden: true },
    h('header', { class: 'pa-head' },
      h('span', { class: 'pa-ico' }, icon(I.chat, 18)),
      h('div', { class: 'pa-titles' }, h('h2', { class: 'pa-title' }, TITLE), h('p', { class: 'pa-subtitle' }, '依据政策原文回答，附条款出处')),
      resetBtn, closeBtn),
    tabs,
    msgs,
    foot,
    matchPane,
    popover);
  const launcher = h('button', { type: 'button', class: 'pa-launcher', 'aria-label': '打开' + TITLE, title: TITLE,
    'aria-expanded': 'false' }, icon(I.chat, 28));
  const root = h('div', { class: 'pa-root' }, panel, launcher);
  shadow.append(style, root);

  // ---------------------------------------------------------------- popover
  let popAnchor = null;
  let popScrollTop = 0;
  function openPopover(clause, quote, anchor) {
    if (popAnchor === anchor && !popover.hidden) { closePopover(true); return; }
    closePopover(false);
    const lookup = `${API}/lookup?clause=${encodeURIComponent(clause.clause_id || '')}`;
    popover.replaceChildren(
      h('div', { class: 'pp-head' },
        h('h3', { class: 'pp-title' }, clause.doc_title || clause.doc_id || '政策文件'),
        h('button', { type: 'button', class: 'pp-x', 'aria-label': '关闭原文' , onclick: () => closePopover(true) }, icon(I.close, 14))),
      h('p', { class: 'pp-meta' }, metaOf(clause)),
      h('p', { class: 'pp-text' }, highlighted(clause.text, quote)),
      clause.clause_id ? h('a', { class: 'pp-link', href: lookup, target: '_blank', rel: 'noopener' }, '在条款查询中查看原文位置 ↗') : null);
    popover.hidden = false;
    popAnchor = anchor;
    popScrollTop = msgs.scrollTop;
    anchor.setAttribute('aria-expanded', 'true');
    const p = panel.getBoundingClientRect();
    const a = anchor.getBoundingClientRect();
    const pw = popover.offsetWidth, ph = popover.offsetHeight;
    let top = a.bottom - p.top + 6;
    if (top + ph > p.height - 8) top = Math.max(8, a.top - p.top - ph - 6);
    const left = Math.min(Math.max(8, a.left - p.left - 24), p.width - pw - 8);
    popover.style.top = `${top}px`;
    popover.style.left = `${Math.max(8, left)}px`;
    popover.focus({ preventScroll: true });
  }
  function closePopover(refocus) {
    if (popover.hidden) return;
    popover.hidden = true;
    const a = popAnchor;
    popAnchor = null;
    if (a) { a.setAttribute('aria-expanded', 'false'); if (refocus && a.isConnected) a.focus({ preventScroll: true }); }
  }

  // ---------------------------------------------------------------- rendering
  const nearBottom = () => msgs.scrollHeight - msgs.scrollTop - msgs.clientHeight < 80;
  const toBottom = () => { msgs.scrollTop = msgs.scrollHeight; };

  function renderWelcome() {
    if (state.items.length || msgs.querySelector('.pa-welcome')) return;
    msgs.prepend(h('div', { class: 'pa-welcome' },
      h('p', null, `您好，我是${TITLE}。可以问我企业可享受的扶持政策、奖励补助标准和申报条件，我会给出政策原文出处。`),
      SUGGESTIONS.length ? h('div', { class: 'pa-suggest', role: 'list' },
        SUGGESTIONS.map((s) => h('button', { type: 'button', role: 'listitem', onclick: () => ask(s) }, s))) : null));
  }

  function userMsg(text) {
    return h('div', { class: 'pa-msg pa-user' }, h('div', { class: 'pa-bubble' }, text));
  }

  function answerNodes(answer, citations) {
    const byN = new Map((citations || []).map((c) => [String(c.n), c]));
    const frag = document.createDocumentFragment();
    const re = /\[(\d+)\]/g;
    let last = 0, m;
    answer = String(answer || '');
    while ((m = re.exec(answer))) {
      const c = byN.get(m[1]);
      if (!c) continue;
      if (m.index > last) frag.appendChild(document.createTextNode(answer.slice(last, m.index)));
      const b = h('button', { type: 'button', class: 'cite', 'data-n': m[1], 'aria-expanded': 'false',
        'aria-label': `来源 ${m[1]}：${c.doc_title || ''}`, title: c.doc_title || '' }, m[1]);
      b.addEventListener('click', (e) => { e.stopPropagation(); openPopover(c, c.quote, b); });
      frag.appendChild(b);
      last = re.lastIndex;
    }
    if (last < answer.length) frag.appendChild(document.createTextNode(answer.slice(last)));
    return frag;
  }

  /** The answer text without its last line when that line is the validity warning (short ⚠ line or the notice). */
  function withoutValidityLine(text, notice) {
    const lines = text.replace(/\n+$/, '').split('\n');
    const last = lines[lines.length - 1] || '';
    if (last === notice || last.startsWith('⚠')) lines.pop();
    return lines.join('\n').replace(/\n+$/, '');
  }

  /** The answer's lines: the fact lines it opens with (before the first 《source》 line) set large, then the
   *  sources. A text of another form (a curated answer, a refusal) is shown as it is. */
  function answerBody(text, citations, factFirst) {
    const lines = String(text || '').split('\n');
    let k = 0;
    if (factFirst && citations && citations.length) {
      while (k < lines.length - 1 && lines[k] && !lines[k].startsWith('《')) k++;
      if (!String(lines[k] || '').startsWith('《')) k = 0;
    }
    const frag = document.createDocumentFragment();
    if (k > 0) {
      frag.appendChild(h('div', { class: 'pa-fact' }, ...lines.slice(0, k).map((l) => h('p', null, answerNodes(l, citations)))));
    }
    frag.appendChild(answerNodes(lines.slice(k).join('\n'), citations));
    return frag;
  }

  function clauseList(items, withN, withQuote) {
    return h('ol', null, items.map((c, i) => {
      const b = h('button', { type: 'button', class: 'pa-src', 'data-n': withN ? c.n : null, 'aria-expanded': 'false' },
        h('span', { class: 'pa-n' }, String(withN ? c.n : i + 1)),
        h('span', null,
          h('span', { class: 'pa-st' }, c.doc_title || c.doc_id || ''),
          h('span', { class: 'pa-sm' }, metaOf(c)),
          withN ? null : h('span', { class: 'pa-sx' }, c.text || '')));
      b.addEventListener('click', (e) => { e.stopPropagation(); openPopover(c, withQuote ? c.quote : '', b); });
      return h('li', null, b);
    }));
  }

  function feedbackRow(item) {
    const row = h('div', { class: 'pa-fb' });
    if (item.fb) { row.append(h('span', { class: 'pa-thanks' }, '感谢反馈')); return row; }
    const send = async (rating) => {
      row.querySelectorAll('button').forEach((b) => { b.disabled = true; });
      try {
        await post('/api/feedback', { session_id: item.record.session_id || state.sessionId, turn: item.record.turn,
          rating, comment: null });
        item.fb = rating;
        save();
        row.replaceChildren(h('span', { class: 'pa-thanks', role: 'status' }, '感谢反馈'));
      } catch (e) {
        row.replaceChildren(h('span', { role: 'alert' }, e.message || '反馈提交失败'));
        setTimeout(() => row.replaceWith(feedbackRow(item)), 2500);
      }
    };
    row.append(h('span', null, '这个回答有帮助吗？'),
      h('button', { type: 'button', class: 'pa-up', 'aria-label': '有帮助', title: '有帮助', onclick: () => send('up') }, icon(I.thumb, 15)),
      h('button', { type: 'button', class: 'pa-down', 'aria-label': '没有帮助', title: '没有帮助', onclick: () => send('down') }, icon(I.thumb, 15)));
    return row;
  }

  /** Replace the content of a bot message element with the final record (or an error). */
  function renderBot(el, item) {
    el.classList.remove('pa-streaming');
    el.removeAttribute('aria-busy');
    if (item.error) {
      el.classList.add('pa-error');
      el.replaceChildren(h('div', { class: 'pa-bubble', role: 'alert' }, item.error),
        h('div', { class: 'pa-fb' }, h('button', { type: 'button', class: 'pa-retry', onclick: () => ask(item.q) }, '重试')));
      el.dataset.state = 'error';
      return;
    }
    const r = item.record || {};
    const rq = String(r.rewritten_query || '').trim();
    const kids = [];
    if (rq && rq !== String(item.q || '').trim()) kids.push(h('p', { class: 'pa-rq' }, '已检索：' + rq));
    if (r.source === 'curated') kids.push(h('p', { class: 'pa-rq pa-curated' }, '✔ 工作人员审定答复'));
    // the answer ends in a short validity line (⚠ [1] 已过期…); the widget shows the full sentence (`notice`)
    // set apart from the quoted text instead
    const notice = !r.refused && r.notice ? String(r.notice) : '';
    let text = String(r.answer || '');
    if (notice) text = withoutValidityLine(text, notice);
    kids.push(h('div', { class: 'pa-bubble pa-answer' + (r.refused ? ' pa-refused' : '') }, answerBody(text, r.refused ? [] : r.citations, r.source !== 'curated')));
    // its markers open the cited document, as the answer's do (the title shows on hover)
    if (notice) kids.push(h('p', { class: 'pa-notice', role: 'note' }, answerNodes(notice, r.citations)));
    const clarify = r.clarify && Array.isArray(r.clarify.options) ? r.clarify : null;
    if (!r.refused && clarify && clarify.options.length) {
      // the answer differs by region: choosing one asks the same question there (the conversation resolves it)
      kids.push(h('div', { class: 'pa-clarify', role: 'group', 'aria-label': String(clarify.question || '') },
        h('p', null, String(clarify.question || '')),
        ...clarify.options.map((o) => h('button', { type: 'button', class: 'pa-option',
          onclick: () => { if (!busy) ask(String(o)); } }, String(o)))));
    }
    const cites = Array.isArray(r.citations) ? r.citations : [];
    const related = Array.isArray(r.related) ? r.related : [];
    if (!r.refused && cites.length) {
      kids.push(h('div', { class: 'pa-box pa-sources' }, h('h4', null, '来源'), clauseList(cites, true, true)));
    }
    if (r.refused && related.length) {
      kids.push(h('div', { class: 'pa-box pa-related', role: 'note' }, h('h4', null, '可能相关'),
        h('p', { class: 'pa-hint' }, '以下条款与您的问题可能有关，仅供参考，并非上述问题的答复：'), clauseList(related, false, false)));
    }
    kids.push(feedbackRow(item));
    el.replaceChildren(...kids);
    el.dataset.state = 'done';
  }

  // ---------------------------------------------------------------- asking
  function setBusy(b) {
    busy = b;
    msgs.setAttribute('aria-busy', b ? 'true' : 'false');
    updateInput();
  }
  function updateInput() {
    const n = input.value.length;
    count.textContent = `${n}/${MAX}`;
    count.classList.toggle('pa-near', n >= MAX * 0.95);
    sendBtn.disabled = busy || !input.value.trim();
    input.style.height = 'auto';
    input.style.height = `${Math.min(130, Math.max(40, input.scrollHeight + 2))}px`;
  }

  async function ask(question) {
    const q = String(question || '').trim().slice(0, MAX);
    if (!q || busy) return;
    state.asked = true; // any question counts: data-question is not asked on top of it
    if (!state.open) setOpen(true);
    closePopover(false);
    const welcome = msgs.querySelector('.pa-welcome');
    if (welcome) welcome.remove();
    setBusy(true);
    state.items.push({ role: 'user', text: q });
    save();
    msgs.append(userMsg(q));
    const bubble = h('div', { class: 'pa-bubble' }, h('span', { class: 'pa-typing', role: 'status', 'aria-label': '正在查找政策并生成回答' },
      h('i'), h('i'), h('i')));
    const el = h('div', { class: 'pa-msg pa-bot', 'data-state': 'pending', 'aria-busy': 'true' }, bubble);
    msgs.append(el);
    toBottom();
    const item = { role: 'bot', q };
    const view = {
      meta: (m) => {
        const rq = String(m.rewritten_query || '').trim();
        if (rq && rq !== q && !el.querySelector('.pa-rq')) el.prepend(h('p', { class: 'pa-rq' }, '已检索：' + rq));
      },
      delta: (text) => {
        const stick = nearBottom();
        el.classList.add('pa-streaming');
        el.dataset.state = 'streaming';
        bubble.textContent = text;
        if (stick) toBottom();
      },
    };
    try {
      const record = await chat({ message: q, session_id: state.sessionId || null }, view);
      if (record.session_id) state.sessionId = record.session_id;
      item.record = record;
    } catch (e) {
      item.error = (e instanceof ApiError && e.message) || '抱歉，服务暂时不可用，请稍后重试。';
    }
    const stick = nearBottom();
    state.items.push(item);
    save();
    renderBot(el, item);
    if (stick) toBottom();
    setBusy(false);
    if (state.open && shadow.activeElement !== input && !popover.contains(shadow.activeElement)) input.focus({ preventScroll: true });
  }

  function send() {
    if (busy) return;
    const q = input.value.trim();
    if (!q) return;
    input.value = '';
    updateInput();
    ask(q);
  }

  function setOpen(open, focus = true) {
    state.open = open;
    panel.hidden = !open;
    root.classList.toggle('pa-open', open);
    launcher.setAttribute('aria-expanded', String(open));
    launcher.setAttribute('aria-label', (open ? '关闭' : '打开') + TITLE);
    launcher.replaceChildren(icon(open ? I.close : I.chat, open ? 24 : 28));
    save();
    if (!open) { closePopover(false); if (focus) launcher.focus({ preventScroll: true }); return; }
    toBottom();
    if (focus) input.focus({ preventScroll: true });
    if (QUESTION && !state.asked) {
      state.asked = true;
      save();
      if (!busy) ask(QUESTION);
    }
  }

  function reset() {
    if (busy) return;
    state.sessionId = null;
    state.items = [];
    save();
    closePopover(false);
    msgs.replaceChildren();
    renderWelcome();
    input.focus();
  }

  // ---------------------------------------------------------------- events
  launcher.addEventListener('click', () => setOpen(!state.open));
  closeBtn.addEventListener('click', () => setOpen(false));
  resetBtn.addEventListener('click', reset);
  sendBtn.addEventListener('click', send);
  input.addEventListener('input', updateInput);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) { e.preventDefault(); send(); }
  });
  // Close on a real scroll of the messages, not on the scroll event that a scroll-into-view before the
  // click queues (it arrives after the popover opened, with the list already where it was then).
  msgs.addEventListener('scroll', () => {
    if (!popover.hidden && Math.abs(msgs.scrollTop - popScrollTop) > 24) closePopover(false);
  }, { passive: true });
  root.addEventListener('click', (e) => {
    if (!popover.hidden && !e.composedPath().includes(popover)) closePopover(false);
  });
  root.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    if (!popover.hidden) { e.stopPropagation(); closePopover(true); } else if (state.open) { e.stopPropagation(); setOpen(false); }
  });

  // ---------------------------------------------------------------- boot
  function boot() {
    for (const it of state.items) {
      if (it.role === 'user') msgs.append(userMsg(it.text));
      else if (it.role === 'bot') { const el = h('div', { class: 'pa-msg pa-bot' }); renderBot(el, it); msgs.append(el); }
    }
    renderWelcome();
    updateInput();
    (document.body || document.documentElement).appendChild(host);
    if (ds.open === 'true') setOpen(true, false);
    else if (state.open) setOpen(true, false);
  }
  if (document.body) boot(); else document.addEventListener('DOMContentLoaded', boot);
})();
