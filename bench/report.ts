/**
 * The results as Markdown: the headline ratios first, then one table per scenario with the
 * absolute numbers behind them, then how and where they were measured.
 */
import { type ChartGroup, renderChart } from './chart.ts';
import { BASELINE, type Contender, DIRECT } from './contenders.ts';
import type { Machine } from './machine.ts';
import type { IdleRow, LoadRow, OverheadRow, PassthroughRow, ScenarioSummary } from './summary.ts';

/** Busy percentage of each CPU, and the busiest processes, before the benchmark started. */
export interface Background {
  cpu0: number;
  cpu1: number;
  busiest: string[];
}

/** How the run was made. */
export interface RunInfo {
  date: string;
  command: string;
  quick: boolean;
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  idleRounds: number;
  idleConnections: number;
  idleSeconds: number;
  elapsedSeconds: number;
  machine: Machine;
  /** What kept the CPUs busy before the benchmark started anything: its neighbours. */
  background: Background;
  contenders: Contender[];
}

export interface Results {
  info: RunInfo;
  scenarios: ScenarioSummary[];
  /** The PROXY protocol's cost over plain, per proxy; empty unless pp-plain and pp-v2 ran. */
  overheads?: OverheadRow[];
  /**
   * SNI passthrough, when sni-plain and sni-route both ran: routing's cost over plain forwarding
   * per proxy, and the issue's target (switchyard routing over HAProxy forwarding).
   */
  sni?: { overheads: OverheadRow[]; target: PassthroughRow[] };
  /** What the run observed that the tables do not show (the TLS each proxy negotiated). */
  notes?: string[];
  /** Null when the idle scenario was not run. */
  idle: IdleRow[] | null;
  /** Why the idle scenario has no rows, when it was asked for but could not run. */
  idleFailure: string | null;
}

/** The chart of the ratios, as SVG. */
export function chartOf(r: Results): string {
  const groups: ChartGroup[] = r.scenarios.map((s) => ({
    label: `${s.scenario.id} (CPU/${s.scenario.unit})`,
    bars: s.rows
      .filter((row) => row.name !== DIRECT)
      .map((row) => ({ name: row.name, ratio: row.ratio, target: row.target })),
  }));
  if (r.idle) {
    groups.push({
      label: 'idle (RSS/connection)',
      bars: r.idle.map((row) => ({ name: row.name, ratio: row.ratio, target: row.ratioTarget })),
    });
  }
  const when = `${r.info.date}, ${r.info.machine.cpuModel}${r.info.quick ? ', --quick' : ''}`;
  return renderChart(`Cost relative to HAProxy (lower is better) — ${when}`, groups);
}

