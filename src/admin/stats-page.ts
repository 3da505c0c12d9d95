/**
 * The stats page at GET /: one HTML document with its CSS and script inline, and uPlot (from the
 * npm registry, served by the admin server at /assets/): nothing is fetched from elsewhere.
 *
 * Every second it reads /api/stats, /api/history (the admin server's ring of the last five
 * minutes, history.ts) and one page of /api/connections (at most 200 rows, filtered and sorted
 * by the server, each with its SNI and, where the proxy terminated TLS, the version and ALPN, the
 * cipher on hover), and updates what it drew: the charts get new data (never new charts unless
 * the servers change), the connection rows are reused. So a page left open for hours holds the
 * same few objects, whatever the number of connections.
 *
 * The words are the project's own: the states come from core/state.ts and the close and
 * rejection reasons (with their one-line meaning) from core/ending.ts, as in /metrics and the
 * access log; the columns of the frontends and servers tables are the numbers src/stats.ts
 * declares with a `page` column, in its order. The token comes from the page's URL (`/?token=`), else from the session, else a
 * prompt once the API answers 401. Colours follow the system's light or dark theme. `?refresh=MS`
 * reads more or less often than once a second.
 */
import { ENDINGS } from '../core/ending.ts';
import { LIVE_STATES } from '../observability/stat-keys.ts';
import { type Declarations, FRONTEND_STATS, SERVER_STATS, STATS } from '../stats.ts';

/** Rows of the connections table per page. */
export const PAGE_ROWS = 200;

/** One column of the frontends or servers table: a number src/stats.ts gives a `page` column. */
interface PageColumn {
  key: string;
  title: string;
  /** How the script writes the value (see `show` in the script). */
  as: 'text' | 'number' | 'sum' | 'bytes' | 'limit' | 'health';
}

/** The columns of one table, in declaration order. */
function columnsOf(decls: Declarations): PageColumn[] {
  return Object.entries(decls).flatMap(([key, d]): PageColumn[] => {
    if (d.page === undefined) return [];
    const as =
      d.page.as ?? ('keys' in d ? 'sum' : 'kind' in d && d.kind === 'text' ? 'text' : 'number');
    return [{ key, title: d.page.title, as }];
  });
}

const COLUMNS = { frontend: columnsOf(FRONTEND_STATS), server: columnsOf(SERVER_STATS) };

/** Left-aligned: names and words. */
const isName = (c: PageColumn) => c.as === 'text' || c.as === 'health';

/** A table's head row: `first` (the entry's name, when the declarations do not have it), then its columns. */
function head(columns: PageColumn[], first: string | null): string {
  const cells = columns.map((c) => `<th${isName(c) ? ' class="name"' : ''}>${html(c.title)}</th>`);
  return (first === null ? '' : `<th class="name">${html(first)}</th>`) + cells.join('');
}

