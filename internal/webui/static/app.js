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
  // An error reply is {"error": {"code", "message"}} and nothing else (or a
  // failed HTTP status): a result or a test reply has an error field of
  // its own, which is data to show, not a failed request.
  const e = data && data.error;
  if (!res.ok || (e && typeof e === 'object' && Object.keys(data).length === 1)) {
    const err = new Error((e && e.message) || (typeof e === 'string' ? e : 'request failed: HTTP ' + res.status));
    err.code = e && e.code; throw err;
  }
  return data;
}

// ---- times ----
// ago says how long ago (or in how long) the time iso is, in words; the
// exact time is in the title of the element timeEl makes.
function ago(iso, now = Date.now()) {
  const t = typeof iso === 'number' ? iso : Date.parse(iso);
  if (!iso || isNaN(t)) return iso || '';
  const d = Math.round((now - t) / 1000), a = Math.abs(d);
  if (a < 5) return 'just now';
  let n, unit;
  if (a < 60) { n = a; unit = 's'; }
  else if (a < 3600) { n = Math.round(a / 60); unit = 'min'; }
  else if (a < 86400) { n = Math.round(a / 3600); unit = 'h'; }
  else { n = Math.round(a / 86400); unit = n === 1 ? 'day' : 'days'; }
  return d > 0 ? n + ' ' + unit + ' ago' : 'in ' + n + ' ' + unit;
}
function timeEl(iso) {
  const t = typeof iso === 'number' ? iso : Date.parse(iso);
  if (!iso || isNaN(t)) return iso || '';
  const exact = new Date(t).toISOString();
  return el('time', {datetime: exact, title: new Date(t).toLocaleString() + ' (' + exact + ')'}, ago(t));
}
// Relative times go on counting while the page is open.
setInterval(() => {
  for (const e of document.querySelectorAll('time[datetime]')) e.textContent = ago(e.getAttribute('datetime'));
}, 15000);
const admin = (verb, body) => api('POST', 'admin/' + verb, body ?? {});

// ---- pages and login ----
const pages = ['login', 'tokens', 'logs', 'breakers', 'dead'];
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
  else if (page === 'health' || page === 'breakers') { show('breakers'); loadBreakers(); loadLimits(); }
  else if (page === 'dead') { show('dead'); loadDead(); }
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
      el('td', {}, t.fetched ? timeEl(t.fetched.fetched_at) : ''), el('td', {}, t.fetched ? timeEl(t.fetched.expires_at) : ''),
      el('td', {class: 'actions'}, el('button', {class: 'small edit', onclick: () => editToken(t.id)}, 'Edit'), ' ',
        t.type === 'http' ? el('button', {class: 'small refresh', title: 'Drop the fetched token: the next call fetches a new one',
          onclick: () => forgetToken(t.id)}, 'Refresh') : '', t.type === 'http' ? ' ' : '',
        isCode(t) && !t.oauth2.per_end_user ? el('button', {class: 'small connect', title: 'Make a single-use link that connects the token',
          onclick: () => showConnect(t)}, 'Connect') : '', isCode(t) && !t.oauth2.per_end_user ? ' ' : '',
        isCode(t) ? el('button', {class: 'small connections', onclick: () => showConnections(t)}, 'Connections') : '', isCode(t) ? ' ' : '',
        el('button', {class: 'small link used-by', onclick: () => showUsage(t.id)}, 'Used by'), ' ',
        el('button', {class: 'small delete danger', onclick: (ev) => confirmDelete(ev.target.closest('td'), t.id)}, 'Delete'))));
  }
}

// forgetToken drops an HTTP token's fetched token on every replica
// (tokens.forget): the next call fetches a new one.
async function forgetToken(id) {
  const st = $('#tokens-status');
  try {
    await admin('tokens.forget', {id});
    st.className = 'ok'; st.textContent = 'fetched token of ' + id + ' dropped: the next call fetches a new one';
  } catch (e) { st.className = 'error'; st.textContent = e.message; }
  loadTokens();
}