/** The whole report; `chartFile` is the SVG's name, linked relative to the Markdown file. */
export function markdownOf(r: Results, chartFile: string): string {
  const i = r.info;
  const out: string[] = [];
  out.push(`# switchyard benchmark — ${i.date}${i.quick ? ' (quick smoke run)' : ''}`, '');
  out.push(
    `${i.machine.cpuModel}, ${i.machine.cpus} CPUs, Linux ${i.machine.kernel}. ` +
      `Proxy pinned to CPU 1; backends, load generators and the harness to CPU 0.`,
    '',
  );
  const bg = i.background;
  const noisy = bg.cpu0 > 5 || bg.cpu1 > 5;
  out.push(
    `${noisy ? '**Noisy machine:** before' : 'Before'} the run, other processes kept CPU 0 ` +
      `${bg.cpu0.toFixed(1)} % and CPU 1 ${bg.cpu1.toFixed(1)} % busy` +
      (bg.busiest.length ? ` (${bg.busiest.join(', ')})` : '') +
      `${noisy ? '; the "other on CPU 1" columns below show how much of it overlapped each run' : ''}.`,
    '',
  );
  out.push('## Proxy CPU per unit of work, relative to HAProxy', '');
  out.push(
    `Median over ${i.rounds} round${i.rounds === 1 ? '' : 's'} of the ratio to HAProxy measured ` +
      'in the same round; in brackets the median absolute cost. ✓/✗: within/over the target. ' +
      'Lower is better.',
    '',
  );
  out.push(...headline(r), '');
  out.push(`![ratios to HAProxy](${chartFile})`, '');

  for (const s of r.scenarios) {
    out.push(`## ${s.scenario.title}`, '', `${s.scenario.how}.`, '');
    out.push(...loadTable(s), '');
  }
  if (r.overheads?.length) {
    out.push('## PROXY protocol: cost over plain', '');
    out.push(
      'Proxy CPU per request through a PROXY protocol frontend (pp-v2: header parsed from the ' +
        'client, header sent to the server) over the same without (pp-plain), paired by round.',
      '',
    );
    out.push(...overheadTable(r.overheads, PROXY_LABELS), '');
  }
  if (r.sni) {
    out.push('## SNI passthrough: cost over plain forwarding', '');
    out.push(
      'Proxy CPU per connection routing by the ClientHello’s server name (sni-route) over the ' +
        'same TLS traffic forwarded as plain TCP (sni-plain), paired by round; neither decrypts.',
      '',
    );
    out.push(...overheadTable(r.sni.overheads, SNI_LABELS), '');
    out.push(...passthroughTable(r.sni.target), '');
  }
  if (r.idle || r.idleFailure) {
    out.push(`## ${i.idleConnections.toLocaleString('en-US')} idle connections`, '');
    out.push(
      'Each client connects through the proxy to a server that holds connections, and sends one ' +
        `byte. RSS per connection = (RSS of the proxy's process tree with the connections open − ` +
        `before) / ${i.idleConnections}. Idle CPU: the proxy tree over ${i.idleSeconds} s with ` +
        `them open. Median of ${i.idleRounds} round${i.idleRounds === 1 ? '' : 's'}, each on a ` +
        'fresh proxy.',
      '',
    );
    if (r.idle) out.push(...idleTable(r.idle), '');
    if (r.idleFailure) out.push(`Not run: ${r.idleFailure}`, '');
  }

  out.push('## How this was measured', '');
  out.push(`- Command: \`${i.command}\``);
  out.push(
    `- Each contender ran each scenario for ${i.seconds} s per round, after one ` +
      `${i.warmupSeconds} s warm-up run; the order of contenders rotates every round (A/B ` +
      'interleaved).',
  );
  out.push(
    "- Proxy CPU: user + system time of the proxy's process tree from /proc/PID/stat over the " +
      'run, divided by the requests wrk or redis-benchmark completed. For 1 MiB transfers each ' +
      'request is one MiB, so the cost is per MiB. Per churned connection, the client opens ' +
      'and closes one connection per request, and the proxy a second one to the origin.',
  );
  out.push(
    '- "other on CPU 1": time CPU 1 was busy with anything but the proxy during the run — other ' +
      'processes, and kernel work not charged to the proxy. A large value marks a noisy run.',
  );
  out.push(
    `- Every proxy: one thread or process, room for 9,000 clients, 16 KiB buffers, no access logs.`,
  );
  for (const note of r.notes ?? []) out.push(`- ${note}`);
  out.push(`- Run took ${Math.round(i.elapsedSeconds)} s.`);
  out.push('', '| contender | what | status |', '| --- | --- | --- |');
  for (const c of i.contenders) {
    out.push(
      `| ${c.name} | ${c.description} | ${c.unavailable ? `n/a: ${cell(c.unavailable)}` : 'ran'} |`,
    );
  }
  out.push('', '| program | version |', '| --- | --- |');
  for (const [k, v] of Object.entries(i.machine.versions)) out.push(`| ${k} | ${v} |`);
  out.push('');
  return out.join('\n');
}