function html(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const VOCABULARY = JSON.stringify({
  endings: ENDINGS,
  states: LIVE_STATES,
  pageRows: PAGE_ROWS,
  columns: COLUMNS,
});

export const STATS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>switchyard stats</title>
<link rel="stylesheet" href="/assets/uplot.css">
<style>
  :root {
    --fg: #222; --muted: #666; --bg: #fafafa; --panel: #fff; --line: #ccc; --head: #e8e8f0;
    --grid: #e4e4e4; --backend: #dde4f0; --up: #c8f0c0; --down: #f4b8b8; --backup: #c4d8f8;
    --drained: #ddd; --blocked: #fbe8b0; --accent: #2f6fd0;
  }
  @media (prefers-color-scheme: dark) {
    :root {
      --fg: #ddd; --muted: #999; --bg: #16181c; --panel: #1f2228; --line: #3a3f48; --head: #2a2f3a;
      --grid: #2c3038; --backend: #263246; --up: #1f4a27; --down: #5c2626; --backup: #223a5e;
      --drained: #3a3a3a; --blocked: #5a4a1a; --accent: #6ea4ff;
    }
  }
  body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: var(--fg); background: var(--bg); }
  h1 { font-size: 18px; margin: 0 0 4px; }
  h2 { font-size: 15px; margin: 18px 0 6px; }
  #status { color: var(--muted); margin-bottom: 10px; }
  table { border-collapse: collapse; background: var(--panel); min-width: 600px; }
  th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: right; }
  th { background: var(--head); }
  td.name, th.name { text-align: left; }
  tr.backend td { background: var(--backend); font-weight: bold; text-align: left; }
  tr.up td { background: var(--up); }
  tr.down td { background: var(--down); }
  tr.backup td { background: var(--backup); }
  tr.drained td { background: var(--drained); }
  tr.blocked td { background: var(--blocked); }
  #machine { display: flex; flex-wrap: wrap; align-items: center; gap: 4px; }
  .state { background: var(--panel); border: 1px solid var(--line); border-left: 6px solid; border-radius: 4px;
    padding: 4px 10px; min-width: 84px; }
  .state b { display: block; font-size: 20px; font-variant-numeric: tabular-nums; }
  .state span { color: var(--muted); font-size: 11px; }
  .arrow { color: var(--muted); }
  #charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 12px; }
  .chart { background: var(--panel); border: 1px solid var(--line); border-radius: 4px; padding: 6px; min-height: 230px; }
  .chart h3 { font-size: 13px; margin: 0 0 4px; }
  .uplot, .u-legend { color: var(--fg); font-family: inherit; }
  .u-legend th, .u-legend td { border: none; background: none; padding: 0 4px; }
  #endings { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
  #endings table { min-width: 320px; }
  td.about { text-align: left; color: var(--muted); }
  .controls { margin: 6px 0; display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
  select, button { font: inherit; color: var(--fg); background: var(--panel); border: 1px solid var(--line); border-radius: 3px; }
  button.close { padding: 0 6px; }
  td.num { font-variant-numeric: tabular-nums; }
  .empty { color: var(--muted); }
</style>
</head>
<body>
<h1>switchyard</h1>
<div id="status">loading…</div>

<h2>Connections by state</h2>
<div id="machine"></div>

<h2>Last 5 minutes</h2>
<div id="charts">
  <div class="chart"><h3>Connections per state (stacked)</h3><div id="chart-states"></div></div>
  <div class="chart"><h3>New connections per second</h3><div id="chart-new"></div></div>
  <div class="chart"><h3>Bytes per second (in: client → server, out: server → client)</h3><div id="chart-bytes"></div></div>
  <div class="chart"><h3>Active connections per server</h3><div id="chart-servers"></div></div>
</div>

<div id="endings">
  <div><h2>Closed in the last minute</h2>
  <table id="closed"><thead><tr><th class="name">reason</th><th>last minute</th><th>total</th><th class="name">side</th><th class="name">meaning</th></tr></thead><tbody></tbody></table></div>
  <div><h2>Rejected clients</h2>
  <table id="rejected"><thead><tr><th class="name">reason</th><th>last minute</th><th>total</th><th class="name">meaning</th></tr></thead><tbody></tbody></table></div>
</div>

<h2>Frontends</h2>
<table id="frontends"><thead><tr>${head(COLUMNS.frontend, STATS.frontends.label)}</tr></thead><tbody></tbody></table>
<h2>Backends</h2>
<table id="backends"><thead><tr>${head(COLUMNS.server, null)}</tr></thead><tbody></tbody></table>

<h2>Connections</h2>
<div class="controls">
  <label>top by <select id="sort"><option value="age">age</option><option value="bytes">bytes</option><option value="id">id</option></select></label>
  <label>frontend <select id="f-frontend"><option value="">all</option></select></label>
  <label>server <select id="f-server"><option value="">all</option></select></label>
  <label>state <select id="f-state"><option value="">all</option></select></label>
  <button id="prev">‹ prev</button><button id="next">next ›</button>
  <span id="range"></span>
</div>
<table id="connections"><thead><tr>
  <th>id</th><th class="name">client</th><th class="name">frontend</th><th class="name">server</th>
  <th class="name">SNI</th><th class="name">TLS</th><th class="name">state</th><th>bytes in</th><th>bytes out</th><th>age</th><th class="name">blocked</th><th></th>
</tr></thead><tbody></tbody></table>

<script src="/assets/uplot.js"></script>
<script>
(() => {
  const V = ${VOCABULARY};
  const STATE_COLOURS = { CONNECTING: '#e0a030', QUEUED: '#c05050', CONNECTED: '#9070d0', READING: '#3a9a50',
    WRITING: '#2f6fd0', HALF_CLOSED: '#20a0b0', CLOSING: '#888888' };
  const PALETTE = ['#2f6fd0', '#e0a030', '#3a9a50', '#c05050', '#9070d0', '#20a0b0', '#d060a0', '#808040'];
  const $ = (id) => document.getElementById(id);
  const page = { offset: 0, refreshes: 0, firstRenderMs: null, lastRenderMs: null };
  window.__switchyard = page;

  // The token: the page's URL, else this tab's session, else asked for once the API says 401.
  const params = new URLSearchParams(location.search);
  let token = params.get('token') || sessionStorage.getItem('switchyard-token');
  // ?refresh=MS: how often to read the admin server (default a second, at least 100 ms).
  const every = Math.max(100, Number(params.get('refresh')) || 1000);
  let asking = null;
  function askToken() {
    asking ??= Promise.resolve().then(() => {
      const given = prompt('switchyard admin token');
      if (given) { token = given; sessionStorage.setItem('switchyard-token', given); }
      return Boolean(given);
    }).finally(() => { asking = null; });
    return asking;
  }
  async function api(path, method) {
    for (let attempt = 0; ; attempt++) {
      const sent = token;
      const r = await fetch(path, { method: method || 'GET', cache: 'no-store',
        headers: sent ? { Authorization: 'Bearer ' + sent } : {} });
      // Requests sent together all get 401: one asks, the others retry with what it was given.
      if (r.status === 401 && attempt === 0 && (token !== sent || await askToken())) continue;
      if (r.status === 401) throw new Error('the admin server wants its token: open /?token=TOKEN');
      if (r.status === 403) throw new Error((await r.text()).trim());
      if (!r.ok && r.status !== 404) throw new Error(path + ': ' + r.status);
      return r;
    }
  }

  const bytes = (n) => n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB'
    : n < 1073741824 ? (n / 1048576).toFixed(1) + ' MiB' : (n / 1073741824).toFixed(2) + ' GiB';
  const count = (n) => n == null ? '-' : n >= 1e6 ? (n / 1e6).toFixed(1) + 'M' : n >= 1e4 ? (n / 1e3).toFixed(1) + 'k' : String(n);
  const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
  const cell = (tr, text, cls) => {
    const td = document.createElement('td');
    td.textContent = String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  };
  const fill = (id, rows) => document.querySelector('#' + id + ' tbody').replaceChildren(...rows);
  // The columns of the frontends and servers tables, as src/stats.ts declares them.
  const show = { text: (v) => v, number: (v) => v, sum: (v) => sum(v || {}), bytes: (v) => bytes(v),
    limit: (v) => v || '-', health: (v, o) => v ? (o.backup ? 'UP (backup)' : 'UP') : 'DOWN' };
  const columns = (tr, list, o) => {
    for (const c of list) cell(tr, show[c.as](o[c.key], o), c.as === 'text' || c.as === 'health' ? 'name' : '').dataset.field = c.key;
  };

  // The state machine: one tile per live state, in the table's order.
  const tiles = {};
  V.states.forEach((s, i) => {
    if (i > 0) { const a = document.createElement('span'); a.className = 'arrow'; a.textContent = '→'; $('machine').appendChild(a); }
    const d = document.createElement('div');
    d.className = 'state'; d.dataset.state = s; d.style.borderLeftColor = STATE_COLOURS[s] || '#888';
    d.innerHTML = '<b>0</b><span></span>';
    d.lastChild.textContent = s;
    $('machine').appendChild(d);
    tiles[s] = d.firstChild;
    const o = document.createElement('option'); o.value = o.textContent = s; $('f-state').appendChild(o);
  });

  // Charts: made once (again only when the theme or the set of servers changes), then setData.
  const charts = {};
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  function makeChart(id, series, format, data) {
    charts[id]?.plot.destroy();
    const box = $(id);
    const fg = css('--fg'), grid = css('--grid');
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const plot = new uPlot({
      width: Math.max(300, box.clientWidth), height: 170,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [axis, { ...axis, size: 80, values: (u, ticks) => ticks.map(format) }],
      legend: { live: false },
      series: [{}, ...series],
    }, data, box);
    charts[id] = { plot, key: series.map((s) => s.label).join('|') };
  }
  function line(label, colour, extra) {
    return { label, stroke: colour, width: 1.5, points: { show: false }, ...extra };
  }
  function drawCharts(h) {
    const t = h.t.length ? h.t : [Math.floor(Date.now() / 1000)];
    const pad = (a) => h.t.length ? a : [null];
    // Stacked: each series is its state plus those below; drawn top first so every band shows.
    let below = t.map(() => 0);
    const stacked = V.states.map((s) => {
      const raw = pad(h.states[s] || []);
      below = below.map((b, i) => b + (raw[i] || 0));
      return { s, raw, top: below };
    }).reverse();
    const stateSeries = stacked.map(({ s, raw }) => line(s, STATE_COLOURS[s], {
      fill: STATE_COLOURS[s] + '99', value: (u, v, si, i) => i == null ? '-' : count(raw[i]) }));
    update('chart-states', stateSeries, count, [t, ...stacked.map((x) => x.top)]);
    update('chart-new', [line('new/s', PALETTE[0], { fill: PALETTE[0] + '33' })], count, [t, pad(h.accepted)]);
    update('chart-bytes', [line('in', PALETTE[0]), line('out', PALETTE[1])], (v) => bytes(v) + '/s',
      [t, pad(h.bytesIn), pad(h.bytesOut)]);
    const names = Object.keys(h.servers);
    const serverData = names.length ? names.map((n) => pad(h.servers[n])) : [pad([])];
    const serverSeries = names.length ? names.map((n, i) => line(n, PALETTE[i % PALETTE.length])) : [line('no servers', PALETTE[0])];
    update('chart-servers', serverSeries, count, [t, ...serverData]);
  }
  function update(id, series, format, data) {
    const key = series.map((s) => s.label).join('|');
    if (!charts[id] || charts[id].key !== key) makeChart(id, series, format, data);
    else charts[id].plot.setData(data);
  }
  let lastHistory = null;
  const rebuild = () => { for (const id of Object.keys(charts)) { charts[id].plot.destroy(); delete charts[id]; } if (lastHistory) drawCharts(lastHistory); };
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', rebuild);
  let resizing = 0;
  addEventListener('resize', () => { clearTimeout(resizing); resizing = setTimeout(() => {
    for (const [id, c] of Object.entries(charts)) c.plot.setSize({ width: Math.max(300, $(id).clientWidth), height: 170 });
  }, 100); });

  function endingRows(recent, total, withSide) {
    const names = Object.keys(total).filter((k) => total[k] > 0).sort((a, b) => (recent[b] || 0) - (recent[a] || 0) || total[b] - total[a]);
    if (!names.length) {
      const tr = document.createElement('tr');
      cell(tr, 'none yet', 'name empty').colSpan = withSide ? 5 : 4;
      return [tr];
    }
    return names.map((k) => {
      const tr = document.createElement('tr');
      tr.dataset.reason = k;
      cell(tr, k, 'name'); cell(tr, recent[k] || 0, 'num').dataset.field = 'recent'; cell(tr, total[k], 'num');
      if (withSide) cell(tr, V.endings[k] ? V.endings[k].side : '', 'name');
      cell(tr, V.endings[k] ? V.endings[k].about : '', 'about');
      return tr;
    });
  }

  function setOptions(select, values) {
    const have = [...select.options].slice(1).map((o) => o.value).join('|');
    if (have === values.join('|')) return;
    const keep = select.value;
    select.replaceChildren(select.options[0], ...values.map((v) => { const o = document.createElement('option'); o.value = o.textContent = v; return o; }));
    select.value = values.includes(keep) ? keep : '';
  }

  function renderStats(stats) {
    const states = {};
    for (const f of Object.values(stats.frontends)) for (const s of V.states) states[s] = (states[s] || 0) + (f.states[s] || 0);
    for (const s of V.states) tiles[s].textContent = count(states[s] || 0);
    fill('frontends', Object.entries(stats.frontends).map(([name, f]) => {
      const tr = document.createElement('tr');
      tr.dataset.frontend = name;
      cell(tr, name, 'name');
      columns(tr, V.columns.frontend, f);
      return tr;
    }));
    const rows = [];
    const servers = new Set();
    for (const b of Object.values(stats.backends)) {
      const head = document.createElement('tr');
      head.className = 'backend';
      head.dataset.backend = b.name;
      cell(head, b.name + ' (' + b.balance + ', queued ' + b.queued + ')').colSpan = V.columns.server.length;
      rows.push(head);
      for (const s of b.servers) {
        servers.add(s.name);
        const state = !s.up ? 'down' : s.weight === 0 ? 'drained' : s.backup ? 'backup' : 'up';
        const tr = document.createElement('tr');
        tr.className = state;
        tr.dataset.server = s.name;
        columns(tr, V.columns.server, s);
        rows.push(tr);
      }
    }
    fill('backends', rows);
    setOptions($('f-frontend'), Object.keys(stats.frontends));
    setOptions($('f-server'), [...servers]);
  }

  // The connection rows are made once and reused: 200 rows, rewritten in place each second.
  const rowPool = [];
  function connectionRow(i) {
    let tr = rowPool[i];
    if (tr) return tr;
    tr = document.createElement('tr');
    for (let k = 0; k < 11; k++) cell(tr, '', k === 0 || k >= 7 && k <= 9 ? 'num' : 'name');
    tr.children[4].dataset.field = 'sni';
    tr.children[5].dataset.field = 'tls';
    const td = document.createElement('td');
    const b = document.createElement('button');
    b.className = 'close'; b.textContent = 'close'; b.title = 'close this connection (reason: killed)';
    td.appendChild(b); tr.appendChild(td);
    rowPool[i] = tr;
    return tr;
  }
  function renderConnections(conns, total) {
    const body = document.querySelector('#connections tbody');
    conns.forEach((c, i) => {
      const tr = connectionRow(i);
      tr.className = c.blocked ? 'blocked' : '';
      tr.dataset.id = c.id;
      const td = tr.children;
      td[0].textContent = c.id; td[1].textContent = c.client; td[2].textContent = c.frontend;
      td[3].textContent = c.server ?? '-';
      // SNI: from the ClientHello (passed through) or the handshake (terminated). TLS: what the
      // proxy's own handshake agreed, the cipher on hover; empty when it did not terminate TLS.
      td[4].textContent = c.sni ?? '';
      td[5].textContent = c.tls ? [c.tls.version, c.tls.alpn].filter(Boolean).join(' ') : '';
      td[5].title = c.tls?.cipher ?? '';
      td[6].textContent = c.state;
      td[7].textContent = bytes(c.bytesIn); td[8].textContent = bytes(c.bytesOut);
      td[9].textContent = (c.ageMs / 1000).toFixed(1) + ' s'; td[10].textContent = c.blocked ?? '';
      if (tr.parentNode !== body || body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    });
    while (body.children.length > conns.length) body.lastChild.remove();
    const first = total === 0 ? 0 : page.offset + 1;
    $('range').textContent = first + '–' + (page.offset + conns.length) + ' of ' + total;
    $('prev').disabled = page.offset === 0;
    $('next').disabled = page.offset + conns.length >= total;
  }

  function connectionsQuery() {
    const q = new URLSearchParams({ limit: String(V.pageRows), offset: String(page.offset), sort: $('sort').value });
    for (const k of ['frontend', 'server', 'state']) { const v = $('f-' + k).value; if (v) q.set(k, v); }
    return '/api/connections?' + q;
  }

  let timer = 0;
  let chartError = '';
  async function refresh() {
    clearTimeout(timer);
    try {
      const [stats, history, conns] = await Promise.all([
        api('/api/stats').then((r) => r.json()),
        api('/api/history').then((r) => r.json()),
        api(connectionsQuery()),
      ]);
      const total = Number(conns.headers.get('X-Total-Count'));
      if (page.offset > 0 && page.offset >= total) page.offset = Math.max(0, total - V.pageRows);
      renderStats(stats);
      fill('closed', endingRows(history.closedRecent, history.closedTotal, true));
      fill('rejected', endingRows(history.rejectedRecent, history.rejectedTotal, false));
      renderConnections(await conns.json(), total);
      lastHistory = history;
      // The graphs are extra: if they cannot be drawn, the numbers above still are.
      try { drawCharts(history); } catch (err) { chartError = 'graphs: ' + err.message; }
      page.refreshes++;
      page.lastRenderMs = performance.now();
      page.firstRenderMs ??= page.lastRenderMs;
      $('status').textContent = 'updated ' + new Date().toLocaleTimeString() + ' · ' + count(sum(Object.fromEntries(
        Object.entries(stats.frontends).map(([k, f]) => [k, f.active])))) + ' live connections' + (chartError ? ' · ' + chartError : '');
    } catch (err) {
      $('status').textContent = 'error: ' + err.message;
    }
    timer = setTimeout(refresh, every);
  }
  const again = () => { page.offset = 0; refresh(); };
  for (const id of ['sort', 'f-frontend', 'f-server', 'f-state']) $(id).addEventListener('change', again);
  $('prev').addEventListener('click', () => { page.offset = Math.max(0, page.offset - V.pageRows); refresh(); });
  $('next').addEventListener('click', () => { page.offset += V.pageRows; refresh(); });
  $('connections').addEventListener('click', async (e) => {
    const b = e.target.closest('button.close');
    if (!b) return;
    const id = b.closest('tr').dataset.id;
    b.disabled = true;
    try {
      const r = await api('/api/connections/' + id, 'DELETE');
      $('status').textContent = r.ok ? 'closed connection ' + id : 'connection ' + id + ' was already gone';
    } catch (err) {
      $('status').textContent = 'error: ' + err.message;
      // The next refresh rewrites the status line: a refused close says why until dismissed.
      alert('connection ' + id + ' not closed: ' + err.message);
    }
    b.disabled = false;
    refresh();
  });
  refresh();
})();
</script>
</body>
</html>
`;
