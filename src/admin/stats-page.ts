/**
 * The stats page at GET /: one self-contained HTML document (inline CSS and script, nothing
 * fetched from elsewhere) in the spirit of HAProxy's. It reads /api/stats and /api/connections
 * every second; with a token it sends the one in its own URL (`/?token=...`) as a bearer header.
 * Servers are coloured by state: up green, down red, backup blue, drained (weight 0) grey.
 */
export const STATS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>switchyard stats</title>
<style>
  body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; background: #fafafa; }
  h1 { font-size: 18px; margin: 0 0 4px; }
  h2 { font-size: 15px; margin: 18px 0 6px; }
  #status { color: #666; margin-bottom: 10px; }
  table { border-collapse: collapse; background: #fff; min-width: 600px; }
  th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
  th { background: #e8e8f0; }
  td.name, th.name { text-align: left; }
  tr.backend td { background: #dde4f0; font-weight: bold; text-align: left; }
  tr.up td { background: #c8f0c0; }
  tr.down td { background: #f4b8b8; }
  tr.backup td { background: #c4d8f8; }
  tr.drained td { background: #ddd; }
  tr.blocked td { background: #fbe8b0; }
</style>
</head>
<body>
<h1>switchyard</h1>
<div id="status">loading…</div>
<h2>Frontends</h2>
<table id="frontends"><thead><tr>
  <th class="name">frontend</th><th class="name">listen</th><th class="name">backend</th>
  <th>active</th><th>accepted</th><th>rejected</th><th>closed</th><th>bytes in</th><th>bytes out</th>
</tr></thead><tbody></tbody></table>
<h2>Backends</h2>
<table id="backends"><thead><tr>
  <th class="name">server</th><th class="name">address</th><th class="name">state</th><th>weight</th>
  <th>active</th><th>max</th><th>connections</th><th>failures</th><th>checks</th><th>check failures</th>
</tr></thead><tbody></tbody></table>
<h2>Connections</h2>
<table id="connections"><thead><tr>
  <th>id</th><th class="name">client</th><th class="name">frontend</th><th class="name">server</th>
  <th class="name">state</th><th>bytes in</th><th>bytes out</th><th>age</th><th class="name">blocked</th>
</tr></thead><tbody></tbody></table>
<script>
(() => {
  const token = new URLSearchParams(location.search).get('token');
  const headers = token ? { Authorization: 'Bearer ' + token } : {};
  const get = (path) => fetch(path, { headers, cache: 'no-store' }).then((r) => {
    if (!r.ok) throw new Error(path + ': ' + r.status);
    return r.json();
  });
  const cell = (tr, text, cls) => {
    const td = document.createElement('td');
    td.textContent = String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  };
  const fill = (id, rows) => document.querySelector('#' + id + ' tbody').replaceChildren(...rows);
  const bytes = (n) => n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB';
  const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);

  function render(stats, conns) {
    fill('frontends', Object.entries(stats.frontends).map(([name, f]) => {
      const tr = document.createElement('tr');
      tr.dataset.frontend = name;
      cell(tr, name, 'name'); cell(tr, f.listen, 'name'); cell(tr, f.backend, 'name');
      cell(tr, f.active).dataset.field = 'active';
      cell(tr, f.accepted).dataset.field = 'accepted';
      cell(tr, sum(f.rejected)); cell(tr, sum(f.closed));
      cell(tr, bytes(f.bytesIn)).dataset.field = 'bytesIn';
      cell(tr, bytes(f.bytesOut)).dataset.field = 'bytesOut';
      return tr;
    }));
    const rows = [];
    for (const b of Object.values(stats.backends)) {
      const head = document.createElement('tr');
      head.className = 'backend';
      head.dataset.backend = b.name;
      const td = cell(head, b.name + ' (' + b.balance + ', queued ' + b.queued + ')');
      td.colSpan = 10;
      rows.push(head);
      for (const s of b.servers) {
        const state = !s.up ? 'down' : s.weight === 0 ? 'drained' : s.backup ? 'backup' : 'up';
        const tr = document.createElement('tr');
        tr.className = state;
        tr.dataset.server = s.name;
        cell(tr, s.name, 'name'); cell(tr, s.address, 'name');
        cell(tr, s.up ? (s.backup ? 'UP (backup)' : 'UP') : 'DOWN', 'name').dataset.field = 'state';
        cell(tr, s.weight); cell(tr, s.active).dataset.field = 'active';
        cell(tr, s.maxConnections || '-');
        cell(tr, s.connections).dataset.field = 'connections';
        cell(tr, s.failures); cell(tr, s.checks); cell(tr, s.checkFailures);
        rows.push(tr);
      }
    }
    fill('backends', rows);
    fill('connections', conns.map((c) => {
      const tr = document.createElement('tr');
      if (c.blocked) tr.className = 'blocked';
      cell(tr, c.id); cell(tr, c.client, 'name'); cell(tr, c.frontend, 'name');
      cell(tr, c.server ?? '-', 'name'); cell(tr, c.state, 'name');
      cell(tr, bytes(c.bytesIn)); cell(tr, bytes(c.bytesOut));
      cell(tr, (c.ageMs / 1000).toFixed(1) + ' s'); cell(tr, c.blocked ?? '', 'name');
      return tr;
    }));
  }

  async function refresh() {
    try {
      const [stats, conns] = await Promise.all([get('/api/stats'), get('/api/connections')]);
      render(stats, conns);
      document.getElementById('status').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (err) {
      document.getElementById('status').textContent = 'error: ' + err.message;
    }
    setTimeout(refresh, 1000);
  }
  refresh();
})();
</script>
</body>
</html>
`;
