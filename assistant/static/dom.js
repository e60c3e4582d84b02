/*
 * The DOM helper the lookup page and the staff console share (the embeddable widget keeps its own copy:
 * it runs inside host pages and loads nothing else). h(tag, attrs, ...kids) builds an element; strings
 * become text nodes, so server text is never parsed as HTML.
 */
(function () {
  'use strict';
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) if (kid != null && kid !== false) el.append(kid);
    return el;
  }
  window.PolicyDom = Object.freeze({ h });
})();