function headline(r: Results): string[] {
  const names = [
    ...new Set(
      r.scenarios.flatMap((s) => s.rows.map((row) => row.name)).filter((n) => n !== DIRECT),
    ),
  ];
  for (const row of r.idle ?? []) if (!names.includes(row.name)) names.push(row.name);
  const head = [
    'contender',
    ...r.scenarios.map((s) => `${s.scenario.id} (CPU/${s.scenario.unit})`),
  ];
  if (r.idle) head.push('RSS/idle connection', 'idle CPU');
  const lines = [row(head), row(head.map(() => '---'))];
  for (const name of names) {
    const cells = [name === BASELINE ? `${name} (baseline)` : name];
    for (const s of r.scenarios) {
      const x = s.rows.find((row) => row.name === name);
      if (!x || x.ratio === null) {
        cells.push(x?.failure ? 'n/a' : '—');
        continue;
      }
      cells.push(`${x.ratio.toFixed(2)} (${us(x.cpuPerUnitUs)})${verdict(x.ratio, x.target)}`);
    }
    if (r.idle) {
      const x = r.idle.find((row) => row.name === name);
      cells.push(
        x && x.ratio !== null
          ? `${x.ratio.toFixed(2)} (${kib(x.rssPerConnectionBytes)})${verdict(x.ratio, x.ratioTarget)}`
          : x?.failure
            ? 'n/a'
            : '—',
      );
      cells.push(
        x && x.idleCpuPercent !== null
          ? `${pct(x.idleCpuPercent)}${verdict(x.idleCpuPercent, x.idleCpuTarget, true)}`
          : x?.failure
            ? 'n/a'
            : '—',
      );
    }
    lines.push(row(cells));
  }
  const targets = [
    'Targets: switchyard-node ≤ 1.10 small, ≤ 1.10 bulk, ≤ 1.50 churn, RSS ≤ 1.5;',
    'switchyard-bun ≤ 1.00 / 1.00 / 1.10, RSS ≤ 1.00; idle CPU < 0.1 %.',
  ];
  const failures = [...r.scenarios.flatMap((s) => s.rows), ...(r.idle ?? [])].filter(
    (x) => x.failure,
  );
  const notes = failures.map((x) => `- n/a or partial — ${x.name}: ${cell(x.failure ?? '')}`);
  return [...lines, '', targets.join(' '), ...(notes.length ? ['', ...new Set(notes)] : [])];
}

function loadTable(s: ScenarioSummary): string[] {
  const unit = s.scenario.unit;
  const extras = s.scenario.extras ?? [];
  const head = [
    'contender',
    'req/s',
    'p50',
    'p99',
    ...extras.map((e) => e.label),
    `proxy CPU/${unit}`,
    'ratio to HAProxy (min–max)',
    'proxy CPU busy',
    'other on CPU 1',
    'errors',
  ];
  const lines = [row(head), row(['---', ...head.slice(1).map(() => '---:')])];
  for (const x of s.rows) {
    if (x.rounds === 0) {
      const blanks = head.slice(2).map(() => '');
      lines.push(row([x.name, `n/a: ${cell(x.failure ?? 'no run')}`, ...blanks]));
      continue;
    }
    lines.push(
      row([
        x.failure ? `${x.name} (failed after ${x.rounds} rounds: ${cell(x.failure)})` : x.name,
        x.requestsPerSecond === null
          ? '—'
          : Math.round(x.requestsPerSecond).toLocaleString('en-US'),
        latency(x.p50Us),
        latency(x.p99Us),
        ...extras.map((e) => extraCell(x.extras[e.key] ?? null, e.format)),
        x.name === DIRECT ? '—' : us(x.cpuPerUnitUs),
        ratioCell(x),
        x.proxyCpuPercent === null ? '—' : pct(x.proxyCpuPercent),
        x.otherCpuPercent === null ? '—' : pct(x.otherCpuPercent),
        x.errors ? `${x.errors} (${cell(x.errorDetail)})` : '0',
      ]),
    );
  }
  if (s.scenario.tail) lines.push('', ...addedTable(s));
  return lines;
}