// showUsage shows where a token was used recently (tokens.usage): the
// newest log events of calls it signed, and the actions they belong to.
async function showUsage(id) {
  $('#usage-panel').hidden = false; $('#usage-token').textContent = id;
  $('#usage-error').textContent = ''; $('#usage-summary').textContent = 'loading…';
  $('#usage-table tbody').replaceChildren();
  let u;
  try { u = await admin('tokens.usage', {id}); } catch (e) { $('#usage-error').textContent = e.message; $('#usage-summary').textContent = ''; return; }
  const actions = {};
  for (const e of u.events) actions[e.action_id] = (actions[e.action_id] || 0) + 1;
  const names = Object.entries(actions).map(([a, n]) => a + ' (' + n + ')').join(', ');
  const where = u.complete ? 'in the logs' : 'in the newest ' + u.scanned + ' log events';
  $('#usage-summary').textContent = u.events.length ? 'Last ' + u.events.length + ' uses ' + where + ', by ' + names :
    'Not used ' + where + '.';
  $('#usage-table tbody').replaceChildren(...u.events.map((e) => el('tr', {'data-trigger': e.trigger_id || ''},
    el('td', {class: 'time'}, timeEl(e.time)), el('td', {}, e.action_id), el('td', {class: 'id'}, e.trigger_id || ''),
    el('td', {class: 'level-' + e.level}, e.event))));
  $('#usage-panel').scrollIntoView({block: 'nearest'});
}
$('#usage-close').addEventListener('click', () => { $('#usage-panel').hidden = true; });

const typeNames = {text: 'Text', http: 'HTTP Request', oauth2: 'OAuth 2.0'};
// isCode: an oauth2 token connected through the browser (grant
// authorization_code), workspace-wide or per end user.
const isCode = (t) => t.type === 'oauth2' && t.oauth2 && t.oauth2.grant === 'authorization_code';

// ---- Connect (a workspace-wide authorization_code token) ----
// tokens.connect makes a single-use link; the admin opens it in another
// tab and signs in at the provider. The panel follows the token's health
// (not connected, then ok) until the link expires or the panel closes.
let connectFor = null; // the token id of the panel
let connectTimer = 0;
function stopConnectPoll() { clearTimeout(connectTimer); connectTimer = 0; }
async function showConnect(t) {
  stopConnectPoll();
  connectFor = t.id;
  $('#connections-panel').hidden = true;
  $('#connect-panel').hidden = false; $('#connect-token').textContent = t.name || t.id;
  $('#connect-health').replaceChildren(healthBadge(t));
  await newConnectLink();
  $('#connect-panel').scrollIntoView({block: 'nearest'});
}
async function newConnectLink() {
  const id = connectFor;
  $('#connect-error').textContent = ''; $('#connect-link-row').hidden = true; $('#connect-done').hidden = true;
  let r;
  try { r = await admin('tokens.connect', {id}); } catch (e) { if (connectFor === id) $('#connect-error').textContent = e.message; return; }
  if (connectFor !== id) return;
  const until = Date.now() + r.expires_in_s * 1000;
  // Connected means a new connection: ok with another fetch than now (a
  // token connected before reconnects over its old connection).
  let since = '';
  try { const t = await admin('tokens.get', {id}); since = (t.fetched && t.fetched.fetched_at) || ''; } catch {}
  if (connectFor !== id) return;
  $('#connect-link').href = r.authorization_url;
  $('#connect-expiry').replaceChildren(timeEl(until));
  $('#connect-link-row').hidden = false;
  stopConnectPoll();
  pollConnect(id, until, since);
}
// pollConnect re-reads the token's health every few seconds while its
// link is valid: connecting happens in another tab.
function pollConnect(id, until, since) {
  connectTimer = setTimeout(async () => {
    if (connectFor !== id || $('#connect-panel').hidden || $('#tokens-page').hidden) return;
    let t;
    try { t = await admin('tokens.get', {id}); } catch (e) { $('#connect-error').textContent = e.message; }
    if (connectFor !== id) return;
    if (t) {
      $('#connect-health').replaceChildren(healthBadge(t));
      if (t.status === 'ok' && ((t.fetched && t.fetched.fetched_at) || '') !== since) {
        $('#connect-link-row').hidden = true; $('#connect-done').hidden = false; // the link is spent
        loadTokens();
        return;
      }
    }
    if (Date.now() < until) pollConnect(id, until, since);
    else { $('#connect-link-row').hidden = true; $('#connect-error').textContent = 'The link has expired: make a new one.'; }
  }, 3000);
}
$('#connect-new').addEventListener('click', () => newConnectLink());
$('#connect-close').addEventListener('click', () => { stopConnectPoll(); connectFor = null; $('#connect-panel').hidden = true; });

