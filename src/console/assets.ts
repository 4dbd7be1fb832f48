/**
 * The console's only script and stylesheet, served by the proxy itself from
 * `/audit/ui/static/` under content-hashed names (cached for a year, so a
 * browser fetches each once per release). Kept as strings here so the
 * compiled program carries them: there is no build step for the page.
 *
 * The script is small and does three things the server cannot: keeps a
 * Kubernetes token in the tab's sessionStorage and sends it as a Bearer
 * header (a navigation cannot carry one, and the token must never be in a
 * cookie or URL), so in that mode it fetches pages and swaps them in; sends
 * the verify button's POST with the console's header (which a cross-site
 * form cannot, so behind IAP's cookie that POST cannot be forged); and turns
 * exports into downloads.
 *
 * @module
 */
import { createHash } from 'node:crypto';

/* eslint-disable max-len -- the script and stylesheet below are what the console serves, as written */
const SCRIPT = String.raw`'use strict';
(function () {
  var KEY = 'kvp-console-token';
  function mode() { return document.body.getAttribute('data-auth'); }
  function token() { try { return sessionStorage.getItem(KEY); } catch (e) { return null; } }
  function tokenMode() { return mode() === 'token' || (mode() === 'none' && !!token()); }
  function headers() {
    var h = { 'x-kvp-console': '1' };
    var t = token();
    if (t && mode() !== 'iap') h.authorization = 'Bearer ' + t;
    return h;
  }
  function setStatus(text) {
    var s = document.getElementById('status');
    if (s) s.textContent = text;
  }
  function swap(text) {
    var doc = new DOMParser().parseFromString(text, 'text/html');
    doc.querySelectorAll('script').forEach(function (s) { s.remove(); });
    document.title = doc.title;
    document.body.setAttribute('data-auth', doc.body.getAttribute('data-auth') || 'none');
    var nodes = Array.prototype.map.call(doc.body.childNodes, function (n) { return document.importNode(n, true); });
    document.body.replaceChildren.apply(document.body, nodes);
    var h = document.querySelector('h1');
    if (h) { h.setAttribute('tabindex', '-1'); h.focus(); }
  }
  function load(url, options) {
    options = options || {};
    setStatus('Loading…');
    return fetch(url, { method: options.method || 'GET', headers: headers(), credentials: 'same-origin', cache: 'no-store' })
      .then(function (response) {
        if (response.status === 401) { try { sessionStorage.removeItem(KEY); } catch (e) { /* ignore */ } }
        return response.text().then(function (text) {
          swap(text);
          if (options.push) history.pushState(null, '', url);
        });
      })
      .catch(function () { setStatus('The console could not reach the proxy. Try again.'); });
  }
  function download(link) {
    setStatus('Preparing the export…');
    fetch(link.href, { headers: headers(), credentials: 'same-origin', cache: 'no-store' })
      .then(function (response) {
        if (!response.ok) return response.text().then(swap);
        return response.blob().then(function (blob) {
          var url = URL.createObjectURL(blob);
          var a = document.createElement('a');
          a.href = url;
          a.download = link.getAttribute('data-download');
          document.body.appendChild(a);
          a.click();
          a.remove();
          setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
          setStatus('Export downloaded.');
        });
      })
      .catch(function () { setStatus('The export failed. Try again.'); });
  }
  function inConsole(url) { return url.origin === location.origin && url.pathname.indexOf('/audit/ui/') === 0; }

  document.addEventListener('click', function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    if (target.closest('#sign-out')) {
      try { sessionStorage.removeItem(KEY); } catch (e) { /* ignore */ }
      location.reload();
      return;
    }
    var a = target.closest('a');
    if (!a || !tokenMode() || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    var url = new URL(a.href, location.href);
    if (!inConsole(url)) return;
    event.preventDefault();
    if (a.hasAttribute('data-download')) download(a);
    else load(url.href, { push: true });
  });

  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    event.preventDefault();
    if (form.id === 'sign-in') {
      var value = form.elements.namedItem('token').value.trim();
      if (value === '') return;
      try { sessionStorage.setItem(KEY, value); } catch (e) { setStatus('This browser does not allow session storage.'); return; }
      load(location.href);
      return;
    }
    var url = new URL(form.getAttribute('action') || location.href, location.href);
    if ((form.getAttribute('method') || 'get').toLowerCase() === 'post') {
      load(url.href, { method: 'POST' });
      return;
    }
    // Empty fields stay out of the URL, so a shared link shows only the filters in use.
    url.search = '';
    new FormData(form).forEach(function (value, name) { if (typeof value === 'string' && value.trim() !== '') url.searchParams.set(name, value.trim()); });
    if (tokenMode()) load(url.href, { push: true });
    else location.assign(url.href);
  });

  window.addEventListener('popstate', function () { if (tokenMode()) load(location.href); });

  if (mode() === 'none' && token()) load(location.href);
})();
`;

