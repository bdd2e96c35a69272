'use strict';
// The admin UI: plain JavaScript over the /ui/api endpoints, no build step.
const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v; else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ''));
  return e;
};

async function api(method, path, body) {
  const res = await fetch('/ui/api/' + path, {
    method, headers: {'Content-Type': 'application/json', 'X-Requested-With': 'actions-ui'},
    body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin',
  });
  if (res.status === 401) { showLogin(); throw new Error('log in first'); }
  const data = await res.json();
  if (data && data.error) { const err = new Error(data.error.message); err.code = data.error.code; throw err; }
  return data;
}
const admin = (verb, body) => api('POST', 'admin/' + verb, body ?? {});

// ---- pages and login ----
const pages = ['login', 'tokens', 'logs', 'breakers'];
function show(page) {
  for (const p of pages) $('#' + p + '-page').hidden = p !== page;
  $('#nav').hidden = page === 'login';
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.id === 'nav-' + page);
}
function showLogin() { show('login'); $('#login-password').focus(); }

async function route() {
  const page = (location.hash.replace('#/', '') || 'tokens');
  try { await api('GET', 'session'); } catch { return; }
  stopFollow();
  if (page === 'logs') { show('logs'); loadLogs(); }
  else if (page === 'breakers') { show('breakers'); loadBreakers(); }
  else { show('tokens'); loadTokens(); }
}
window.addEventListener('hashchange', route);

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('#login-error').textContent = '';
  const res = await fetch('/ui/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({password: $('#login-password').value})});
  if (!res.ok) { const d = await res.json(); $('#login-error').textContent = d.error ? d.error.message : 'login failed'; return; }
  $('#login-password').value = '';
  route();
});
$('#logout').addEventListener('click', async () => {
  await fetch('/ui/logout', {method: 'POST'}); showLogin();
});

// ---- Authentication ----
async function loadTokens() {
  const {tokens} = await admin('tokens.list');
  const body = $('#tokens-table tbody');
  body.replaceChildren();
  $('#tokens-empty').hidden = tokens.length > 0;
  for (const t of tokens) {
    const secret = t.type === 'text' ? t.value : (t.fetched ? t.fetched.token_preview : '');
    body.append(el('tr', {'data-id': t.id},
      el('td', {}, t.name), el('td', {}, t.id), el('td', {}, t.type === 'http' ? 'HTTP Request' : 'Text'),
      el('td', {}, t.description), el('td', {class: 'secret'}, secret),
      el('td', {}, t.fetched ? t.fetched.fetched_at : ''), el('td', {}, t.fetched ? (t.fetched.expires_at || '') : ''),
      el('td', {}, el('button', {class: 'small edit', onclick: () => editToken(t.id)}, 'Edit'), ' ',
        el('button', {class: 'small delete', onclick: () => deleteToken(t.id)}, 'Delete'))));
  }
}

let tested = null; // the request JSON that last passed its test

function kvRow(container, k = '', v = '') {
  const row = el('div', {},
    el('input', {class: 'k', placeholder: 'key', value: k}),
    el('input', {class: 'v', placeholder: 'value', value: v}),
    el('button', {type: 'button', class: 'small link', onclick: () => { row.remove(); changed(); }}, 'remove'));
  row.addEventListener('input', changed);
  container.append(row);
}
function kvRead(container) {
  const out = {};
  for (const row of container.children) {
    const k = row.querySelector('.k').value.trim();
    if (k) out[k] = row.querySelector('.v').value;
  }
  return out;
}
$('#add-header').addEventListener('click', () => kvRow($('#t-headers')));
$('#add-param').addEventListener('click', () => kvRow($('#t-params')));