/**
 * Latency each proxy adds to direct's, percentile by percentile (medians over rounds), and the
 * issue's targets: p99.9 added within 2x HAProxy's at 50 % load, no GC pause over 5 ms.
 */
function addedTable(s: ScenarioSummary): string[] {
  const direct = s.rows.find((x) => x.name === DIRECT);
  const base = s.rows.find((x) => x.name === BASELINE);
  if (!direct || direct.rounds === 0) return ['(no direct run: no added latency)'];
  const figures = (x: LoadRow) => [
    x.p50Us,
    x.p99Us,
    x.extras.p999Us ?? null,
    x.extras.maxUs ?? null,
  ];
  const d = figures(direct);
  const added = (x: LoadRow) =>
    figures(x).map((v, i) => (v === null || d[i] == null ? null : v - (d[i] as number)));
  const baseAdded = base?.rounds ? added(base) : null;
  const head = ['added over direct', 'p50', 'p99', 'p99.9', 'max', 'longest GC pause'];
  const lines = [row(head), row(['---', ...head.slice(1).map(() => '---:')])];
  for (const x of s.rows) {
    if (x.name === DIRECT || x.rounds === 0) continue;
    const a = added(x);
    const p999 = a[2] ?? null;
    const target =
      s.scenario.id === 'latency-50' && x.name.startsWith('switchyard') && baseAdded?.[2] != null
        ? verdict(p999 ?? Number.POSITIVE_INFINITY, 2 * Math.max(baseAdded[2] as number, 0))
        : '';
    const gc = x.extras.gcMaxMs ?? null;
    lines.push(
      row([
        x.name,
        latency(a[0] ?? null),
        latency(a[1] ?? null),
        `${latency(p999)}${target}`,
        latency(a[3] ?? null),
        x.name.startsWith('switchyard') && gc !== null
          ? `${gc.toFixed(2)} ms${verdict(gc, 5)}`
          : '—',
      ]),
    );
  }
  return lines;
}

function extraCell(v: number | null, format: 'us' | 'ms' | 'ratio' | 'number'): string {
  if (v === null) return '—';
  if (format === 'us') return latency(v);
  if (format === 'ms') return `${v.toFixed(2)} ms`;
  if (format === 'ratio') return v.toFixed(2);
  return v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(2);
}

/** The columns of an overhead table: without the feature, with it, and their ratio. */
const PROXY_LABELS = ['CPU/request plain', 'CPU/request PROXY v2', 'PROXY/plain (min–max)'];
const SNI_LABELS = ['CPU/connection plain', 'CPU/connection by SNI', 'SNI/plain (min–max)'];

function overheadTable(rows: OverheadRow[], labels: string[]): string[] {
  const head = ['proxy', ...labels];
  const lines = [row(head), row(['---', ...head.slice(1).map(() => '---:')])];
  for (const x of rows) {
    const ratio =
      x.ratio === null
        ? `n/a${x.failure ? `: ${cell(x.failure)}` : ''}`
        : `${x.ratio.toFixed(2)} (${x.ratioMin?.toFixed(2)}–${x.ratioMax?.toFixed(2)})`;
    lines.push(row([x.name, us(x.withoutUs), us(x.withUs), ratio]));
  }
  return lines;
}

/**
 * The issue's target: each switchyard engine routing by SNI against HAProxy forwarding plain
 * TCP, with its verdict; the target is met when the fastest engine meets it.
 */