// ---- Connections (connections.list, connections.delete) ----
// A per_end_user token has one connection per end user; a workspace-wide
// one has its own (end user ""). Secrets come masked.
let connectionsOf = null; // the token shown
async function showConnections(t) {
  stopConnectPoll(); connectFor = null; $('#connect-panel').hidden = true;
  connectionsOf = t;
  $('#connections-panel').hidden = false; $('#connections-token').textContent = t.name || t.id;
  $('#connections-status').textContent = '';
  const perUser = !!t.oauth2.per_end_user;
  $('#connections-filter').hidden = !perUser; $('#c-end-user').value = '';
  $('#connections-hint').textContent = perUser ?
    'Each end user connects their own account through the link in the result of their trigger.' :
    'The workspace connection: Connect makes a link for an admin to open.';
  await loadConnections();
  $('#connections-panel').scrollIntoView({block: 'nearest'});
}
async function loadConnections() {
  const t = connectionsOf;
  if (!t) return;
  const req = {token_id: t.id};
  const user = $('#c-end-user').value.trim();
  if (t.oauth2.per_end_user && user) req.end_user_id = user;
  $('#connections-error').textContent = '';
  let r;
  try { r = await admin('connections.list', req); } catch (e) {
    if (connectionsOf === t) { $('#connections-error').textContent = e.message; $('#connections-table tbody').replaceChildren(); }
    return;
  }
  if (connectionsOf !== t) return; // another token was opened meanwhile
  const list = r.connections || [];
  $('#connections-table tbody').replaceChildren(...list.map((c) => connectionRow(t, c)));
  $('#connections-empty').hidden = list.length > 0;
  $('#connections-empty').textContent = req.end_user_id ? 'End user ' + req.end_user_id + ' has no connection.' :
    t.oauth2.per_end_user ? 'No end user has connected yet.' : 'Not connected.';
  $('#connections-more').hidden = !r.more;
  $('#connections-more').textContent = 'Showing the first ' + list.length + ' connections: filter by end user id to find another.';
}
function connectionRow(t, c) {
  const f = c.fetched || {};
  const who = c.end_user_id || '(workspace)';
  return el('tr', {'data-end-user': c.end_user_id || ''},
    el('td', {class: 'id'}, who), el('td', {class: 'status'}, healthBadge({type: 'oauth2', ...c})),
    el('td', {}, timeEl(c.status_changed_at)), el('td', {class: 'secret'}, f.token_preview || ''),
    el('td', {class: 'secret'}, f.refresh_token_preview || ''), el('td', {class: 'last-error'}, c.last_error || ''),
    el('td', {class: 'actions'}, el('button', {class: 'small delete danger', onclick: (ev) => confirmInRow(ev.target.closest('td'),
      'Delete the connection of ' + who + '?' + (t.oauth2.revoke_url ? ' It is revoked at the provider too.' : '') +
      (c.end_user_id ? ' Their next trigger asks them to connect again.' : ' Triggers using the token fail until it is connected again.'),
      () => deleteConnection(t, c.end_user_id))}, 'Delete')));
}
async function deleteConnection(t, endUser) {
  const req = {token_id: t.id};
  if (endUser) req.end_user_id = endUser;
  const r = await admin('connections.delete', req);
  const who = endUser ? 'end user ' + endUser : 'the workspace';
  const st = $('#connections-status');
  if (r.revoked) { st.className = 'ok'; st.textContent = 'Connection of ' + who + ' deleted and revoked at the provider.'; }
  else if (r.revoke_error) { st.className = 'error'; st.textContent = 'Connection of ' + who + ' deleted, but not revoked at the provider: ' + r.revoke_error; }
  else { st.className = 'ok'; st.textContent = 'Connection of ' + who + ' deleted (the token has no revoke URL: not revoked at the provider).'; }
  await loadConnections();
  if (!endUser) loadTokens();
}
$('#connections-filter').addEventListener('submit', (ev) => { ev.preventDefault(); $('#connections-status').textContent = ''; loadConnections(); });
$('#c-clear').addEventListener('click', () => { $('#c-end-user').value = ''; $('#connections-status').textContent = ''; loadConnections(); });
$('#connections-close').addEventListener('click', () => { connectionsOf = null; $('#connections-panel').hidden = true; });

// healthBadge shows the health of an oauth2 token; hovering it tells since
// when and the last error.
function healthBadge(t) {
  if (t.oauth2 && t.oauth2.per_end_user) return el('span', {class: 'hint per-user'}, 'per end user');
  if (!t.status) return t.type === 'oauth2' ? 'not connected' : '';
  let title = 'since ' + (t.status_changed_at ? t.status_changed_at + ' (' + ago(t.status_changed_at) + ')' : '?');
  if (t.last_error) title += '\nlast error: ' + t.last_error;
  return el('span', {class: 'badge health-' + t.status, title}, t.status.replaceAll('_', ' '));
}

