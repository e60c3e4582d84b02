/*
 * 政策助手 — the staff console (/admin): library, feedback review, curated answers, evaluation, audit log.
 * Talks to /api/admin/* with the session cookie set at sign-in; every write sends the session's CSRF token
 * as X-CSRF-Token. Server text is only ever inserted as text nodes, never as HTML.
 */
(function () {
  'use strict';
  const $ = (sel) => document.querySelector(sel);
  let csrf = null;

  // ---------------------------------------------------------------- helpers
  const { h } = window.PolicyDom; // dom.js
  const fmtTime = (t) => (t ? new Date(t * 1000).toLocaleString('zh-CN', { hour12: false }) : '—');
  const pct = (v) => (v == null ? '—' : (v * 100).toFixed(1) + '%');
  const num = (v, d = 3) => (v == null ? '—' : Number(v).toFixed(d));
  function toast(text) {
    const t = $('#toast');
    t.textContent = text; t.hidden = false;
    clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 3500);
  }
  class ApiError extends Error { constructor(msg, status) { super(msg); this.status = status; } }
  async function api(path, opts = {}) {
    const headers = Object.assign({}, opts.headers || {});
    const method = opts.method || 'GET';
    if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
    let body = opts.body;
    if (opts.json !== undefined) { headers['Content-Type'] = 'application/json'; body = JSON.stringify(opts.json); }
    let res;
    try { res = await fetch(path, { method, headers, body, credentials: 'same-origin' }); }
    catch (e) { throw new ApiError('无法连接到服务，请检查网络。', 0); }
    let data = null;
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (res.status === 401 && path !== '/api/admin/session') { showSignIn('登录已过期，请重新登录。'); }
    if (!res.ok) {
      const d = data && data.detail;
      throw new ApiError(typeof d === 'string' ? d : `请求失败（${res.status}）`, res.status);
    }
    return data;
  }

  // ---------------------------------------------------------------- sign-in
  function showSignIn(message) {
    $('#app').hidden = true; $('#signin').hidden = false;
    $('#signin-error').textContent = message || '';
    $('#token').focus();
  }
  function showApp(session) {
    csrf = session.csrf;
    $('#whoami').textContent = '操作人：' + session.actor;
    $('#signin').hidden = true; $('#app').hidden = false;
    openTab(location.hash.replace('#', '') || 'library');
  }
  $('#signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = $('#signin-btn'); btn.disabled = true;
    try {
      const session = await api('/api/admin/session', { method: 'POST', json: { token: $('#token').value } });
      $('#token').value = '';
      showApp(session);
    } catch (e) {
      $('#signin-error').textContent = e.status === 401 ? '令牌不正确。' : e.message;
    } finally { btn.disabled = false; }
  });
  $('#signout').addEventListener('click', async () => {
    try { await api('/api/admin/session', { method: 'DELETE' }); } catch (e) { /* signed out anyway */ }
    csrf = null; showSignIn('已退出。');
  });

  // ---------------------------------------------------------------- tabs
  const loaders = {};
  function openTab(name) {
    if (!loaders[name]) name = 'library';
    for (const b of document.querySelectorAll('.tabs button')) b.setAttribute('aria-selected', String(b.dataset.tab === name));
    for (const p of document.querySelectorAll('.panel')) p.hidden = p.id !== 'tab-' + name;
    history.replaceState(null, '', '#' + name);
    loaders[name]().catch((e) => toast(e.message));
  }
  for (const b of document.querySelectorAll('.tabs button')) b.addEventListener('click', () => openTab(b.dataset.tab));
  for (const b of document.querySelectorAll('[data-close]')) b.addEventListener('click', () => b.closest('dialog').close());

  // ---------------------------------------------------------------- library
  const STATE = { indexed: ['已索引', 'green'], pending: ['待索引', 'amber'], duplicate: ['重复', 'blue'] };
  const VALID = { current: ['现行有效', 'green'], expired: ['已过期', 'red'], unknown: ['未载明', ''] };
  let docs = [];
  loaders.library = async function () {
    const data = await api('/api/admin/library');
    docs = data.documents;
    $('#index-info').textContent = data.index ? '索引构建于 ' + data.index : '';
    renderDocs();
    renderReindex(data.reindex);
    if (data.reindex.state === 'running') pollReindex();
  };
  function renderDocs() {
    const f = $('#doc-filter').value.trim();
    const shown = docs.filter((d) => !f || (d.title + d.region + d.source).includes(f));
    $('#doc-count').textContent = String(docs.length);
    $('#docs tbody').replaceChildren(...shown.map((d) => {
      const [st, sc] = STATE[d.state] || [d.state, ''];
      const v = d.validity || {};
      const [vt, vc] = VALID[v.status] || ['—', ''];
      return h('tr', { 'data-doc-id': d.doc_id },
        h('td', { class: 'title' }, d.title || d.source, h('div', { class: 'muted' }, d.source)),
        h('td', { 'data-label': '地区' }, d.region || '—'),
        h('td', { 'data-label': '发布' }, d.issued || '—'),
        h('td', { 'data-label': '有效期' }, h('span', { class: 'badge ' + vc, title: v.basis || '' }, vt),
          v.until ? ' 至 ' + v.until : '', d.override ? h('div', { class: 'muted' }, '人工设置：' + d.override.valid_until) : null),
        h('td', { 'data-label': '条款' }, String(d.clause_count)),
        h('td', { 'data-label': '状态' }, h('span', { class: 'badge ' + sc }, st),
          d.duplicate_of ? h('div', { class: 'muted' }, '与 ' + d.duplicate_of + ' 重复') : null,
          d.duplicates.length ? h('div', { class: 'muted' }, '合并了 ' + d.duplicates.length + ' 份重复') : null),
        h('td', { class: 'actions-cell' },
          h('button', { type: 'button', class: 'btn small', onclick: () => editValidity(d) }, '有效期'),
          h('button', { type: 'button', class: 'btn small danger', onclick: () => removeDoc(d) }, '删除')));
    }));
  }
  $('#doc-filter').addEventListener('input', renderDocs);
  async function removeDoc(d) {
    if (!confirm(`删除《${d.title || d.source}》？重新索引后将不再用于回答。`)) return;
    try { await api('/api/admin/documents/' + encodeURIComponent(d.doc_id), { method: 'DELETE' }); toast('已删除，请重新索引。'); loaders.library(); }
    catch (e) { toast(e.message); }
  }
  let validityDoc = null;
  function editValidity(d) {
    validityDoc = d;
    $('#va-doc').textContent = d.title || d.source;
    $('#va-until').value = (d.override && d.override.valid_until) || '';
    $('#va-basis').value = (d.override && d.override.validity_basis) || '';
    $('#va-error').textContent = '';
    $('#validity-dialog').showModal();
  }
  $('#validity-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api(`/api/admin/documents/${encodeURIComponent(validityDoc.doc_id)}/validity`, { method: 'PUT',
        json: { valid_until: $('#va-until').value, basis: $('#va-basis').value } });
      $('#validity-dialog').close(); toast('有效期已保存，重新索引后生效。'); loaders.library();
    } catch (e) { $('#va-error').textContent = e.message; }
  });

  async function uploadFiles(files) {
    if (!files.length) return;
    const form = new FormData();
    for (const f of files) form.append('files', f, f.name);
    const list = $('#upload-results');
    list.replaceChildren(h('li', null, `正在上传 ${files.length} 个文件…`));
    try {
      const data = await api('/api/admin/upload', { method: 'POST', body: form });
      list.replaceChildren(...data.results.map((r) => h('li', { 'data-ok': String(r.ok) },
        h('span', { class: r.ok ? 'ok' : 'bad' }, r.ok ? '✓' : '✗'), h('span', { class: 'name' }, r.file),
        h('span', { class: 'muted' }, r.ok ? `已保存（${r.chars} 字），待索引` : r.error))));
      if (data.reindex_needed) toast('上传完成，请重新索引使其生效。');
      loaders.library();
    } catch (e) { list.replaceChildren(h('li', { class: 'bad' }, e.message)); }
  }
  const drop = $('#drop');
  $('#files').addEventListener('change', (ev) => { uploadFiles([...ev.target.files]); ev.target.value = ''; });
  for (const t of ['dragenter', 'dragover']) drop.addEventListener(t, (ev) => { ev.preventDefault(); drop.classList.add('over'); });
  for (const t of ['dragleave', 'drop']) drop.addEventListener(t, () => drop.classList.remove('over'));
  drop.addEventListener('drop', (ev) => { ev.preventDefault(); uploadFiles([...ev.dataTransfer.files]); });

  const STAGES = { starting: '准备中', loading: '读取文件', chunking: '切分条款', embedding: '计算向量', writing: '写入索引', done: '完成' };
  function renderReindex(s) {
    const box = $('#reindex-status');
    $('#reindex').disabled = s.state === 'running';
    const p = s.progress || {};
    if (s.state === 'idle') { box.replaceChildren(h('span', { class: 'muted' }, '本次运行尚未重新索引。')); return; }
    const kids = [h('div', { 'data-state': s.state, class: 'reindex-state' },
      s.state === 'running' ? `进行中：${STAGES[p.stage] || p.stage || ''}` : s.state === 'done' ? '✓ 索引已更新' : '✗ 索引失败，旧索引继续服务')];
    if (s.state === 'running') {
      const [done, total] = p.stage === 'chunking' ? [p.documents_done, p.documents_total] : [p.clauses_done, p.clauses_total];
      kids.push(h('div', { class: 'bar' }, h('i', { style: `width:${total ? Math.round(100 * done / total) : 5}%` })));
      kids.push(h('dl', { class: 'kv' },
        h('dt', null, '文档'), h('dd', null, p.documents_total ? `${p.documents_done} / ${p.documents_total}` : '—'),
        h('dt', null, '已计算向量'), h('dd', null, p.clauses_total ? `${p.clauses_done} / ${p.clauses_total} 条款` : '—'),
        h('dt', null, '预计剩余'), h('dd', null, p.seconds_left != null ? `${Math.ceil(p.seconds_left)} 秒` : '估算中')));
    }
    if (s.state === 'failed') kids.push(h('p', { class: 'form-error' }, s.error || ''));
    const st = s.stats;
    if (st) {
      kids.push(h('dl', { class: 'kv' },
        h('dt', null, '文档 / 条款'), h('dd', null, `${st.documents} / ${st.clauses}`),
        h('dt', null, '新计算向量'), h('dd', null, String(st.embedded)),
        h('dt', null, '变动'), h('dd', null, st.changes ? `新增 ${st.changes.added}，修改 ${st.changes.changed}，删除 ${st.changes.removed}` : '—'),
        h('dt', null, '用时'), h('dd', null, `${num(st.seconds, 1)} 秒，${fmtTime(s.finished_at)}`)));
      kids.push(st.skipped && st.skipped.length
        ? h('div', null, h('strong', null, `跳过 ${st.skipped.length} 份文件：`), h('ul', { class: 'skipped' }, st.skipped.map((x) => h('li', null, x))))
        : h('div', { class: 'muted' }, '没有跳过的文件。'));
    }
    box.replaceChildren(...kids);
  }
  let polling = false;
  async function pollReindex() {
    if (polling) return;
    polling = true;
    try {
      for (;;) {
        await new Promise((r) => setTimeout(r, 700));
        const s = await api('/api/admin/reindex');
        renderReindex(s);
        if (s.state !== 'running') { if (!$('#tab-library').hidden) loaders.library(); break; }
      }
    } catch (e) { toast(e.message); } finally { polling = false; }
  }
  $('#reindex').addEventListener('click', async () => {
    try { renderReindex(await api('/api/admin/reindex', { method: 'POST' })); pollReindex(); } catch (e) { toast(e.message); }
  });

  // ---------------------------------------------------------------- feedback
  loaders.feedback = async function () {
    const q = new URLSearchParams({ rating: $('#fb-rating').value, since: $('#fb-since').value, until: $('#fb-until').value,
      commented: String($('#fb-commented').checked) });
    const data = await api('/api/admin/review?' + q);
    const list = $('#fb-list');
    if (!data.feedback.length) { list.replaceChildren(h('div', { class: 'empty' }, '没有符合条件的反馈。')); return; }
    list.replaceChildren(...data.feedback.map((f) => h('article', { class: 'item feedback', 'data-id': f.id },
      h('div', { class: 'item-head' }, h('span', { class: 'badge ' + (f.rating === 'down' ? 'red' : 'green') }, f.rating === 'down' ? '差评' : '好评'),
        fmtTime(f.created_at), f.source === 'curated' ? h('span', { class: 'badge blue' }, '审定答复') : null, f.refused ? h('span', { class: 'badge amber' }, '拒答') : null),
      h('div', { class: 'q' }, f.question || '（问题未记录）'),
      f.answer ? h('div', { class: 'a' }, f.answer) : null,
      f.citations.length ? h('ol', { class: 'cites' }, f.citations.map((c) => h('li', null, `[${c.n}] ${c.doc_title} · ${c.section} `, h('code', null, c.clause_id)))) : null,
      f.comment ? h('p', { class: 'comment' }, '留言：' + f.comment) : null,
      h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'btn small primary write-curated', onclick: () => openCurated(null, f) }, '写审定答复'),
        h('button', { type: 'button', class: 'btn small', onclick: () => openItem(f) }, '转为测试题')))));
  };
  $('#fb-filters').addEventListener('submit', (ev) => { ev.preventDefault(); loaders.feedback().catch((e) => toast(e.message)); });

  let itemFeedback = null;
  function openItem(f) {
    itemFeedback = f;
    $('#it-question').value = f.question || '';
    $('#it-clauses').value = f.citations.map((c) => c.clause_id).join('\n');
    $('#it-expected').value = ''; $('#it-facts').value = ''; $('#it-refuse').checked = false; $('#it-error').textContent = '';
    $('#item-dialog').showModal();
  }
  $('#item-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('/api/admin/testitems', { method: 'POST', json: { question: $('#it-question').value,
        clause_ids: $('#it-clauses').value.split('\n').map((s) => s.trim()).filter(Boolean), expected: $('#it-expected').value,
        facts: $('#it-facts').value.split(/[,，]/).map((s) => s.trim()).filter(Boolean), refuse: $('#it-refuse').checked,
        feedback_id: itemFeedback ? itemFeedback.id : null } });
      $('#item-dialog').close(); toast('已加入回归测试集。');
    } catch (e) { $('#it-error').textContent = e.message; }
  });

  // ---------------------------------------------------------------- curated answers
  loaders.curated = async function () {
    const [data, items] = await Promise.all([api('/api/admin/curated'), api('/api/admin/testitems')]);
    const list = $('#curated-list');
    list.replaceChildren(...(data.curated.length ? data.curated.map((c) => h('article', { class: 'item curated' + (c.served ? '' : ' flagged'), 'data-id': c.id },
      h('div', { class: 'item-head' }, h('span', { class: 'badge ' + (c.served ? 'green' : 'red') }, c.served ? '生效中' : '引用条款已失效，暂停使用'),
        `#${c.id} · ${c.actor || '—'} · ${fmtTime(c.updated_at)}`),
      h('div', { class: 'q' }, c.question), h('div', { class: 'a' }, c.answer),
      h('ol', { class: 'cites' }, c.clause_ids.map((id) => h('li', null, h('code', null, id), c.missing.includes(id) ? h('span', { class: 'badge red' }, ' 已不在索引中') : null))),
      c.note ? h('p', { class: 'muted' }, '备注：' + c.note) : null,
      h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'btn small', onclick: () => openCurated(c) }, '编辑'),
        h('button', { type: 'button', class: 'btn small danger', onclick: () => removeCurated(c) }, '删除'))))
      : [h('div', { class: 'empty' }, '还没有审定答复。可从“用户反馈”中选择一条写答复，或点击“新建审定答复”。')]));
    $('#items-list').replaceChildren(...(items.items.length ? items.items.map((t) => h('article', { class: 'item' },
      h('div', { class: 'item-head' }, t.refuse ? h('span', { class: 'badge amber' }, '应拒答') : h('span', { class: 'badge blue' }, '测试题'), `#${t.id} · ${t.actor} · ${fmtTime(t.created_at)}`),
      h('div', { class: 'q' }, t.question),
      t.clause_ids.length ? h('ol', { class: 'cites' }, t.clause_ids.map((id) => h('li', null, h('code', null, id)))) : null,
      h('div', { class: 'row-actions' }, h('button', { type: 'button', class: 'btn small danger', onclick: async () => {
        if (!confirm('删除这道测试题？')) return;
        try { await api('/api/admin/testitems/' + t.id, { method: 'DELETE' }); loaders.curated(); } catch (e) { toast(e.message); }
      } }, '删除')))) : [h('div', { class: 'empty' }, '还没有由反馈生成的测试题。')]));
  };
  async function removeCurated(c) {
    if (!confirm('删除这条审定答复？')) return;
    try { await api('/api/admin/curated/' + c.id, { method: 'DELETE' }); toast('已删除。'); loaders.curated(); } catch (e) { toast(e.message); }
  }
  let editing = null;
  let picked = [];
  function renderPicked() {
    $('#cu-picked').replaceChildren(...picked.map((p, i) => h('li', null, h('code', null, p.clause_id), ' ', p.title || '',
      h('button', { type: 'button', class: 'btn small', onclick: () => insertMarker(i + 1) }, `插入 [${i + 1}]`),
      h('button', { type: 'button', class: 'btn small danger', onclick: () => { picked.splice(i, 1); renderPicked(); } }, '移除'))));
  }
  function insertMarker(n) {
    const ta = $('#cu-answer');
    const at = ta.selectionStart != null ? ta.selectionEnd : ta.value.length;
    ta.value = ta.value.slice(0, at) + `[${n}]` + ta.value.slice(at);
    ta.focus();
  }
  function openCurated(c, fromFeedback) {
    editing = c;
    $('#curated-title').textContent = c ? `编辑审定答复 #${c.id}` : '新建审定答复';
    $('#cu-question').value = c ? c.question : (fromFeedback ? fromFeedback.question : '');
    $('#cu-answer').value = c ? c.answer : '';
    $('#cu-note').value = c ? c.note : (fromFeedback ? `来自用户反馈 #${fromFeedback.id}` : '');
    picked = c ? c.clause_ids.map((id) => ({ clause_id: id })) : (fromFeedback ? fromFeedback.citations.map((x) => ({ clause_id: x.clause_id, title: x.doc_title })) : []);
    $('#cu-search').value = c ? '' : ($('#cu-question').value || '');
    $('#cu-hits').replaceChildren(); $('#cu-error').textContent = '';
    renderPicked();
    $('#curated-dialog').showModal();
  }
  $('#new-curated').addEventListener('click', () => openCurated(null));
  async function searchClauses() {
    const query = $('#cu-search').value.trim();
    if (!query) return;
    try {
      const data = await api('/api/search', { method: 'POST', json: { query, k: 8 } });
      $('#cu-hits').replaceChildren(...data.hits.map((hit) => h('li', null,
        h('div', null, h('strong', null, `${hit.doc_title} · ${hit.section}`), ' ', h('code', null, hit.clause_id), h('div', { class: 't' }, hit.text)),
        h('button', { type: 'button', class: 'btn small pick', onclick: () => {
          if (!picked.some((p) => p.clause_id === hit.clause_id)) picked.push({ clause_id: hit.clause_id, title: hit.doc_title });
          renderPicked();
        } }, '引用'))));
    } catch (e) { $('#cu-error').textContent = e.message; }
  }
  $('#cu-search-btn').addEventListener('click', searchClauses);
  $('#cu-search').addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); searchClauses(); } });
  $('#curated-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { question: $('#cu-question').value, answer: $('#cu-answer').value, clause_ids: picked.map((p) => p.clause_id), note: $('#cu-note').value };
    try {
      await api(editing ? '/api/admin/curated/' + editing.id : '/api/admin/curated', { method: editing ? 'PUT' : 'POST', json: body });
      $('#curated-dialog').close(); toast('审定答复已保存，立即生效。');
      openTab('curated');
    } catch (e) { $('#cu-error').textContent = e.message; }
  });

  // ---------------------------------------------------------------- evaluation
  loaders.eval = async function () {
    const [sets, runs] = await Promise.all([api('/api/admin/testsets'), api('/api/admin/evalruns')]);
    const sel = $('#eval-set');
    const keep = sel.value;
    sel.replaceChildren(...sets.builtin.map((s) => h('option', { value: s.id }, s.id === 'seed' ? '种子测试集' : '导出：审定答复 + 反馈测试题')),
      ...sets.uploaded.map((s) => h('option', { value: String(s.id) }, `${s.name}（${s.items} 题）`)));
    if (keep) sel.value = keep;
    renderRuns(runs.runs);
    const running = runs.runs.find((r) => r.state === 'running');
    if (running) pollRun(running.id);
  };
  function renderRuns(runs) {
    $('#runs tbody').replaceChildren(...runs.map((r) => {
      const m = r.metrics || {};
      return h('tr', { class: 'clickable', 'data-run': r.id, onclick: () => showRun(r.id) },
        h('td', { class: 'title' }, fmtTime(r.started_at), h('div', { class: 'muted' }, r.actor)),
        h('td', { 'data-label': '测试集' }, r.testset), h('td', { 'data-label': '索引版本' }, r.index_version),
        h('td', { 'data-label': '题数' }, String(r.total)), h('td', { 'data-label': 'Recall@3' }, num(m['recall@3'])),
        h('td', { 'data-label': 'MRR@10' }, num(m['mrr@10'])), h('td', { 'data-label': '全部事实正确' }, pct(m.all_facts)),
        h('td', { 'data-label': '引用精确率' }, num(m.citation_precision)), h('td', { 'data-label': '拒答召回' }, num(m.refusal_recall)),
        h('td', { 'data-label': '状态' }, h('span', { class: 'badge ' + ({ done: 'green', failed: 'red', running: 'amber' }[r.state]) },
          { done: '完成', failed: '失败', running: `进行中 ${r.done}/${r.total}` }[r.state])));
    }));
  }
  let runPolling = null;
  async function pollRun(id) {
    if (runPolling === id) return;
    runPolling = id;
    try {
      for (;;) {
        const r = await api('/api/admin/evalruns/' + id);
        const box = $('#eval-status');
        if (r.state === 'running') {
          box.replaceChildren(h('div', null, `评测进行中：${r.done} / ${r.total} 题`), h('div', { class: 'bar' }, h('i', { style: `width:${r.total ? Math.round(100 * r.done / r.total) : 3}%` })));
          $('#eval-start').disabled = true;
          await new Promise((res) => setTimeout(res, 800));
          continue;
        }
        $('#eval-start').disabled = false;
        box.replaceChildren(h('div', { class: r.state === 'done' ? 'ok' : 'form-error' }, r.state === 'done' ? '✓ 评测完成' : '✗ 评测失败：' + r.error));
        if (!$('#tab-eval').hidden) { const runs = await api('/api/admin/evalruns'); renderRuns(runs.runs); }
        if (r.state === 'done') renderReport(r);
        break;
      }
    } catch (e) { toast(e.message); } finally { runPolling = null; }
  }
  async function showRun(id) {
    try { const r = await api('/api/admin/evalruns/' + id); if (r.state === 'running') pollRun(id); else renderReport(r); } catch (e) { toast(e.message); }
  }
  function renderReport(r) {
    const box = $('#eval-report');
    const rep = r.report || {};
    const a = rep.answers || {};
    const metric = (label, v) => h('div', { class: 'metric' }, h('b', null, v), h('span', null, label));
    const modes = Object.entries(rep.retrieval || {});
    const cols = ['recall@1', 'recall@3', 'recall@5', 'recall@10', 'mrr@10', 'ndcg@10', 'p50_ms'];
    const files = r.state === 'done' ? ['recall_at_k.png', 'latency.png', 'accuracy_per_tag.png'] : [];
    box.hidden = false;
    box.replaceChildren(
      h('div', { class: 'card-head' }, h('h2', null, `评测报告 #${r.id} · ${r.testset}`),
        h('a', { class: 'btn small', href: `/api/admin/evalruns/${r.id}/files/report.md`, target: '_blank' }, 'report.md')),
      h('p', { class: 'muted' }, `${fmtTime(r.started_at)} · ${r.actor} · 索引 ${r.index_version} · ${r.total} 题`),
      h('div', { class: 'metrics' },
        metric('混合检索 Recall@3', num((r.metrics || {})['recall@3'])), metric('MRR@10', num((r.metrics || {})['mrr@10'])),
        metric('事实准确率', pct(a.fact_accuracy)), metric('全部事实正确', pct(a.all_facts)),
        metric('引用精确率', num(a.citation_precision)), metric('引用召回率', num(a.citation_recall)),
        metric('拒答精确率', num(a.refusal && a.refusal.precision)), metric('拒答召回率', num(a.refusal && a.refusal.recall)),
        metric('回答延迟 p50', a.latency_p50_ms != null ? Math.round(a.latency_p50_ms) + ' ms' : '—')),
      modes.length ? h('div', { class: 'report-table' }, h('table', { class: 'grid' },
        h('thead', null, h('tr', null, h('th', null, '检索模式'), cols.map((c) => h('th', null, c)))),
        h('tbody', null, modes.map(([mode, m]) => h('tr', null, h('td', { class: 'title' }, mode), cols.map((c) => h('td', { 'data-label': c }, num(m[c], c.endsWith('ms') ? 1 : 3)))))))) : null,
      h('div', { class: 'plots' }, files.map((f) => h('img', { src: `/api/admin/evalruns/${r.id}/files/${f}`, alt: f, onerror: (ev) => ev.target.remove() }))));
  }
  $('#eval-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const limit = parseInt($('#eval-limit').value, 10);
    try {
      const run = await api('/api/admin/evalruns', { method: 'POST', json: { testset: $('#eval-set').value, limit: limit > 0 ? limit : null } });
      pollRun(run.id);
    } catch (e) { $('#eval-status').replaceChildren(h('div', { class: 'form-error' }, e.message)); }
  });
  $('#testset-file').addEventListener('change', async (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    const form = new FormData();
    form.append('file', file, file.name);
    const out = $('#testset-result');
    try {
      const r = await api('/api/admin/testsets', { method: 'POST', body: form });
      out.replaceChildren(h('span', { class: 'ok' }, `✓ 已上传 ${r.name}（${r.items} 题）`));
      await loaders.eval();
      $('#eval-set').value = String(r.id);
    } catch (e) { out.replaceChildren(h('span', { class: 'form-error' }, '✗ ' + e.message)); }
    ev.target.value = '';
  });

  // ---------------------------------------------------------------- audit
  const ACTION = { 'auth.sign_in': '登录', 'auth.failed': '登录失败', 'auth.sign_out': '退出', 'document.upload': '上传文档',
    'document.delete': '删除文档', 'document.validity': '设置有效期', 'reindex.start': '重新索引', 'curated.add': '新建审定答复',
    'curated.edit': '编辑审定答复', 'curated.delete': '删除审定答复', 'eval.run': '运行评测', 'testset.upload': '上传测试集',
    'testitem.add': '新建测试题', 'testitem.delete': '删除测试题' };
  loaders.audit = async function () {
    const data = await api('/api/admin/audit?' + new URLSearchParams({ action: $('#audit-action').value, limit: '300' }));
    $('#audit tbody').replaceChildren(...data.entries.map((e) => h('tr', { 'data-action': e.action },
      h('td', { class: 'title' }, fmtTime(e.at)), h('td', { 'data-label': '操作人' }, e.actor),
      h('td', { 'data-label': '操作' }, ACTION[e.action] || e.action), h('td', { 'data-label': '对象' }, e.target || '—'),
      h('td', { 'data-label': '结果' }, h('span', { class: 'badge ' + (e.ok ? 'green' : 'red') }, e.ok ? '成功' : '失败')),
      h('td', { 'data-label': '详情', class: 'muted' }, Object.entries(e.detail || {}).filter(([, v]) => v != null && v !== '').map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join('  ')))));
  };
  $('#audit-action').addEventListener('change', () => loaders.audit().catch((e) => toast(e.message)));

  // ---------------------------------------------------------------- boot
  api('/api/admin/session').then(showApp).catch((e) => showSignIn(e.status === 404 ? '管理功能未启用（服务未配置管理令牌）。' : ''));
})();
