// The dashboard's page: fed by the agent's event stream (/api/feed, server-sent events), it
// draws the files in a virtual list (only the rows in view exist), each with a strip of the
// file showing the bytes on disk, where its download stands and where programs wait.
// Actions go to /api/call as control-API calls. No library, no build step.
/* global EventSource, requestAnimationFrame */
'use strict';

const ROW_HEIGHT = 64;
/** Rows drawn above and below the visible ones, so a quick scroll shows no gap. */
const OVERSCAN = 8;

const files = new Map(); // name -> file, as the feed sends it
let waiters = [];
let agent = null;
/** The list's items in order: folder headings and files. Rebuilt when files come or go. */
let items = [];
let itemsStale = true;
let focusIndex = 0;
let drawQueued = false;

const $ = id => document.getElementById(id);
const list = $('list');
const spacer = $('spacer');

// --- words and numbers -------------------------------------------------------------------

function bytes (n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  do { v /= 1024; i++; } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(1)} ${units[i]}`;
}
const rate = n => (n > 0 ? `${bytes(n)}/s` : '-');
function duration (seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}
const percent = f => (f.size === 0 ? '100%' : `${Math.floor((f.presentBytes / f.size) * 100)}%`);
const folderOf = name => (name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '');
const baseName = name => name.slice(name.lastIndexOf('/') + 1);

// --- the feed ----------------------------------------------------------------------------

function apply (update) {
  if (update.full) {
    files.clear();
    itemsStale = true;
  }
  if (update.agent) agent = update.agent;
  if (update.waiters) waiters = update.waiters;
  for (const f of update.files ?? []) {
    if (!files.has(f.name)) itemsStale = true;
    files.set(f.name, f);
  }
  for (const name of update.removed ?? []) {
    files.delete(name);
    itemsStale = true;
  }
  queueDraw();
}

function connect () {
  const feed = new EventSource('/api/feed');
  feed.onopen = () => { $('connection').textContent = 'live'; $('connection').className = ''; };
  feed.onmessage = e => apply(JSON.parse(e.data));
  feed.onerror = () => {
    // EventSource reconnects by itself; the next message is a full picture.
    $('connection').textContent = 'connection to the agent lost: retrying…';
    $('connection').className = 'lost';
  };
}

async function call (method, params) {
  const res = await fetch('/api/call', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ method, params }),
  });
  if (!res.ok) throw new Error((await res.text()).trim());
  const answer = await res.json();
  if (answer.error) throw new Error(answer.error.message);
  return answer.result;
}

// --- drawing -----------------------------------------------------------------------------

function queueDraw () {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => { drawQueued = false; draw(); });
}

function rebuildItems () {
  const names = [...files.keys()].sort((a, b) => {
    const fa = folderOf(a); const fb = folderOf(b);
    return fa === fb ? a.localeCompare(b) : fa.localeCompare(fb);
  });
  items = [];
  let folder = null;
  for (const name of names) {
    const f = folderOf(name);
    if (f !== folder && f !== '') items.push({ folder: f });
    folder = f;
    items.push({ file: name });
  }
  itemsStale = false;
  spacer.style.height = `${items.length * ROW_HEIGHT}px`;
  focusIndex = Math.min(focusIndex, Math.max(0, items.length - 1));
}

function draw () {
  if (itemsStale) rebuildItems();
  drawAgent();
  drawSummary();
  const first = Math.max(0, Math.floor(list.scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(items.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW_HEIGHT) + OVERSCAN);
  const keep = new Set();
  for (let i = first; i < last; i++) keep.add(i);
  for (const row of [...list.querySelectorAll('.row')]) {
    if (!keep.has(Number(row.dataset.index))) row.remove();
  }
  const byIndex = new Map([...list.querySelectorAll('.row')].map(r => [Number(r.dataset.index), r]));
  const waitersByFile = new Map();
  for (const w of waiters) {
    if (!waitersByFile.has(w.file)) waitersByFile.set(w.file, []);
    waitersByFile.get(w.file).push(w);
  }
  for (let i = first; i < last; i++) {
    const item = items[i];
    let row = byIndex.get(i);
    const key = item.folder !== undefined ? `folder:${item.folder}` : `file:${item.file}`;
    if (row === undefined || row.dataset.key !== key) {
      row?.remove();
      row = item.folder !== undefined ? folderRow(item.folder) : fileRow(item.file);
      row.dataset.index = String(i);
      row.dataset.key = key;
      row.style.top = `${i * ROW_HEIGHT}px`;
      list.appendChild(row);
    }
    if (item.file !== undefined) updateFileRow(row, files.get(item.file), waitersByFile.get(item.file) ?? []);
    row.classList.toggle('focused', i === focusIndex && document.activeElement === list);
  }
}

function folderRow (folder) {
  const row = document.createElement('div');
  row.className = 'row folder';
  row.setAttribute('role', 'listitem');
  row.textContent = `${folder}/`;
  return row;
}

const ACTIONS = [
  ['cancel', 'files.cancel', f => ['downloading', 'stalled', 'idle'].includes(f.state)],
  ['pause', 'files.pause', f => !f.paused && f.presentBytes < f.size],
  ['resume', 'files.resume', f => f.paused || ['cancelled', 'error', 'stalled'].includes(f.state)],
  ['pin', 'files.pin', f => !f.pinned],
  ['unpin', 'files.unpin', f => f.pinned],
  ['prefetch', 'files.prefetch', f => f.presentBytes < f.size],
  ['verify', 'files.verify', f => f.verification !== null && f.presentBytes === f.size],
  ['evict', 'cache.evict', f => f.presentBytes > 0],
  ['remove', 'files.remove', () => true],
];

function fileRow (name) {
  const row = document.createElement('div');
  row.className = 'row file';
  row.setAttribute('role', 'listitem');
  row.dataset.name = name;
  const title = document.createElement('div');
  title.className = 'name';
  title.textContent = baseName(name);
  title.title = name;
  const facts = document.createElement('div');
  facts.className = 'facts';
  const strip = document.createElement('div');
  strip.className = 'strip';
  strip.setAttribute('role', 'img');
  const actions = document.createElement('div');
  actions.className = 'actions';
  for (const [label, method] of ACTIONS) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.dataset.action = label;
    b.setAttribute('aria-label', `${label} ${name}`);
    b.addEventListener('click', () => act(label, method, name));
    actions.appendChild(b);
  }
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.textContent = 'copy path';
  copy.dataset.action = 'copy';
  copy.setAttribute('aria-label', `copy the path of ${name} in the mount`);
  copy.addEventListener('click', () => copyPath(name, copy));
  actions.appendChild(copy);
  row.append(title, strip, actions, facts);
  return row;
}

function updateFileRow (row, f, fileWaiters) {
  if (f === undefined) return;
  row.dataset.present = String(f.presentBytes);
  row.dataset.state = f.state;
  row.dataset.waiters = String(fileWaiters.length);
  const facts = row.querySelector('.facts');
  const stateText = f.state + (f.verification?.state === 'verified' ? ', verified' : '') + (f.pinned ? ', pinned' : '') +
    (f.paused ? ', paused (reads still served)' : '');
  const eta = f.state === 'downloading' ? ` · ETA ${duration(f.etaSeconds)}` : '';
  facts.innerHTML = '';
  const state = document.createElement('span');
  state.className = `state-${f.state}`;
  state.textContent = stateText;
  facts.append(`${bytes(f.size)} · ${percent(f)} · `, state,
    ` · ${rate(f.bytesPerSecond)}${eta} · ${f.openHandles} open · ${fileWaiters.length} waiting` +
    (f.lastError ? ` · ${f.lastError}` : ''));
  facts.title = facts.textContent;
  const strip = row.querySelector('.strip');
  strip.textContent = '';
  strip.setAttribute('aria-label', `${baseName(f.name)}: ${percent(f)} on disk, ${fileWaiters.length} waiting`);
  const at = offset => `${f.size === 0 ? 0 : (offset / f.size) * 100}%`;
  for (const [start, end] of f.ranges) {
    const seg = document.createElement('div');
    seg.className = 'present';
    seg.style.left = at(start);
    seg.style.width = at(end - start);
    strip.appendChild(seg);
  }
  if (f.downloadPosition !== null) {
    const d = document.createElement('div');
    d.className = 'download';
    d.style.left = at(f.downloadPosition);
    d.title = `a download, at ${bytes(f.downloadPosition)}`;
    strip.appendChild(d);
  }
  for (const w of fileWaiters) {
    const m = document.createElement('div');
    m.className = 'waiter';
    m.style.left = at(w.offset);
    m.dataset.pid = String(w.pid ?? '');
    m.title = `${w.pid !== null ? `pid ${w.pid}` : 'a program'}${w.command ? ` (${w.command})` : ''} waits for ${bytes(w.length)} at ` +
      `${bytes(w.offset)}, for ${duration(w.waitedMs / 1000)}; it fails in ${duration(w.deadlineInMs / 1000)}`;
    strip.appendChild(m);
  }
  for (const b of row.querySelectorAll('.actions button[data-action]')) {
    const spec = ACTIONS.find(a => a[0] === b.dataset.action);
    if (spec !== undefined) b.hidden = !spec[2](f);
  }
}

function drawAgent () {
  if (agent === null) return;
  const facts = [
    ['mount', `${agent.mount}${agent.mounted ? '' : ' (not mounted)'}`],
    ['cache', `${bytes(agent.cache.usedBytes)} of ${bytes(agent.cache.maxBytes)}`],
    ['connections', `${agent.connections.active} of ${agent.connections.max}`],
    ['waiting reads', String(agent.waiters)],
    ['keeping awake', agent.sleepInhibitor === 'held' ? 'yes' : agent.sleepInhibitor === 'off' ? 'off' : 'no'],
    ['version', agent.version],
  ];
  if (agent.limits.total !== null) facts.push(['download cap', rate(agent.limits.total)]);
  if (agent.limits.background !== null) facts.push(['background cap', rate(agent.limits.background)]);
  if (agent.proxy) facts.push(['proxy', agent.proxy]);
  const dl = $('agent');
  dl.textContent = '';
  for (const [k, v] of facts) {
    const div = document.createElement('div');
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    div.append(dt, dd);
    dl.appendChild(div);
  }
  const problems = [...agent.problems];
  for (const f of files.values()) if (f.lastError && problems.length < 8) problems.push(`${f.name}: ${f.lastError}`);
  const box = $('problems');
  box.hidden = problems.length === 0;
  box.textContent = '';
  for (const p of problems) {
    const line = document.createElement('p');
    line.textContent = p;
    box.appendChild(line);
  }
}

function drawSummary () {
  let downloading = 0;
  for (const f of files.values()) if (f.state === 'downloading') downloading++;
  $('summary').textContent = `${files.size} files · ${downloading} downloading · ${waiters.length} reads waiting`;
}

// --- actions -----------------------------------------------------------------------------

async function act (label, method, name) {
  if ((label === 'remove' || label === 'evict') && !window.confirm(`${label} ${name}?`)) return;
  try {
    await call(method, { file: name });
  } catch (err) {
    window.alert(`${label} ${name}: ${err.message}`);
  }
}

async function copyPath (name, button) {
  const path = `${agent?.mount ?? ''}/${name}`;
  try {
    await navigator.clipboard.writeText(path);
    button.textContent = 'copied';
  } catch {
    window.prompt('the path in the mount', path);
  }
  setTimeout(() => { button.textContent = 'copy path'; }, 1500);
}

$('add').addEventListener('submit', async e => {
  e.preventDefault();
  const url = $('add-url').value.trim();
  const name = $('add-name').value.trim();
  const out = $('add-result');
  out.textContent = 'adding…';
  try {
    const r = await call('files.add', name === '' ? { url } : { url, name });
    out.textContent = `added ${r.file.name}`;
    $('add-url').value = '';
    $('add-name').value = '';
  } catch (err) {
    out.textContent = err.message;
  }
});

// --- keyboard: the list is one tab stop; arrows move between rows, Tab into a row's buttons --

list.addEventListener('keydown', e => {
  const move = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10, Home: -Infinity, End: Infinity }[e.key];
  if (move === undefined || e.target !== list) return;
  e.preventDefault();
  focusIndex = Math.max(0, Math.min(items.length - 1, focusIndex + move));
  const top = focusIndex * ROW_HEIGHT;
  if (top < list.scrollTop) list.scrollTop = top;
  else if (top + ROW_HEIGHT > list.scrollTop + list.clientHeight) list.scrollTop = top + ROW_HEIGHT - list.clientHeight;
  queueDraw();
});
list.addEventListener('keydown', e => {
  if (e.key !== 'Enter' || e.target !== list) return;
  list.querySelector(`.row[data-index="${focusIndex}"] button:not([hidden])`)?.focus();
});
list.addEventListener('focus', queueDraw);
list.addEventListener('blur', queueDraw);
list.addEventListener('scroll', queueDraw, { passive: true });
window.addEventListener('resize', queueDraw);

connect();