let tested = null; // the request JSON that last passed its test
// secretFields are the request.secret_fields of the HTTP token being
// edited: the form has no field for them, and an edit keeps them, so the
// values they mark stay masked.
let secretFields = [];

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
$('#add-authorize-param').addEventListener('click', () => kvRow($('#o-authorize-params')));

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
  const perUser = o.grant === 'authorization_code' && $('#o-per-end-user').checked;
  // A per_end_user token has no refresh token of its own: end users connect.
  if (o.grant !== 'client_credentials' && !perUser && $('#o-refresh-token').value.trim()) o.refresh_token = $('#o-refresh-token').value.trim();
  if (o.grant === 'authorization_code') {
    if ($('#o-authorize-url').value.trim()) o.authorize_url = $('#o-authorize-url').value.trim();
    if (perUser) o.per_end_user = true;
    const params = kvRead($('#o-authorize-params'));
    if (Object.keys(params).length) o.authorize_params = params;
  }
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
  if (secretFields.length) t.request.secret_fields = secretFields;
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
  authorization_code: 'Register ACTIONS_PUBLIC_URL/oauth/callback as a redirect URI at the provider. Save, then Connect in the token list gives a link to open (or paste a refresh token; without either the token is saved "not connected").',
  per_end_user: 'Register ACTIONS_PUBLIC_URL/oauth/callback as a redirect URI at the provider. Each end user connects their own account: a trigger naming an end user without a connection gets status authorization_required and a link for them. Connections in the token list shows who is connected.',
};
// grantFields shows the fields of the chosen grant: a per_end_user token
// takes no refresh token (its end users connect).
function grantFields() {
  const grant = $('#o-grant').value, code = grant === 'authorization_code';
  const perUser = code && $('#o-per-end-user').checked;
  $('#o-refresh-row').hidden = grant === 'client_credentials' || perUser;
  $('#o-authorize-row').hidden = !code;
  $('#o-code-fields').hidden = !code;
  $('#o-grant-hint').textContent = grantHints[perUser ? 'per_end_user' : grant] || '';
  changed();
}
$('#o-grant').addEventListener('change', grantFields);
$('#o-per-end-user').addEventListener('change', grantFields);

function openForm(title) {
  $('#token-form-title').textContent = title;
  $('#token-form').hidden = false; $('#token-error').textContent = ''; $('#test-result').hidden = true;
  $('#test-status').textContent = ''; $('#o-test-result').hidden = true; $('#o-test-status').textContent = '';
  $('#o-refresh-token').placeholder = ''; tested = null;
}
$('#new-token').addEventListener('click', () => {
  $('#token-form').reset(); $('#t-id').readOnly = false;
  secretFields = [];
  $('#t-headers').replaceChildren(); $('#t-params').replaceChildren(); kvRow($('#t-params'));
  $('#o-extra').replaceChildren(); $('#o-authorize-params').replaceChildren();
  $('#t-type').dispatchEvent(new Event('change')); $('#o-grant').dispatchEvent(new Event('change'));
  openForm('New token'); changed();
  $('#token-form').scrollIntoView({block: 'start'}); $('#t-type').focus({preventScroll: true});
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
  secretFields = (t.request && t.request.secret_fields) || [];
  if (t.request) {
    $('#t-method').value = t.request.method; $('#t-url').value = t.request.url; $('#t-encoding').value = t.request.params_encoding || '';
    for (const [k, v] of Object.entries(t.request.headers || {})) kvRow($('#t-headers'), k, v);
    for (const [k, v] of Object.entries(t.request.params || {})) kvRow($('#t-params'), k, v);
    $('#t-token-path').value = t.token_path || ''; $('#t-expires-path').value = t.expires_in_path || '';
  }
  $('#o-extra').replaceChildren(); $('#o-authorize-params').replaceChildren();
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
    for (const [k, v] of Object.entries(o.authorize_params || {})) kvRow($('#o-authorize-params'), k, v);
    $('#o-per-end-user').checked = !!o.per_end_user;
  }
  $('#t-type').dispatchEvent(new Event('change')); $('#o-grant').dispatchEvent(new Event('change'));
  $('#token-form').scrollIntoView({block: 'start'}); $('#t-name').focus({preventScroll: true});
}

// confirmInRow asks in the row itself (no window.confirm, which a page
// cannot style and a test cannot see) before running del; an error of del
// is shown in the row.
function confirmInRow(cell, question, del) {
  const before = [...cell.childNodes];
  const error = el('span', {class: 'error'});
  cell.replaceChildren(el('span', {class: 'confirm'}, question + ' '),
    el('button', {class: 'small danger confirm-delete', onclick: async () => {
      try { await del(); } catch (e) { error.textContent = e.message; }
    }}, 'Delete'), ' ',
    el('button', {class: 'small link cancel-delete', onclick: () => cell.replaceChildren(...before)}, 'Cancel'), error);
  cell.querySelector('.cancel-delete').focus();
}
function confirmDelete(cell, id) {
  confirmInRow(cell, 'Delete ' + id + '? Triggers using it will fail.', async () => { await admin('tokens.delete', {id}); loadTokens(); });
}