function readToken() {
  const t = {id: $('#t-id').value.trim(), name: $('#t-name').value.trim(), description: $('#t-description').value,
    type: $('#t-type').value, header: $('#t-header').value.trim(), prefix: $('#t-prefix').value};
  if (t.type === 'text') { t.value = $('#t-value').value; return t; }
  t.request = {method: $('#t-method').value, url: $('#t-url').value.trim(), headers: kvRead($('#t-headers')),
    params: kvRead($('#t-params'))};
  if ($('#t-encoding').value) t.request.params_encoding = $('#t-encoding').value;
  t.token_path = $('#t-token-path').value.trim();
  if ($('#t-expires-path').value.trim()) t.expires_in_path = $('#t-expires-path').value.trim();
  return t;
}
// The request part that a test checks: saving needs a passing test of it.
const testKey = (t) => JSON.stringify([t.request, t.token_path, t.expires_in_path]);

function changed() {
  const t = readToken();
  const ok = t.type === 'text' || (tested !== null && tested === testKey(t));
  $('#save-token').disabled = !ok;
  $('#save-hint').textContent = ok ? '' : 'Run a passing test request before saving.';
}
$('#token-form').addEventListener('input', changed);
$('#t-type').addEventListener('change', () => {
  const http = $('#t-type').value === 'http';
  $('#http-fields').hidden = !http; $('#text-fields').hidden = http; changed();
});

function openForm(title) {
  $('#token-form-title').textContent = title;
  $('#token-form').hidden = false; $('#token-error').textContent = ''; $('#test-result').hidden = true;
  $('#test-status').textContent = ''; tested = null;
}
$('#new-token').addEventListener('click', () => {
  $('#token-form').reset(); $('#t-id').readOnly = false;
  $('#t-headers').replaceChildren(); $('#t-params').replaceChildren(); kvRow($('#t-params'));
  $('#t-type').dispatchEvent(new Event('change'));
  openForm('New token'); changed();
});
$('#cancel-token').addEventListener('click', () => { $('#token-form').hidden = true; });

async function editToken(id) {
  const t = await admin('tokens.get', {id});
  $('#token-form').reset(); openForm('Edit ' + t.name);
  $('#t-type').value = t.type; $('#t-id').value = t.id; $('#t-id').readOnly = true;
  $('#t-name').value = t.name; $('#t-description').value = t.description || '';
  $('#t-header').value = t.header; $('#t-prefix').value = t.prefix || '';
  $('#t-value').value = t.value || '';
  $('#t-headers').replaceChildren(); $('#t-params').replaceChildren();
  if (t.request) {
    $('#t-method').value = t.request.method; $('#t-url').value = t.request.url; $('#t-encoding').value = t.request.params_encoding || '';
    for (const [k, v] of Object.entries(t.request.headers || {})) kvRow($('#t-headers'), k, v);
    for (const [k, v] of Object.entries(t.request.params || {})) kvRow($('#t-params'), k, v);
    $('#t-token-path').value = t.token_path || ''; $('#t-expires-path').value = t.expires_in_path || '';
  }
  $('#t-type').dispatchEvent(new Event('change'));
}

async function deleteToken(id) {
  if (!confirm('Delete token ' + id + '?')) return;
  await admin('tokens.delete', {id}); loadTokens();
}

$('#test-request').addEventListener('click', async () => {
  const t = readToken();
  $('#test-status').textContent = 'testing…'; $('#test-status').className = '';
  try {
    const r = await admin('tokens.test', t);
    $('#test-result').hidden = false;
    $('#test-http-status').textContent = r.http_status || '-';
    $('#test-token-preview').textContent = r.token_preview ? 'token ' + r.token_preview + (r.expires_in ? ', expires in ' + r.expires_in + ' s' : '') : '';
    let body = r.response ? r.response.body : '';
    try { body = JSON.stringify(JSON.parse(body), null, 2); } catch {}
    $('#test-body').textContent = body;
    if (r.ok && !r.token_preview) {
      tested = null; $('#test-status').textContent = 'the endpoint answered: set the token location from the response below and test again'; $('#test-status').className = '';
    } else if (r.ok) { tested = testKey(t); $('#test-status').textContent = 'test passed'; $('#test-status').className = 'ok'; }
    else { tested = null; $('#test-status').textContent = 'test failed: ' + r.error; $('#test-status').className = 'error'; }
  } catch (e) {
    tested = null; $('#test-status').textContent = e.message; $('#test-status').className = 'error';
  }
  changed();
});