function passthroughTable(rows: PassthroughRow[]): string[] {
  const target = rows.find((x) => x.target !== null)?.target ?? null;
  const out = [
    `Target (issue 13): switchyard routing by SNI within ${target?.toFixed(2) ?? '—'}× of ` +
      "HAProxy's plain TCP cost, on the fastest engine; each engine's sni-route CPU per " +
      "connection over HAProxy's sni-plain from the same round.",
    '',
  ];
  const head = [
    'engine',
    'CPU/connection by SNI',
    'HAProxy CPU/connection plain',
    'ratio (min–max)',
  ];
  out.push(row(head), row(['---', ...head.slice(1).map(() => '---:')]));
  for (const x of rows) {
    const ratio =
      x.ratio === null
        ? `n/a${x.failure ? `: ${cell(x.failure)}` : ''}`
        : `${x.ratio.toFixed(2)} (${x.ratioMin?.toFixed(2)}–${x.ratioMax?.toFixed(2)})${verdict(x.ratio, x.target)}`;
    out.push(row([x.name, us(x.routeUs), us(x.baselineUs), ratio]));
  }
  let best: PassthroughRow | null = null;
  for (const x of rows) {
    if (x.ratio !== null && (best?.ratio == null || x.ratio < best.ratio)) best = x;
  }
  if (best?.ratio != null && target !== null) {
    const met = best.ratio <= target;
    out.push(
      '',
      `Fastest engine: ${best.name}, ${best.ratio.toFixed(2)}× — target ${met ? 'met ✓' : 'missed ✗'}.`,
    );
  }
  return out;
}

function idleTable(rows: IdleRow[]): string[] {
  const head = ['contender', 'RSS before', 'RSS/connection', 'ratio to HAProxy', 'idle CPU'];
  const lines = [row(head), row(['---', '---:', '---:', '---:', '---:'])];
  for (const x of rows) {
    if (x.rounds === 0) {
      lines.push(row([x.name, `n/a: ${cell(x.failure ?? 'no run')}`, '', '', '']));
      continue;
    }
    lines.push(
      row([
        x.failure ? `${x.name} (failed: ${cell(x.failure)})` : x.name,
        x.rssBeforeBytes === null ? '—' : `${(x.rssBeforeBytes / 1048576).toFixed(1)} MiB`,
        kib(x.rssPerConnectionBytes),
        x.ratio === null ? '—' : `${x.ratio.toFixed(2)}${verdict(x.ratio, x.ratioTarget)}`,
        x.idleCpuPercent === null
          ? '—'
          : `${pct(x.idleCpuPercent)}${x.precise ? '' : ' (±0.1 %)'}${verdict(x.idleCpuPercent, x.idleCpuTarget, true)}`,
      ]),
    );
  }
  return lines;
}

function ratioCell(x: LoadRow): string {
  if (x.ratio === null) return '—';
  const spread =
    x.ratioMin !== null && x.ratioMax !== null && x.rounds > 1
      ? ` (${x.ratioMin.toFixed(2)}–${x.ratioMax.toFixed(2)})`
      : '';
  return `${x.ratio.toFixed(2)}${spread}${verdict(x.ratio, x.target)}`;
}

/** " ✓" or " ✗" against a target; `strict` for "less than" targets. */
function verdict(value: number, target: number | null, strict = false): string {
  if (target === null) return '';
  const ok = strict ? value < target : value <= target;
  return ok ? ' ✓' : ' ✗';
}

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function us(v: number | null): string {
  if (v === null) return '—';
  return v >= 100 ? `${Math.round(v)} µs` : v >= 10 ? `${v.toFixed(1)} µs` : `${v.toFixed(2)} µs`;
}

function latency(v: number | null): string {
  if (v === null) return '—';
  return v >= 10_000
    ? `${(v / 1000).toFixed(1)} ms`
    : v >= 1000
      ? `${(v / 1000).toFixed(2)} ms`
      : `${Math.round(v)} µs`;
}

function kib(bytes: number | null): string {
  return bytes === null ? '—' : `${(bytes / 1024).toFixed(1)} KiB`;
}

function pct(v: number): string {
  return v < 1 ? `${v.toFixed(3)} %` : `${v.toFixed(1)} %`;
}