$('#test-request').addEventListener('click', async () => {
  const t = readToken();
  $('#test-status').textContent = 'testing…'; $('#test-status').className = '';
  $('#test-result').hidden = true;
  try {
    const r = await admin('tokens.test', t);
    showTestResponse('#test', r, 'token ');
    if (r.ok && !r.token_preview) {
      tested = null; $('#test-status').textContent = 'the endpoint answered: set the token location from the response below and test again'; $('#test-status').className = '';
    } else if (r.ok) { tested = testKey(t); $('#test-status').textContent = 'test passed'; $('#test-status').className = 'ok'; }
    else { tested = null; $('#test-status').textContent = 'test failed: ' + r.error; $('#test-status').className = 'error'; }
  } catch (e) {
    tested = null; $('#test-status').textContent = e.message; $('#test-status').className = 'error';
  }
  changed();
});

// showTestResponse shows what the auth endpoint answered a test (status,
// headers, body, secrets masked), passed or failed; a test that got no
// answer (network error, invalid settings) shows only its error.
function showTestResponse(p, r, tokenWord) {
  if (!(r.http_status || r.token_preview || r.response)) return;
  $(p + '-result').hidden = false;
  $(p + '-http-status').textContent = r.http_status || '-';
  $(p + '-token-preview').textContent = r.token_preview ? tokenWord + r.token_preview + (r.expires_in ? ', expires in ' + r.expires_in + ' s' : '') : '';
  const headers = Object.entries((r.response && r.response.headers) || {}).map(([k, v]) => k + ': ' + v).join('\n');
  $(p + '-headers').textContent = headers; $(p + '-headers').hidden = !headers;
  let body = r.response ? r.response.body : '';
  try { body = JSON.stringify(JSON.parse(body), null, 2); } catch {}
  if (r.response && r.response.truncated) body += '\n… (truncated)';
  $(p + '-body').textContent = body; $(p + '-body').hidden = !body;
}

