/*
 * 政策条款查询 — clause lookup for government staff (/lookup).
 * URL state: ?q=&region=&doc=&dept=&k=&current=1 runs a search (current=1: only documents whose term has not ended); &clause=<id> opens the document view at that
 * clause; &view=<doc_id> opens a whole document. Server text is only inserted as text nodes.
 */
(function () {
  'use strict';
  const $ = (s) => document.querySelector(s);
  const els = {
    form: $('#search-form'), q: $('#q'), btn: $('#search-btn'), region: $('#region'), doc: $('#doc'),
    dept: $('#dept'), k: $('#k'), current: $('#current'), openDoc: $('#open-doc'), status: $('#status'), took: $('#took'),
    results: $('#results'), docView: $('#doc-view'), health: $('#health'),
  };
  const FIELDS = ['q', 'region', 'doc', 'dept', 'k', 'current', 'clause', 'view'];
  const docCache = new Map();
  let shown = { search: null, clause: null, view: null };

  const { h } = window.PolicyDom; // dom.js

  // ------------------------------------------------------------------ API
  function detailOf(d) {
    const x = d && d.detail;
    if (typeof x === 'string') return x;
    if (Array.isArray(x)) return x.map((e) => (e && e.msg) || String(e)).join('；');
    return x ? String(x.message || JSON.stringify(x)) : '';
  }
  async function api(path, body) {
    let res;
    try {
      res = await fetch('/api' + path, body === undefined ? { headers: { Accept: 'application/json' } }
        : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    } catch (e) { throw new Error('无法连接到服务，请检查网络后重试。'); }
    let data = null;
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) throw new Error(detailOf(data) || `请求失败（${res.status}）`);
    if (!data) throw new Error('服务返回了无法识别的数据。');
    return data;
  }
  function setStatus(text, isError) {
    els.status.textContent = text || '';
    els.status.classList.toggle('error', !!isError);
  }

  // ------------------------------------------------------------------ highlighting
  /** CJK bigrams (a lone CJK character stays a unigram) and ASCII words of the query. */
  function queryTerms(q) {
    const terms = new Set();
    for (const run of String(q).match(/[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+/g) || []) {
      if (run.length === 1) terms.add(run);
      for (let i = 0; i + 1 < run.length; i++) terms.add(run.slice(i, i + 2));
    }
    for (const w of String(q).toLowerCase().match(/[a-z0-9]+/g) || []) terms.add(w);
    return [...terms];
  }
  /** Fragment of text nodes with every match of any term wrapped in <mark> (overlapping matches merge). */
  function highlightTerms(text, terms) {
    text = String(text || '');
    const frag = document.createDocumentFragment();
    const lower = text.toLowerCase();
    const hay = lower.length === text.length ? lower : text;
    const hit = new Uint8Array(text.length);
    for (const t of terms) {
      if (!t) continue;
      for (let i = hay.indexOf(t); i >= 0; i = hay.indexOf(t, i + 1)) hit.fill(1, i, i + t.length);
    }
    let i = 0;
    while (i < text.length) {
      let j = i;
      while (j < text.length && hit[j] === hit[i]) j++;
      const part = text.slice(i, j);
      if (hit[i]) { const m = document.createElement('mark'); m.textContent = part; frag.appendChild(m); }
      else frag.appendChild(document.createTextNode(part));
      i = j;
    }
    return frag;
  }
  const splitPath = (section) => String(section || '').split(' > ').map((s) => s.trim()).filter(Boolean);
  const fmtScore = (s) => (typeof s === 'number' && isFinite(s) ? (Math.abs(s) >= 1 ? s.toFixed(2) : s.toFixed(4)) : '');

  // ------------------------------------------------------------------ URL state
  function readURL() {
    const p = new URLSearchParams(location.search);
    const st = {};
    for (const f of FIELDS) st[f] = p.get(f) || '';
    return st;
  }
  function formState() {
    return { q: els.q.value.trim(), region: els.region.value, doc: els.doc.value, dept: els.dept.value.trim(),
      k: els.k.value === '10' ? '' : els.k.value, current: els.current.checked ? '1' : '' };
  }
  function pushURL(st) {
    const p = new URLSearchParams();
    for (const f of FIELDS) if (st[f]) p.set(f, st[f]);
    const url = location.pathname + (p.toString() ? '?' + p : '');
    if (url !== location.pathname + location.search) history.pushState(null, '', url);
  }
  function setSelect(sel, value) {
    if (value && ![...sel.options].some((o) => o.value === value)) sel.append(h('option', { value }, value));
    sel.value = value || '';
  }
  function fillForm(st) {
    els.q.value = st.q || '';
    setSelect(els.region, st.region);
    setSelect(els.doc, st.doc);
    els.dept.value = st.dept || '';
    setSelect(els.k, st.k || '10');
    els.current.checked = st.current === '1';
    els.openDoc.hidden = !els.doc.value;
  }

  async function apply(st) {
    fillForm(st);
    const key = JSON.stringify([st.q, st.region, st.doc, st.dept, st.k, st.current]);
    const jobs = [];
    if (st.q && key !== shown.search) jobs.push(runSearch(st, key));
    if (!st.q && shown.search) { shown.search = null; resetResults(); }
    if (st.clause && st.clause !== shown.clause) jobs.push(openClause(st.clause, null));
    else if (!st.clause && st.view && st.view !== shown.view) jobs.push(openDocument(st.view, null));
    else if (!st.clause && !st.view && (shown.clause || shown.view)) resetDocView();
    await Promise.all(jobs);
  }

  // ------------------------------------------------------------------ search
  function resetResults() {
    els.took.textContent = '';
    els.results.replaceChildren(h('p', { class: 'empty' }, '输入关键词后点击“检索”。可按地区、文件、责任部门筛选。'));
  }
  async function runSearch(st, key) {
    const body = { query: st.q, k: parseInt(st.k || '10', 10) || 10 };
    if (st.region) body.region = st.region;
    if (st.doc) body.doc_id = st.doc;
    if (st.dept) body.department = st.dept;
    if (st.current === '1') body.only_current = true;
    shown.search = key;
    els.btn.disabled = true;
    setStatus('正在检索…');
    try {
      const data = await api('/search', body);
      if (shown.search !== key) return; // superseded
      const hits = Array.isArray(data.hits) ? data.hits : [];
      renderResults(hits, st.q);
      els.took.textContent = `共 ${hits.length} 条` + (typeof data.took_ms === 'number' ? ` · ${Math.round(data.took_ms)} 毫秒` : '');
      setStatus('');
    } catch (e) {
      if (shown.search === key) shown.search = null;
      setStatus(e.message, true);
    } finally {
      els.btn.disabled = false;
    }
  }
  function renderResults(hits, query) {
    if (!hits.length) {
      els.results.replaceChildren(h('p', { class: 'empty' }, '没有找到相关条款。可尝试更换关键词或放宽筛选条件。'));
      return;
    }
    const terms = queryTerms(query);
    els.results.replaceChildren(...hits.map((hit, i) => h('article', { class: 'result', 'data-clause-id': hit.clause_id },
      h('div', { class: 'r-head' },
        h('span', { class: 'rank' }, String(i + 1)),
        h('h3', null, hit.doc_title || hit.doc_id || ''),
        h('span', { class: 'score', title: '相关度得分' }, '得分 ' + fmtScore(hit.score))),
      h('div', { class: 'r-meta' },
        hit.region ? h('span', { class: 'tag' }, hit.region) : null,
        h('span', { class: 'path' }, splitPath(hit.section).join(' › ') || '（正文）'),
        hit.department ? h('span', { class: 'tag dept', title: '责任部门' }, hit.department) : null),
      h('p', { class: 'r-text' }, highlightTerms(hit.text, terms)),
      h('div', { class: 'r-actions' },
        h('button', { type: 'button', class: 'open-clause', onclick: () => selectFromResult(hit) }, '查看原文位置'),
        h('a', { class: 'permalink', href: '?clause=' + encodeURIComponent(hit.clause_id) }, '条款链接')))));
  }
  async function selectFromResult(hit) {
    const st = Object.assign(readURL(), { clause: hit.clause_id, view: '' });
    pushURL(st);
    await openClause(hit.clause_id, hit.doc_id);
    if (window.matchMedia('(max-width: 900px)').matches) els.docView.scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  // ------------------------------------------------------------------ document view
  function resetDocView() {
    shown.clause = shown.view = null;
    els.docView.replaceChildren(h('p', { class: 'empty' }, '点击检索结果中的“查看原文位置”，在此查看条款所在文件的完整结构。'));
  }
  async function loadDoc(docId) {
    if (!docCache.has(docId)) {
      const p = api('/documents/' + encodeURIComponent(docId));
      docCache.set(docId, p);
      p.catch(() => docCache.delete(docId));
    }
    return docCache.get(docId);
  }
  async function openClause(clauseId, docId) {
    shown.clause = clauseId;
    shown.view = null;
    setStatus('正在加载原文…');
    try {
      if (!docId) docId = (await api('/clauses/' + encodeURIComponent(clauseId))).doc_id;
      const data = await loadDoc(docId);
      if (shown.clause !== clauseId) return;
      renderDoc(data, clauseId);
      setStatus(els.docView.querySelector('.clause.selected') ? '' : '该条款未在文件中找到。', !els.docView.querySelector('.clause.selected'));
    } catch (e) {
      if (shown.clause === clauseId) shown.clause = null;
      setStatus(e.message, true);
    }
  }
  async function openDocument(docId) {
    shown.view = docId;
    shown.clause = null;
    setStatus('正在加载原文…');
    try {
      const data = await loadDoc(docId);
      if (shown.view !== docId) return;
      renderDoc(data, null);
      els.docView.scrollTop = 0;
      setStatus('');
    } catch (e) {
      if (shown.view === docId) shown.view = null;
      setStatus(e.message, true);
    }
  }

  /** Nest clauses by their " > " heading path, merging only consecutive equal headings (document order is kept). */
  function buildTree(clauses) {
    const root = { label: '', items: [] };
    for (const c of clauses) {
      let node = root;
      for (const seg of splitPath(c.section)) {
        const last = node.items[node.items.length - 1];
        if (last && last.node && last.node.label === seg) node = last.node;
        else { const n = { label: seg, items: [] }; node.items.push({ node: n }); node = n; }
      }
      node.items.push({ clause: c });
    }
    return root;
  }
  function clauseEl(c, label) {
    const el = h('div', { class: 'clause', 'data-clause-id': c.clause_id, tabindex: '0', role: 'button',
      'aria-label': '选中此条款' },
      h('p', { class: 'clause-text' }, label ? h('span', { class: 'clause-label' }, label) : null, c.text || ''),
      h('div', { class: 'clause-foot' },
        c.department ? h('span', { class: 'tag dept', title: '责任部门' }, c.department) : null,
        h('a', { href: '?clause=' + encodeURIComponent(c.clause_id), onclick: (e) => e.stopPropagation() }, '条款链接')));
    const pick = () => {
      if (String(window.getSelection() || '')) return; // the user is selecting text to copy
      pushURL(Object.assign(readURL(), { clause: c.clause_id, view: '' }));
      shown.clause = c.clause_id;
      shown.view = null;
      markSelected(c.clause_id, false);
    };
    el.addEventListener('click', pick);
    el.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } });
    return el;
  }
  function renderNode(node) {
    return node.items.map((it) => {
      if (it.clause) return clauseEl(it.clause, '');
      const n = it.node;
      // A heading that holds exactly one clause (e.g. "1．") is shown inline as that clause's label,
      // or not at all when the clause text already begins with it.
      if (n.items.length === 1 && n.items[0].clause) {
        const c = n.items[0].clause;
        return clauseEl(c, String(c.text || '').trim().startsWith(n.label) ? '' : n.label);
      }
      return h('details', { open: true }, h('summary', null, n.label), renderNode(n));
    });
  }
  function validityText(v) {
    if (!v) return '';
    const status = { current: '现行有效', expired: '已过期', unknown: '未载明有效期' }[v.status] || '';
    const until = v.until ? `（至${v.until}）` : '';
    return v.basis ? `${status}${until}：${v.basis}` : status + until;
  }
  function renderDoc(data, selectedId) {
    const d = data.document || {};
    const clauses = Array.isArray(data.clauses) ? data.clauses : [];
    const meta = [['发文机关', d.issuer], ['文号', d.doc_number], ['地区', [d.region, d.level].filter(Boolean).join(' · ')],
      ['日期', d.date], ['效力', validityText(d.validity)], ['条款数', d.clause_count != null ? d.clause_count : clauses.length]];
    els.docView.replaceChildren(
      h('header', { class: 'doc-head', 'data-doc-id': d.doc_id },
        h('h3', null, d.title || d.doc_id || ''),
        h('dl', { class: 'doc-meta' }, meta.filter((m) => m[1] !== '' && m[1] != null)
          .map(([k, v]) => h('div', null, h('dt', null, k), h('dd', null, String(v)))))),
      clauses.length ? h('div', { class: 'tree' }, renderNode(buildTree(clauses))) : h('p', { class: 'empty' }, '该文件没有条款。'));
    els.results.querySelectorAll('.result').forEach((r) => r.classList.toggle('active', r.dataset.clauseId === selectedId));
    if (selectedId) markSelected(selectedId, true);
  }
  function markSelected(clauseId, scroll) {
    let target = null;
    els.docView.querySelectorAll('.clause').forEach((el) => {
      const on = el.dataset.clauseId === clauseId;
      el.classList.toggle('selected', on);
      if (on) { el.setAttribute('aria-current', 'true'); target = el; } else el.removeAttribute('aria-current');
    });
    els.results.querySelectorAll('.result').forEach((r) => r.classList.toggle('active', r.dataset.clauseId === clauseId));
    if (!target) return;
    for (let p = target.parentElement; p && p !== els.docView; p = p.parentElement) if (p.tagName === 'DETAILS') p.open = true;
    if (scroll) {
      // Scroll inside the pane when it scrolls, otherwise the page.
      const pane = els.docView;
      if (pane.scrollHeight > pane.clientHeight + 4) {
        pane.scrollTop += target.getBoundingClientRect().top - pane.getBoundingClientRect().top - pane.clientHeight / 3;
      } else {
        const r = target.getBoundingClientRect();
        if (r.top < 0 || r.bottom > window.innerHeight) target.scrollIntoView({ block: 'center' });
      }
    }
  }

  // ------------------------------------------------------------------ filters
  async function loadFilters() {
    const [health, docs] = await Promise.allSettled([api('/health'), api('/documents')]);
    if (health.status === 'fulfilled') {
      const hd = health.value;
      els.health.textContent = [hd.documents != null ? `文件 ${hd.documents}` : '', hd.clauses != null ? `条款 ${hd.clauses}` : '',
        hd.model ? `模型 ${hd.model}` : ''].filter(Boolean).join(' · ');
      const cur = els.region.value;
      for (const r of hd.regions || []) if (![...els.region.options].some((o) => o.value === r)) els.region.append(h('option', { value: r }, r));
      els.region.value = cur;
    } else els.health.textContent = '服务状态未知';
    if (docs.status === 'fulfilled') {
      const cur = els.doc.value;
      const list = (docs.value.documents || []).slice().sort((a, b) =>
        String(a.region).localeCompare(String(b.region), 'zh') || String(b.date).localeCompare(String(a.date)));
      for (const o of [...els.doc.options]) if (o.value) o.remove();
      for (const d of list) {
        els.doc.append(h('option', { value: d.doc_id, title: d.title },
          `${d.region ? `【${d.region}】` : ''}${d.title || d.doc_id}${d.date ? `（${d.date.slice(0, 4)}）` : ''}`));
      }
      setSelect(els.doc, cur);
    }
  }

  // ------------------------------------------------------------------ events
  els.form.addEventListener('submit', (e) => {
    e.preventDefault();
    const st = formState();
    if (!st.q) { setStatus('请输入检索内容。', true); els.q.focus(); return; }
    const cur = readURL();
    pushURL(Object.assign(st, { clause: cur.clause, view: cur.view }));
    shown.search = null; // re-run even when the query is unchanged
    apply(readURL());
  });
  els.doc.addEventListener('change', () => { els.openDoc.hidden = !els.doc.value; });
  els.openDoc.addEventListener('click', () => {
    if (!els.doc.value) return;
    pushURL(Object.assign(readURL(), { view: els.doc.value, clause: '' }));
    openDocument(els.doc.value);
  });
  window.addEventListener('popstate', () => apply(readURL()));

  const initial = readURL();
  fillForm(initial);
  loadFilters().then(() => { els.openDoc.hidden = !els.doc.value; });
  apply(initial);
  if (!initial.q && !initial.clause) els.q.focus();
})();
