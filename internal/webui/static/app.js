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
      el('td', {}, t.name), el('td', {}, t.id), el('td', {}, typeNames[t.type] || t.type),
      el('td', {}, t.description), el('td', {class: 'secret'}, secret), el('td', {class: 'status'}, healthBadge(t)),
      el('td', {}, t.fetched ? t.fetched.fetched_at : ''), el('td', {}, t.fetched ? (t.fetched.expires_at || '') : ''),
      el('td', {}, el('button', {class: 'small edit', onclick: () => editToken(t.id)}, 'Edit'), ' ',
        el('button', {class: 'small delete', onclick: () => deleteToken(t.id)}, 'Delete'))));
  }
}

const typeNames = {text: 'Text', http: 'HTTP Request', oauth2: 'OAuth 2.0'};

// healthBadge shows the health of an oauth2 token; hovering it tells since
// when and the last error.
function healthBadge(t) {
  if (!t.status) return t.type === 'oauth2' ? 'not connected' : '';
  let title = 'since ' + (t.status_changed_at || '?');
  if (t.last_error) title += '\nlast error: ' + t.last_error;
  return el('span', {class: 'badge health-' + t.status, title}, t.status.replaceAll('_', ' '));
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
$('#add-extra').addEventListener('click', () => kvRow($('#o-extra')));

// readOAuth2 reads the oauth2 object of the form; empty optional fields are
// left out, and a refresh token only goes with a grant that uses one.
function readOAuth2() {
  const o = {grant: $('#o-grant').value, token_url: $('#o-token-url').value.trim(), client_id: $('#o-client-id').value.trim(),
    client_auth: $('#o-client-auth').value};
  if ($('#o-client-secret').value) o.client_secret = $('#o-client-secret').value;
  const scopes = $('#o-scopes').value.split(/[\s,]+/).filter(Boolean);
  if (scopes.length) o.scopes = scopes;
  const extra = kvRead($('#o-extra'));
  if (Object.keys(extra).length) o.extra_params = extra;
  if (o.grant !== 'client_credentials' && $('#o-refresh-token').value.trim()) o.refresh_token = $('#o-refresh-token').value.trim();
  if (o.grant === 'authorization_code' && $('#o-authorize-url').value.trim()) o.authorize_url = $('#o-authorize-url').value.trim();
  if ($('#o-revoke-url').value.trim()) o.revoke_url = $('#o-revoke-url').value.trim();
  const statuses = $('#o-expired').value.split(/[\s,]+/).filter(Boolean).map(Number);
  if (statuses.length) o.expired_statuses = statuses;
  return o;
}
const isMask = (v) => typeof v === 'string' && v.startsWith('****');

function readToken() {
  const t = {id: $('#t-id').value.trim(), name: $('#t-name').value.trim(), description: $('#t-description').value,
    type: $('#t-type').value, header: $('#t-header').value.trim(), prefix: $('#t-prefix').value};
  if (t.type === 'text') { t.value = $('#t-value').value; return t; }
  if (t.type === 'oauth2') { t.oauth2 = readOAuth2(); return t; }
  t.request = {method: $('#t-method').value, url: $('#t-url').value.trim(), headers: kvRead($('#t-headers')),
    params: kvRead($('#t-params'))};
  if ($('#t-encoding').value) t.request.params_encoding = $('#t-encoding').value;
  t.token_path = $('#t-token-path').value.trim();
  if ($('#t-expires-path').value.trim()) t.expires_in_path = $('#t-expires-path').value.trim();
  return t;
}
// The request part that a test checks: saving needs a passing test of it.
const testKey = (t) => JSON.stringify(t.type === 'oauth2' ? [t.oauth2] : [t.request, t.token_path, t.expires_in_path]);

// An edit of an oauth2 token that keeps the stored client secret (sent
// back masked) cannot be tested before saving: the save tests it, with one
// token request, and saves nothing if it fails.
const keepsSecret = (t) => t.type === 'oauth2' && isMask(t.oauth2.client_secret);

function changed() {
  const t = readToken();
  const ok = t.type === 'text' || keepsSecret(t) || (tested !== null && tested === testKey(t));
  $('#save-token').disabled = !ok;
  $('#save-hint').textContent = ok ? (keepsSecret(t) ? 'Saving tests the token with one token request.' : '') :
    'Run a passing test request before saving.';
}
$('#token-form').addEventListener('input', changed);
$('#t-type').addEventListener('change', () => {
  const type = $('#t-type').value;
  $('#http-fields').hidden = type !== 'http'; $('#text-fields').hidden = type !== 'text';
  $('#oauth2-fields').hidden = type !== 'oauth2'; changed();
});
const grantHints = {
  client_credentials: 'The test request fetches an access token; saving fetches one again and keeps it.',
  refresh_token: 'Paste a refresh token obtained elsewhere. The test only checks the settings (a refresh would spend the refresh token); saving spends it in one refresh and keeps the rotated one. Leave it empty on an edit to keep the connection.',
  authorization_code: 'Until the browser connect flow exists, paste a refresh token; without one the token is saved "reauthorization required".',
};
$('#o-grant').addEventListener('change', () => {
  const grant = $('#o-grant').value;
  $('#o-refresh-row').hidden = grant === 'client_credentials';
  $('#o-authorize-row').hidden = grant !== 'authorization_code';
  $('#o-grant-hint').textContent = grantHints[grant] || '';
  changed();
});

function openForm(title) {
  $('#token-form-title').textContent = title;
  $('#token-form').hidden = false; $('#token-error').textContent = ''; $('#test-result').hidden = true;
  $('#test-status').textContent = ''; $('#o-test-result').hidden = true; $('#o-test-status').textContent = '';
  $('#o-refresh-token').placeholder = ''; tested = null;
}
$('#new-token').addEventListener('click', () => {
  $('#token-form').reset(); $('#t-id').readOnly = false;
  $('#t-headers').replaceChildren(); $('#t-params').replaceChildren(); kvRow($('#t-params'));
  $('#o-extra').replaceChildren();
  $('#t-type').dispatchEvent(new Event('change')); $('#o-grant').dispatchEvent(new Event('change'));
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
  $('#o-extra').replaceChildren();
  if (t.oauth2) {
    const o = t.oauth2;
    $('#o-grant').value = o.grant; $('#o-token-url').value = o.token_url || ''; $('#o-client-id').value = o.client_id || '';
    $('#o-client-secret').value = o.client_secret || ''; $('#o-client-auth').value = o.client_auth || 'basic';
    $('#o-scopes').value = (o.scopes || []).join(' '); $('#o-authorize-url').value = o.authorize_url || '';
    $('#o-revoke-url').value = o.revoke_url || ''; $('#o-expired').value = (o.expired_statuses || [401]).join(', ');
    $('#o-refresh-token').value = '';
    $('#o-refresh-token').placeholder = t.fetched && t.fetched.refresh_token_preview ?
      'connected (' + t.fetched.refresh_token_preview + '): leave empty to keep' : 'paste a refresh token';
    for (const [k, v] of Object.entries(o.extra_params || {})) kvRow($('#o-extra'), k, v);
  }
  $('#t-type').dispatchEvent(new Event('change')); $('#o-grant').dispatchEvent(new Event('change'));
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

// The test of an oauth2 token (tokens.test): client_credentials fetches a
// token; a grant that works from a refresh token is only checked, since a
// refresh would spend the refresh token (the save spends it, once).
$('#o-test-request').addEventListener('click', async () => {
  const t = readToken();
  $('#o-test-status').textContent = 'testing…'; $('#o-test-status').className = '';
  $('#o-test-result').hidden = true;
  try {
    const r = await admin('tokens.test', t);
    if (r.http_status || r.token_preview || r.response) {
      $('#o-test-result').hidden = false;
      $('#o-test-http-status').textContent = r.http_status || '-';
      $('#o-test-token-preview').textContent = r.token_preview ? 'access token ' + r.token_preview + (r.expires_in ? ', expires in ' + r.expires_in + ' s' : '') : '';
      let body = r.response ? r.response.body : '';
      try { body = JSON.stringify(JSON.parse(body), null, 2); } catch {}
      $('#o-test-body').textContent = body; $('#o-test-body').hidden = !body;
    }
    if (r.ok) {
      tested = testKey(t); $('#o-test-status').className = 'ok';
      $('#o-test-status').textContent = r.details && r.details.hint ? 'settings valid: ' + r.details.hint : 'test passed';
    } else { tested = null; $('#o-test-status').textContent = 'test failed: ' + r.error; $('#o-test-status').className = 'error'; }
  } catch (e) {
    tested = null; $('#o-test-status').textContent = e.message; $('#o-test-status').className = 'error';
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