const STYLES = `:root { --ink: #1b1f24; --muted: #4a5360; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa; --accent: #0b57d0; --allow: #1a7f37; --allow-bg: #dafbe1; --deny: #b3261e; --deny-bg: #ffebe9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, h1:focus-visible { outline: 3px solid #f0a000; outline-offset: 2px; }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 8px; top: 8px; background: var(--bg); padding: 4px 8px; z-index: 2; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 24px; padding: 10px 24px; background: #1f2937; color: #fff; }
header.top .brand { font-weight: 600; }
header.top nav ul { display: flex; gap: 16px; list-style: none; margin: 0; padding: 0; }
header.top a { color: #fff; text-decoration: none; padding: 2px 0; border-bottom: 2px solid transparent; }
header.top a[aria-current="page"] { border-bottom-color: #8ab4f8; }
header.top .who { margin-left: auto; font-size: 14px; color: #e5e7eb; }
header.top button { margin-left: 8px; }
main { max-width: 1280px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 12px; }
h2 { font-size: 18px; margin: 24px 0 8px; }
form.filters { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 8px 12px; padding: 12px; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
form.filters .actions { grid-column: 1 / -1; display: flex; gap: 12px; align-items: center; }
label { display: block; font-size: 13px; font-weight: 600; color: var(--muted); }
input, select, textarea { width: 100%; font: inherit; padding: 5px 7px; border: 1px solid #8c959f; border-radius: 4px; color: var(--ink); background: #fff; }
textarea { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
button { font: inherit; padding: 6px 14px; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
.toolbar { display: flex; flex-wrap: wrap; gap: 16px; align-items: center; margin: 12px 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
tbody tr:nth-child(even) { background: #fbfcfd; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.mono, td.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; word-break: break-all; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 13px; font-weight: 600; }
.badge.allow { color: var(--allow); background: var(--allow-bg); }
.badge.deny { color: var(--deny); background: var(--deny-bg); }
.notice { padding: 10px 14px; border-radius: 6px; border: 1px solid var(--line); background: var(--panel); }
.notice.error { border-color: var(--deny); background: var(--deny-bg); }
.notice.ok { border-color: var(--allow); background: var(--allow-bg); }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }
dl.fields dt { font-weight: 600; color: var(--muted); }
dl.fields dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; word-break: break-all; }
pre { background: var(--panel); border: 1px solid var(--line); padding: 10px; overflow-x: auto; font-size: 13px; }
.chart { width: 100%; max-width: 900px; height: auto; display: block; }
.chart .bar-allow { fill: var(--allow); }
.chart .bar-deny { fill: var(--deny); }
.chart .grid { stroke: var(--line); }
.chart .axis { fill: var(--muted); font-size: 11px; }
.legend { display: flex; gap: 16px; font-size: 14px; }
.legend span::before { content: ""; display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: -1px; }
.legend .allow::before { background: var(--allow); }
.legend .deny::before { background: var(--deny); }
.signin { max-width: 640px; }
.hint { font-size: 13px; color: var(--muted); }
#status { min-height: 1.5em; margin: 0; font-size: 14px; color: var(--muted); }
`;
/* eslint-enable max-len */

function named(base: string, ext: string, text: string): { readonly name: string; readonly body: string } {
  return { name: `${base}.${createHash('sha256').update(text).digest('hex').slice(0, 12)}.${ext}`, body: text };
}

export const CONSOLE_SCRIPT = named('console', 'js', SCRIPT);
export const CONSOLE_STYLES = named('console', 'css', STYLES);
/** A favicon of our own, so a browser's automatic /favicon.ico request does not end up on the Vertex AI path. */
export const CONSOLE_ICON = named(
  'icon',
  'svg',
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f2937"/><path ' +
    'd="M4 8.5l2.5 2.5L12 5.5" stroke="#8ab4f8" stroke-width="2" fill="none"/></svg>',
);