// The test of an oauth2 token (tokens.test): client_credentials fetches a
// token; a grant that works from a refresh token is only checked, since a
// refresh would spend the refresh token (the save spends it, once).
$('#o-test-request').addEventListener('click', async () => {
  const t = readToken();
  $('#o-test-status').textContent = 'testing…'; $('#o-test-status').className = '';
  $('#o-test-result').hidden = true;
  try {
    const r = await admin('tokens.test', t);
    showTestResponse('#o-test', r, 'access token ');
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
// The server filters and pages (GET /ui/api/logs); the page keeps the
// cursor of the page shown: {} is the newest page, {before} or {after} an
// older or newer one. Live events are added only to the newest page.
let source = null;
let logCursor = {};
let logCursors = {older: 0, newer: 0};
let logLoads = 0; // a newer load of the page makes an older one drop its answer
let logGrown = false; // live events were added to the newest page
function stopFollow() { if (source) { source.close(); source = null; } }
function logRow(e) {
  const tr = el('tr', {class: e.trigger_id ? 'clickable' : '', 'data-event': e.event, 'data-trigger': e.trigger_id || ''},
    el('td', {class: 'time'}, timeEl(e.time)), el('td', {class: 'level-' + e.level}, e.level), el('td', {}, e.event),
    el('td', {}, e.action_id), el('td', {class: 'id'}, e.trigger_id || ''), el('td', {}, e.message));
  if (e.trigger_id) tr.addEventListener('click', () => showResult(e.action_id, e.trigger_id));
  return tr;
}
// logQuery is the filter of the form as query parameters of /ui/api/logs.
function logQuery() {
  const q = new URLSearchParams();
  for (const [id, name] of [['#f-action', 'action'], ['#f-level', 'level'], ['#f-event', 'event'], ['#f-trigger', 'trigger'],
    ['#f-token', 'token'], ['#f-status', 'status'], ['#f-context', 'context']]) {
    const v = $(id).value.trim(); if (v) q.set(name, v);
  }
  for (const [id, name] of [['#f-from', 'from'], ['#f-to', 'to']]) {
    const v = $(id).value; // datetime-local, in the browser's time zone, to the minute or second
    if (!v || isNaN(Date.parse(v))) continue;
    // "To" takes in the whole of its last minute or second.
    const end = name !== 'to' ? 0 : v.length <= 16 ? 59999 : v.includes('.') ? 0 : 999;
    q.set(name, new Date(Date.parse(v) + end).toISOString());
  }
  return q;
}
// matches applies the filter to a live event, as the server would.
function matches(e, q) {
  const has = (v, want) => v !== null && typeof v === 'object' ? Object.values(v).some((c) => has(c, want)) : v !== undefined && v !== null && String(v) === want;
  const statusEvents = {succeeded: ['action_succeeded'], failed: ['action_failed', 'token_refresh_failed'], rejected: ['trigger_rejected'], breaker_open: ['breaker_rejected']};
  const st = q.get('status');
  if (st && !(statusEvents[st] ? statusEvents[st].includes(e.event) : e.details && String(e.details.http_status) === st)) return false;
  const t = Date.parse(e.time);
  return (!q.get('action') || e.action_id === q.get('action')) && (!q.get('level') || e.level === q.get('level')) &&
    (!q.get('event') || e.event === q.get('event')) && (!q.get('trigger') || e.trigger_id === q.get('trigger')) &&
    (!q.get('token') || e.token_id === q.get('token')) && (!q.get('context') || has(e.context, q.get('context'))) &&
    (!q.get('from') || t >= Date.parse(q.get('from'))) && (!q.get('to') || t <= Date.parse(q.get('to')));
}
async function loadLogs(cursor = {}) {
  stopFollow();
  logCursor = cursor;
  const q = logQuery();
  $('#f-export').href = '/ui/api/logs?' + new URLSearchParams([...q, ['format', 'jsonl']]);
  const pq = new URLSearchParams(q);
  if (cursor.before) pq.set('before', cursor.before);
  if (cursor.after) pq.set('after', cursor.after);
  $('#logs-error').textContent = '';
  const load = ++logLoads;
  let page;
  try { page = await api('GET', 'logs?' + pq); } catch (e) { if (load === logLoads) $('#logs-error').textContent = e.message; return; }
  if (load !== logLoads) return;
  const newest = !page.newer;
  if (cursor.after && page.events.length === 0) return loadLogs(); // nothing newer: back to the newest page
  logCursors = {older: page.older || 0, newer: page.newer || 0}; logGrown = false;
  $('#logs-table tbody').replaceChildren(...page.events.map(logRow));
  $('#logs-empty').hidden = page.events.length > 0;
  $('#logs-older').disabled = !page.older; $('#logs-newer').disabled = newest;
  $('#logs-page-info').textContent = (newest ? 'newest ' : '') + page.events.length + ' events' +
    (page.events.length ? ', ' + ago(page.events[page.events.length - 1].time) + ' to ' + ago(page.events[0].time) : '');
  if ($('#f-live').checked && newest) {
    const fq = new URLSearchParams(); if (q.get('action')) fq.set('action', q.get('action'));
    source = new EventSource('/ui/api/logs/follow?' + fq);
    source.onmessage = (m) => {
      const e = JSON.parse(m.data); if (!matches(e, q)) return;
      const body = $('#logs-table tbody');
      body.prepend(logRow(e)); $('#logs-empty').hidden = true;
      while (body.children.length > 100) { body.lastChild.remove(); logGrown = true; } // the rest is on the older pages
      if (logGrown) $('#logs-older').disabled = false;
    };
  }
}
for (const id of ['#f-action', '#f-level', '#f-event', '#f-trigger', '#f-token', '#f-status', '#f-context', '#f-from', '#f-to', '#f-live']) {
  $(id).addEventListener('change', () => loadLogs());
}
$('#logs-form').addEventListener('submit', (ev) => { ev.preventDefault(); loadLogs(); });
$('#logs-older').addEventListener('click', async () => {
  // The cursor of a page grown by live events is stale: the page after
  // the newest one is found again from a fresh newest page.
  if (logGrown) await loadLogs();
  if (logCursors.older) loadLogs({before: logCursors.older});
});
$('#logs-newer').addEventListener('click', () => loadLogs({after: logCursors.newer}));
$('#logs-latest').addEventListener('click', () => loadLogs());

// showResult shows a trigger's result: status, HTTP status, attempts, the
// error code and message of a failed or rejected trigger, and the action's
// response when there was one.
async function showResult(action, id) {
  $('#result-panel').hidden = false; $('#rp-trigger').textContent = id; $('#rp-error').textContent = '';
  offerRerun(id, action);
  for (const f of ['#rp-status', '#rp-code', '#rp-message', '#rp-http', '#rp-attempts', '#rp-refreshed', '#rp-finished', '#rp-json',
    '#rp-end-user', '#rp-link-sent']) $(f).replaceChildren();
  $('#rp-fields').hidden = true; $('#rp-response').hidden = true; $('#rp-end-user-row').hidden = true; $('#rp-link-row').hidden = true;
  let r;
  try { r = await api('GET', 'result?' + new URLSearchParams({action, trigger_id: id})); }
  catch (e) { $('#rp-error').textContent = e.message; return; }
  $('#rp-status').className = 'status-' + r.status;
  $('#rp-error-row').hidden = !r.error;
  if (r.error) { $('#rp-code').textContent = r.error.code || ''; $('#rp-message').textContent = r.error.message || ''; }
  $('#rp-http').textContent = r.http_status ? String(r.http_status) : '-';
  $('#rp-attempts').textContent = String(r.attempts ?? 0); $('#rp-refreshed').textContent = String(!!r.token_refreshed);
  $('#rp-finished').replaceChildren(timeEl(r.finished_at), r.duration_ms !== undefined ? ' (' + r.duration_ms + ' ms)' : '');
  if (r.response) {
    $('#rp-response').hidden = false;
    $('#rp-response-headers').textContent = Object.entries(r.response.headers || {}).map(([k, v]) => k + ': ' + v).join('\n');
    let body = r.response.body || '';
    try { body = JSON.stringify(JSON.parse(body), null, 2); } catch {}
    $('#rp-response-body').textContent = body + (r.response.truncated ? '\n… (truncated)' : '');
  }
  // The connect link of an authorization_required result is a single-use
  // capability of the end user: whoever opens it first connects their own
  // account as them. It is for the bot to send, never shown here.
  const shown = {...r};
  if (shown.authorization_url) shown.authorization_url = '(single-use link for the end user, not shown)';
  if (r.end_user_id) { $('#rp-end-user-row').hidden = false; $('#rp-end-user').textContent = r.end_user_id; }
  if (r.status === 'authorization_required') {
    $('#rp-link-row').hidden = false;
    $('#rp-link-sent').textContent = 'link sent to end user ' + (r.end_user_id || '?') + ' (single use, not shown here)';
  }
  $('#rp-json').textContent = JSON.stringify(shown, null, 2);
  $('#rp-status').textContent = r.status || '?'; // last: tests wait for it
  $('#rp-fields').hidden = false;
  $('#result-panel').scrollIntoView({block: 'nearest'});
}

// offerRerun offers "Re-run as test" for the trigger shown: a dead letter
// is re-run from the dead-letter stream, another from the copies of recent
// triggers the service keeps with ACTIONS_KEEP_TRIGGERS (a finished trigger
// is gone from the triggers stream, a work queue); the server says when it
// has no copy.
let rerunSeq = 0, rerunAction = '', rerunID = '';
async function offerRerun(id, action) {
  rerunSeq = 0; rerunAction = action || ''; rerunID = id;
  $('#rp-rerun').hidden = true; $('#rp-rerun-hint').hidden = true; $('#rp-rerun-status').textContent = '';
  let list = [];
  try { ({dead_letters: list} = await admin('dead.list')); } catch { list = []; }
  if ($('#rp-trigger').textContent !== id) return; // another trigger was opened meanwhile
  const d = list.filter((d) => d.trigger_id === id).pop();
  if (d) { rerunSeq = d.seq; rerunAction = d.action_id; }
  $('#rp-rerun').hidden = !rerunAction;
  $('#rp-rerun-hint').hidden = !!d || !rerunAction;
}
async function rerun(seq, status) {
  try {
    const r = await admin('dead.rerun', {seq});
    status.className = 'ok'; status.textContent = 'test run ' + r.id + ' sent';
  } catch (e) { status.className = 'error'; status.textContent = e.message; }
}
async function rerunLogged(action, id, status) {
  try {
    const r = await admin('triggers.rerun', {action_id: action, trigger_id: id});
    status.className = 'ok'; status.textContent = 'test run ' + r.id + ' sent';
  } catch (e) { status.className = 'error'; status.textContent = e.message; }
}
$('#rp-rerun').addEventListener('click', () => rerunSeq ? rerun(rerunSeq, $('#rp-rerun-status'))
  : rerunLogged(rerunAction, rerunID, $('#rp-rerun-status')));

$('#tt-send').addEventListener('click', async () => {
  const t = {action_id: $('#tt-action').value.trim(), token_id: $('#tt-token').value.trim() || undefined,
    request: {method: $('#tt-method').value, url: $('#tt-url').value.trim(), body: $('#tt-body').value || undefined}};
  try { const r = await api('POST', 'trigger', t); $('#tt-status').textContent = 'sent ' + r.id; $('#tt-status').className = 'ok'; }
  catch (e) { $('#tt-status').textContent = e.message; $('#tt-status').className = 'error'; }
});

// ---- Health: breakers and limits ----
// An open breaker stays open until opened_at_ms + cooldown_ms; then one
// probe is let through (half open).
async function loadBreakers() {
  let breakers;
  try { ({breakers} = await admin('breakers.list')); $('#breakers-error').textContent = ''; }
  catch (e) { $('#breakers-error').textContent = e.message; return; }
  $('#breakers-empty').hidden = breakers.length > 0;
  $('#breakers-table tbody').replaceChildren(...breakers.map((b) => el('tr', {'data-action': b.action_id},
    el('td', {}, b.action_id), el('td', {class: 'state-' + b.state}, b.state.replaceAll('_', ' ')), el('td', {}, b.reason || ''),
    el('td', {class: 'until'}, b.state === 'open' && b.opened_at_ms ? timeEl(b.opened_at_ms + (b.cooldown_ms || 0)) : ''),
    el('td', {}, timeEl(b.updated_at)),
    el('td', {}, b.state === 'closed' ? '' : el('button', {class: 'small reset', onclick: async () => {
      await admin('breakers.reset', {action_id: b.action_id}); loadBreakers();
    }}, 'Reset')))));
}

// Limits of an action (limits.*): 0 is no limit; a burst left at 0 is
// filled by the server with the rate rounded up.
const noLimit = (v) => v ? String(v) : 'no limit';
async function loadLimits() {
  let limits;
  try { ({limits} = await admin('limits.list')); } catch (e) { $('#limits-error').textContent = e.message; return; }
  $('#limits-empty').hidden = limits.length > 0;
  $('#limits-table tbody').replaceChildren(...limits.map((l) => el('tr', {'data-action': l.action_id},
    el('td', {}, l.action_id), el('td', {class: 'rate'}, noLimit(l.rate)), el('td', {class: 'burst'}, l.rate ? String(l.burst) : '-'),
    el('td', {class: 'max'}, noLimit(l.max_concurrent)), el('td', {class: 'updated'}, timeEl(l.updated_at)),
    el('td', {class: 'actions'}, el('button', {class: 'small edit', onclick: () => editLimits(l)}, 'Edit'), ' ',
      el('button', {class: 'small delete danger', onclick: (ev) => confirmInRow(ev.target.closest('td'),
        'Delete the limits of ' + l.action_id + '? Its calls will no longer be limited.', async () => {
          await admin('limits.delete', {action_id: l.action_id}); loadLimits();
        })}, 'Delete')))));
}
function editLimits(l) {
  $('#limits-form-title').textContent = 'Edit the limits of ' + l.action_id;
  $('#l-action').value = l.action_id; $('#l-rate').value = l.rate ? String(l.rate) : '';
  $('#l-burst').value = l.rate && l.burst ? String(l.burst) : ''; $('#l-max').value = l.max_concurrent ? String(l.max_concurrent) : '';
  $('#limits-error').textContent = ''; $('#limits-status').textContent = '';
  $('#limits-form').scrollIntoView({block: 'start'}); $('#l-rate').focus({preventScroll: true});
}
function clearLimitsForm() {
  $('#limits-form').reset(); $('#limits-form-title').textContent = 'Set limits';
  $('#limits-error').textContent = '';
}
$('#l-clear').addEventListener('click', () => { clearLimitsForm(); $('#limits-status').textContent = ''; });
// limitField reads a number input: empty is 0 (no limit); what the browser
// cannot read as a number is refused here, the rest by the server.
function limitField(sel, name) {
  const input = $(sel);
  if (input.validity.badInput) throw new Error(name + ' must be a number');
  return input.value.trim() === '' ? 0 : Number(input.value);
}
$('#limits-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('#limits-error').textContent = ''; $('#limits-status').textContent = '';
  try {
    const action_id = $('#l-action').value.trim();
    if (!action_id) throw new Error('give the action id');
    const l = await admin('limits.set', {action_id, rate: limitField('#l-rate', 'rate'), burst: limitField('#l-burst', 'burst'),
      max_concurrent: limitField('#l-max', 'max concurrent')});
    clearLimitsForm();
    $('#limits-status').textContent = 'limits of ' + l.action_id + ' saved';
    loadLimits();
  } catch (e) { $('#limits-error').textContent = e.message; }
});

// ---- Dead letters ----
async function loadDead() {
  let list;
  try { ({dead_letters: list} = await admin('dead.list')); $('#dead-error').textContent = ''; }
  catch (e) { $('#dead-error').textContent = e.message; return; }
  $('#dead-empty').hidden = list.length > 0;
  $('#dead-table tbody').replaceChildren(...list.map((d) => el('tr', {'data-seq': String(d.seq), 'data-trigger': d.trigger_id || ''},
    el('td', {}, String(d.seq)), el('td', {}, timeEl(d.time)), el('td', {}, d.action_id || ''), el('td', {class: 'id'}, d.trigger_id || ''),
    el('td', {}, d.reason), el('td', {class: 'actions'},
      el('button', {class: 'small replay', title: 'Publish it again as it was (a live run) and remove it', onclick: async () => {
        try {
          await admin('dead.replay', {seq: d.seq});
          $('#dead-status').className = 'ok'; $('#dead-status').textContent = 'replayed ' + d.seq + ': trigger ' + (d.trigger_id || '?');
        } catch (e) { $('#dead-status').className = 'error'; $('#dead-status').textContent = e.message; }
        loadDead();
      }}, 'Replay'), ' ',
      el('button', {class: 'small rerun', title: 'Send a copy with source test and a new id; the dead letter stays',
        onclick: () => rerun(d.seq, $('#dead-status'))}, 'Re-run as test')))));
}

route();