$('#token-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('#token-error').textContent = '';
  try {
    await admin('tokens.save', readToken());
    $('#token-form').hidden = true; loadTokens();
  } catch (e) { $('#token-error').textContent = e.message; }
});

// ---- Logs ----
let source = null;
function stopFollow() { if (source) { source.close(); source = null; } }
function logRow(e) {
  const tr = el('tr', {class: e.trigger_id ? 'clickable' : '', 'data-event': e.event},
    el('td', {}, e.time), el('td', {class: 'level-' + e.level}, e.level), el('td', {}, e.event),
    el('td', {}, e.action_id), el('td', {}, e.trigger_id || ''), el('td', {}, e.message));
  if (e.trigger_id) tr.addEventListener('click', () => showResult(e.action_id, e.trigger_id));
  return tr;
}
function matches(e) {
  const a = $('#f-action').value.trim(), l = $('#f-level').value, ev = $('#f-event').value.trim();
  return (!a || e.action_id === a) && (!l || e.level === l) && (!ev || e.event === ev);
}
async function loadLogs() {
  stopFollow();
  const q = new URLSearchParams();
  if ($('#f-action').value.trim()) q.set('action', $('#f-action').value.trim());
  if ($('#f-level').value) q.set('level', $('#f-level').value);
  if ($('#f-event').value.trim()) q.set('event', $('#f-event').value.trim());
  const {events} = await api('GET', 'logs?' + q);
  $('#logs-table tbody').replaceChildren(...events.map(logRow));
  if ($('#f-live').checked) {
    const fq = new URLSearchParams(); if (q.get('action')) fq.set('action', q.get('action'));
    source = new EventSource('/ui/api/logs/follow?' + fq);
    source.onmessage = (m) => { const e = JSON.parse(m.data); if (matches(e)) $('#logs-table tbody').prepend(logRow(e)); };
  }
}
for (const id of ['#f-action', '#f-level', '#f-event', '#f-live']) $(id).addEventListener('change', loadLogs);

async function showResult(action, id) {
  try {
    const r = await api('GET', 'result?' + new URLSearchParams({action, trigger_id: id}));
    $('#result-panel').hidden = false; $('#rp-trigger').textContent = id;
    $('#rp-status').textContent = r.status; $('#rp-http').textContent = r.http_status;
    $('#rp-attempts').textContent = r.attempts; $('#rp-refreshed').textContent = r.token_refreshed;
    $('#rp-json').textContent = JSON.stringify(r, null, 2);
  } catch (e) { $('#result-panel').hidden = false; $('#rp-json').textContent = e.message; }
}

$('#tt-send').addEventListener('click', async () => {
  const t = {action_id: $('#tt-action').value.trim(), token_id: $('#tt-token').value.trim() || undefined,
    request: {method: $('#tt-method').value, url: $('#tt-url').value.trim(), body: $('#tt-body').value || undefined}};
  try { const r = await api('POST', 'trigger', t); $('#tt-status').textContent = 'sent ' + r.id; $('#tt-status').className = 'ok'; }
  catch (e) { $('#tt-status').textContent = e.message; $('#tt-status').className = 'error'; }
});

// ---- Breakers ----
async function loadBreakers() {
  const {breakers} = await admin('breakers.list');
  $('#breakers-empty').hidden = breakers.length > 0;
  $('#breakers-table tbody').replaceChildren(...breakers.map((b) => el('tr', {'data-action': b.action_id},
    el('td', {}, b.action_id), el('td', {class: 'state-' + b.state}, b.state), el('td', {}, b.reason || ''),
    el('td', {}, b.updated_at || ''),
    el('td', {}, b.state === 'closed' ? '' : el('button', {class: 'small reset', onclick: async () => {
      await admin('breakers.reset', {action_id: b.action_id}); loadBreakers();
    }}, 'Reset')))));
}

route();
