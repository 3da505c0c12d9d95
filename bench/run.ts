/**
 * `npm run bench`: installs what is missing, starts the backends, runs every scenario over every
 * contender, and writes the report. See bench/README.md.
 *
 * Exit status: 0 when the report was written, even if some contenders or tools were n/a (the
 * report says why); 1 when the harness itself failed; 2 for a bad argument.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type BackendServer,
  startIperf,
  startOrigin,
  startPostgres,
  startRedis,
  startSink,
} from './backends.ts';
import { type CertFiles, describeNegotiated, type KeyType, makeCert, probeTls } from './certs.ts';
import {
  BASELINE,
  type Contender,
  DIRECT,
  type Frontend,
  listContenders,
  PLAIN,
} from './contenders.ts';
import { measureIdle } from './idle.ts';
import { ensureTools, type Tools } from './install.ts';
import { cpuSlug, describeMachine } from './machine.ts';
import { cpuBusySeconds, cpuByProcess } from './measure.ts';
import {
  freePort,
  installCleanup,
  LOAD_CPU,
  PROXY_CPU,
  pinSelf,
  sleep,
  stopAll,
  stopChild,
} from './proc.ts';
import { updateReadme } from './readme-table.ts';
import { type Background, chartOf, markdownOf, type Results } from './report.ts';
import { type ContenderRuns, inCore, runScenario, type Started } from './rounds.ts';
import {
  type BackendKind,
  type FrontendKind,
  type GroupContext,
  SCENARIOS,
  type Scenario,
  SNI_NAME,
} from './scenarios.ts';
import {
  type IdleRuns,
  type ScenarioSummary,
  summarizeIdle,
  summarizeOverhead,
  summarizePassthroughTarget,
  summarizeScenario,
} from './summary.ts';

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

interface Options {
  quick: boolean;
  only: string[] | null;
  scenarios: string[];
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  idleRounds: number;
  idleConnections: number;
  idleSeconds: number;
  /** Whether this is the default, complete run whose results are the ones to commit. */
  complete: boolean;
}

const ALL_SCENARIOS = [...SCENARIOS.map((s) => s.id), 'idle'];
/** Names that stand for several scenarios in --scenarios. */
const SCENARIO_SETS: Record<string, string[]> = {
  pp: ['pp-plain', 'pp-v2'],
  tls: SCENARIOS.filter((s) => s.backend === 'tls').map((s) => s.id),
  sni: ['sni-plain', 'sni-route'],
};
/**
 * --quick leaves out the newer scenarios' variants (they still run when named), and the PROXY
 * protocol, TLS and SNI groups, which restart the proxies per frontend:
 * `--quick --scenarios pp,tls,sni`.
 */
const QUICK_SCENARIOS = ALL_SCENARIOS.filter(
  (id) =>
    !['latency-25', 'latency-75', 'conns-8000', 'pgbench-tpcb'].includes(id) &&
    !SCENARIO_SETS.pp?.includes(id) &&
    !SCENARIO_SETS.tls?.includes(id) &&
    !SCENARIO_SETS.sni?.includes(id),
);
/** Length of one run of a newer scenario under --quick, which must stay under 3 minutes. */
const QUICK_CORE_SECONDS = 1;

const USAGE = `Usage: npm run bench -- [--quick] [--only NAME,...] [--scenarios ID,...] [--rounds N]

  --quick          smoke check, under 3 minutes: 1 round of 2 s, 1,000 idle connections
  --only NAMES     contenders to run (HAProxy, the baseline, always runs)
  --scenarios IDS  any of ${ALL_SCENARIOS.join(', ')} (default: all),
                   or ${Object.entries(SCENARIO_SETS)
                     .map(([k, v]) => `${k} (${v.join(', ')})`)
                     .join(', ')}
  --rounds N       rounds per scenario (default 5, quick 1)
  --seconds S      length of one measured run (default 5, quick 2)`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      scenarios: { type: 'string' },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick === true;
  const list = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim()) : null);
  const named = list(values.scenarios)?.flatMap((id) => SCENARIO_SETS[id] ?? [id]);
  const scenarios = named ?? (quick ? QUICK_SCENARIOS : ALL_SCENARIOS);
  const unknown = scenarios.filter((s) => !ALL_SCENARIOS.includes(s));
  if (unknown.length) throw new Error(`--scenarios: unknown ${unknown.join(', ')}`);
  const positive = (v: string | undefined, name: string, fallback: number) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || n > 600) throw new Error(`--${name}: expected 1..600`);
    return n;
  };
  const rounds = Math.round(positive(values.rounds, 'rounds', quick ? 1 : 5));
  return {
    quick,
    only: list(values.only),
    scenarios,
    rounds,
    seconds: positive(values.seconds, 'seconds', quick ? 2 : 5),
    warmupSeconds: quick ? 1 : 2,
    // Idle rounds restart every proxy and hold the connections for the idle window: costly.
    idleRounds: quick ? 1 : Math.min(rounds, 3),
    idleConnections: quick ? 1000 : 4000,
    idleSeconds: quick ? 2 : 10,
    complete: !quick && !values.only && !values.scenarios && !values.seconds && rounds >= 3,
  };
}

const t0 = performance.now();
function log(line: string) {
  const s = ((performance.now() - t0) / 1000).toFixed(0).padStart(4);
  console.log(`[${s}s] ${line}`);
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`bench: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  installCleanup();
  if (!pinSelf()) log('warning: could not pin the harness to CPU 0 (taskset missing?)');
  const tools = ensureTools();
  const machine = describeMachine(tools);
  // Nothing of the benchmark runs yet: whatever keeps the CPUs busy now is a neighbour, and the
  // report should say so.
  const background = await backgroundLoad();
  log(
    `background load: CPU 0 ${background.cpu0.toFixed(1)} %, CPU 1 ${background.cpu1.toFixed(1)} %` +
      (background.busiest.length ? `, from ${background.busiest.join(', ')}` : ''),
  );
  const all = listContenders(tools);
  const unknown = (o.only ?? []).filter((n) => !all.some((c) => c.name === n));
  if (unknown.length) {
    console.error(`bench: --only: unknown ${unknown.join(', ')}; known: ${all.map((c) => c.name)}`);
    return 2;
  }
  // The baseline always runs: without it there is no ratio.
  const contenders = all.filter((c) => !o.only || o.only.includes(c.name) || c.name === BASELINE);
  log(`contenders: ${contenders.map((c) => c.name + (c.unavailable ? ' (n/a)' : '')).join(', ')}`);
  const tmp = join(RESULTS, 'tmp');
  mkdirSync(tmp, { recursive: true });
  // Configs and logs of earlier runs; this run's stay until the next one, for a post-mortem.
  for (const old of readdirSync(tmp)) {
    if (old.startsWith('run-')) rmSync(join(tmp, old), { recursive: true, force: true });
  }
  const dir = mkdtempSync(join(tmp, 'run-'));

  const summaries: ScenarioSummary[] = [];
  const notes: string[] = [];
  let overheads: Results['overheads'] = [];
  let sni: Results['sni'];
  const kinds = ['origin', 'redis', 'iperf', 'postgres', 'cores', 'proxy', 'tls', 'sni'] as const;
  for (const kind of kinds) {
    const scenarios = SCENARIOS.filter((s) => s.backend === kind && o.scenarios.includes(s.id));
    if (scenarios.length === 0) continue;
    const runs = await runGroup(kind, scenarios, contenders, tools, dir, o, notes);
    for (const s of scenarios) summaries.push(summarizeScenario(s, runs.get(s.id) ?? []));
    const plain = runs.get('pp-plain');
    const pp = runs.get('pp-v2');
    if (plain && pp) overheads = summarizeOverhead(plain, pp);
    const sniPlain = runs.get('sni-plain');
    const sniRoute = runs.get('sni-route');
    if (sniPlain && sniRoute) {
      sni = {
        overheads: summarizeOverhead(sniPlain, sniRoute),
        target: summarizePassthroughTarget(sniPlain, sniRoute),
      };
    }
  }

  let idle: IdleRuns[] | null = null;
  let idleFailure: string | null = null;
  if (o.scenarios.includes('idle')) {
    const limit = openFileLimit();
    if (limit < 2 * o.idleConnections + 200) {
      idleFailure = `open-file limit ${limit} is too low for ${o.idleConnections} connections (ulimit -n)`;
      log(`idle: ${idleFailure}`);
    } else {
      idle = await runIdle(contenders, o, dir);
    }
  }

  const results: Results = {
    info: {
      date: new Date().toISOString().slice(0, 10),
      command: commandLine(),
      quick: o.quick,
      rounds: o.rounds,
      seconds: o.seconds,
      warmupSeconds: o.warmupSeconds,
      idleRounds: o.idleRounds,
      idleConnections: o.idleConnections,
      idleSeconds: o.idleSeconds,
      elapsedSeconds: (performance.now() - t0) / 1000,
      machine,
      background,
      contenders,
    },
    scenarios: summaries,
    overheads,
    sni,
    notes,
    idle: idle ? summarizeIdle(idle) : null,
    idleFailure,
  };
  writeResults(results, o);
  return 0;
}

/**
 * Starts one backend and every contender in front of it, and runs its scenarios; the contenders
 * are started again whenever the next scenario's clients speak another frontend (PROXY, TLS).
 * What was seen of the TLS handshakes goes to `notes`, for the report.
 */
async function runGroup(
  kind: BackendKind,
  scenarios: Scenario[],
  contenders: Contender[],
  tools: Tools,
  dir: string,
  o: Options,
  notes: string[],
): Promise<Map<string, ContenderRuns[]>> {
  const out = new Map<string, ContenderRuns[]>();
  const naAll = (why: string) => {
    log(`${kind}: ${why}`);
    for (const s of scenarios) {
      out.set(
        s.id,
        contenders.map((c) => ({ name: c.name, samples: [], failure: why })),
      );
    }
    return out;
  };
  let backend: BackendServer;
  const certs = new Map<KeyType, CertFiles>();
  // The SNI group's origin speaks TLS itself, with the ECDSA certificate.
  let originCert: CertFiles | undefined;
  try {
    if (
      kind === 'origin' ||
      kind === 'cores' ||
      kind === 'proxy' ||
      kind === 'tls' ||
      kind === 'sni'
    ) {
      if (!tools.nginx) return naAll(`no nginx origin: ${tools.missing.nginx}`);
      if (kind === 'sni') originCert = await certOf('ecdsa-p256', certs, dir);
      backend = await startOrigin(tools.nginx, dir, originCert);
    } else if (kind === 'redis') {
      if (!tools.redisServer) return naAll(`no redis-server: ${tools.missing.redisServer}`);
      backend = await startRedis(tools.redisServer, dir);
    } else if (kind === 'iperf') {
      if (!tools.iperf3) return naAll(`no iperf3: ${tools.missing.iperf3}`);
      backend = await startIperf(tools.iperf3);
    } else {
      const bin = tools.postgresBin;
      if (!bin || !tools.pgbench) return naAll(`no PostgreSQL: ${tools.missing.postgresBin}`);
      const pg = { initdb: `${bin}/initdb`, postgres: `${bin}/postgres`, pgbench: tools.pgbench };
      backend = await startPostgres(pg, dir);
    }
  } catch (err) {
    return naAll(`backend failed to start: ${(err as Error).message}`);
  }
  log(`${kind} backend on 127.0.0.1:${backend.port}`);
  let started: Started[] = [];
  let current: FrontendKind | null = null;
  // Groups of only the newer scenarios start only the contenders those run; the all-cores group
  // starts each in its two-thread form.
  const allCores = kind === 'cores';
  const onlyCore = scenarios.every((s) => s.core);
  const group: GroupContext = { baselinePort: null };
  const stopStarted = async () => {
    for (const s of started) if (s.running?.child) await stopChild(s.running.child);
    started = [];
  };
  const startAll = async (frontendKind: FrontendKind) => {
    const frontend = await frontendOf(frontendKind, certs, dir);
    // The PROXY protocol frontends send their header to the origin's port that expects one;
    // the SNI group's clients speak TLS with the origin's TLS port.
    const port =
      kind === 'sni'
        ? (backend.tlsPort ?? 0)
        : frontend.kind === 'proxy-v2'
          ? (backend.proxyPort ?? 0)
          : backend.port;
    for (const c of contenders) {
      if (onlyCore && !inCore(c.name)) continue;
      if (allCores && c.name !== DIRECT && !c.allCores) continue;
      // Without a proxy nothing terminates TLS: direct has no row there.
      if (frontend.kind === 'tls' && c.name === DIRECT) continue;
      if (c.unavailable) {
        started.push({ contender: c, running: null, failure: c.unavailable });
        continue;
      }
      try {
        const running = await c.start(port, dir, allCores, frontend);
        started.push({ contender: c, running, failure: null });
        if (c.name === BASELINE) group.baselinePort = running.port;
        log(
          `started ${c.name} (${frontendKind}) on 127.0.0.1:${running.port}${running.child ? ` (pid ${running.child.pid})` : ''}`,
        );
      } catch (err) {
        started.push({
          contender: c,
          running: null,
          failure: `failed to start: ${(err as Error).message}`,
        });
        log(`${c.name} failed to start: ${(err as Error).message}`);
      }
    }
    if (frontend.kind === 'tls') await checkTls(frontendKind, started, notes);
    if (originCert) {
      const label = frontend.kind === 'sni' ? 'sni-route' : 'sni-plain';
      await checkTls(label, started, notes, { servername: SNI_NAME, origin: originCert });
    }
  };
  try {
    for (const s of scenarios) {
      const frontendKind = s.frontend ?? 'plain';
      if (frontendKind !== current) {
        await stopStarted();
        group.baselinePort = null;
        await startAll(frontendKind);
        current = frontendKind;
      }
      const tool = tools[s.tool];
      if (!tool) {
        const why = `${s.tool} missing: ${tools.missing[s.tool]}`;
        out.set(
          s.id,
          started.map((x) => ({ name: x.contender.name, samples: [], failure: why })),
        );
        continue;
      }
      log(`scenario ${s.id}: ${s.how}`);
      const brief = s.core && o.quick;
      const seconds = brief ? QUICK_CORE_SECONDS : o.seconds;
      out.set(
        s.id,
        await runScenario(s, started, {
          ...o,
          seconds,
          warmupSeconds: brief ? 0 : o.warmupSeconds,
          retryNoisy: !o.quick && !allCores,
          tools,
          log,
          group,
        }),
      );
    }
  } finally {
    await stopStarted();
    await stopChild(backend.child);
  }
  return out;
}

/** The Frontend of a scenario, making its certificate the first time one is asked for. */
async function frontendOf(
  kind: FrontendKind,
  certs: Map<KeyType, CertFiles>,
  dir: string,
): Promise<Frontend> {
  if (kind === 'plain') return PLAIN;
  if (kind === 'proxy-v2') return { kind: 'proxy-v2' };
  // A port nothing listens on (freePort closes it again): the default backend no client of the
  // SNI scenario may reach.
  if (kind === 'sni') return { kind: 'sni', serverName: SNI_NAME, deadPort: await freePort() };
  const keyType: KeyType = kind === 'tls-ecdsa' ? 'ecdsa-p256' : 'rsa-2048';
  return { kind: 'tls', cert: await certOf(keyType, certs, dir) };
}

/** The run's certificate of `keyType`, made the first time it is asked for. */
async function certOf(
  keyType: KeyType,
  certs: Map<KeyType, CertFiles>,
  dir: string,
): Promise<CertFiles> {
  let cert = certs.get(keyType);
  if (!cert) {
    cert = await makeCert(keyType, dir);
    certs.set(keyType, cert);
  }
  return cert;
}

/**
 * Handshakes once with every TLS contender and notes what it served: the comparison is only fair
 * when all of them negotiate the same protocol, cipher and group with the same certificate. A
 * contender that cannot handshake is failed here rather than in every round. With `passthrough`
 * (the SNI group) the probe sends its server name, and the handshake must be the origin's own:
 * a contender that served any other certificate did not pass the TLS through, and is failed.
 */
async function checkTls(
  kind: string,
  started: Started[],
  notes: string[],
  passthrough?: { servername: string; origin: CertFiles },
): Promise<void> {
  const seen = new Map<string, string>();
  for (const s of started) {
    if (!s.running || s.failure) continue;
    try {
      const negotiated = await probeTls(s.running.port, passthrough?.servername);
      const line = describeNegotiated(negotiated);
      seen.set(s.contender.name, line);
      log(`  ${s.contender.name} (${kind}): ${line}`);
      if (passthrough && negotiated.fingerprint !== passthrough.origin.fingerprint) {
        s.failure = `TLS probe: a certificate other than the origin's (${line})`;
        log(`  ${s.contender.name} (${kind}): ${s.failure}`);
      }
    } catch (err) {
      s.failure = `TLS probe: ${(err as Error).message}`;
      log(`  ${s.contender.name} (${kind}): ${s.failure}`);
    }
  }
  const distinct = new Set(seen.values());
  if (distinct.size === 1 && passthrough) {
    notes.push(
      `${kind}: through every proxy (and direct) the client completed ${[...distinct][0]} ` +
        `with the origin, SNI \`${passthrough.servername}\`.`,
    );
  } else if (distinct.size === 1) {
    notes.push(`${kind}: every proxy served ${[...distinct][0]}.`);
  } else {
    const each = [...seen].map(([name, line]) => `${name} ${line}`).join('; ');
    notes.push(`${kind}: **the proxies did not negotiate alike**: ${each}.`);
    log(`warning: ${kind}: the proxies did not negotiate alike`);
  }
}

/** The idle scenario: each round starts every proxy afresh in front of one sink. */
async function runIdle(contenders: Contender[], o: Options, dir: string): Promise<IdleRuns[]> {
  const proxies = contenders.filter((c) => c.name !== DIRECT);
  const runs = proxies.map(
    (c): IdleRuns => ({ name: c.name, samples: [], failure: c.unavailable }),
  );
  const sink = await startSink();
  log(`scenario idle: ${o.idleConnections} connections, ${o.idleSeconds} s idle`);
  try {
    for (let round = 0; round < o.idleRounds; round++) {
      const k = round % proxies.length;
      for (const c of [...proxies.slice(k), ...proxies.slice(0, k)]) {
        const r = runs.find((x) => x.name === c.name) as IdleRuns;
        if (r.failure) continue;
        let running: Awaited<ReturnType<Contender['start']>> | null = null;
        try {
          running = await c.start(sink.port, dir);
          const sample = await measureIdle(running, sink, {
            connections: o.idleConnections,
            idleSeconds: o.idleSeconds,
          });
          r.samples.push({ ...sample, round });
          log(
            `  round ${round + 1}/${o.idleRounds} ${c.name}: ` +
              `${(sample.rssPerConnectionBytes / 1024).toFixed(2)} KiB/connection, ` +
              `idle CPU ${sample.idleCpuPercent.toFixed(3)} %`,
          );
        } catch (err) {
          r.failure = (err as Error).message;
          log(`  round ${round + 1}/${o.idleRounds} ${c.name}: FAILED ${r.failure}`);
        } finally {
          if (running?.child) await stopChild(running.child);
        }
      }
    }
  } finally {
    await sink.close();
  }
  return runs;
}

function writeResults(r: Results, o: Options) {
  const svg = chartOf(r);
  const write = (base: string) => {
    writeFileSync(`${base}.svg`, svg);
    const name = base.slice(base.lastIndexOf('/') + 1);
    writeFileSync(`${base}.md`, markdownOf(r, `${name}.svg`));
    log(`wrote ${base}.md and .svg`);
  };
  if (o.complete) {
    write(join(RESULTS, 'latest'));
    write(join(RESULTS, `${r.info.date}-${cpuSlug(r.info.machine.cpuModel)}`));
    // The results are written by now: a README without its markers costs a warning, not the run.
    try {
      log(`README.md: performance table ${updateReadme() ? 'rewritten' : 'unchanged'}`);
    } catch (err) {
      log(`warning: README.md table not rewritten: ${(err as Error).message}`);
    }
  } else {
    // Quick and partial runs are smoke checks: they must not replace the committed results.
    write(join(RESULTS, 'tmp', o.quick ? 'quick' : 'partial'));
  }
  console.log(`\n${markdownOf(r, 'chart.svg').split('\n## ')[1] ?? ''}`);
}

/**
 * Busy percentage of CPU 0 and CPU 1 over two seconds, and the processes that kept them busy
 * (any using more than 5 % of a CPU).
 */
async function backgroundLoad(): Promise<Background> {
  const before = [cpuBusySeconds(LOAD_CPU), cpuBusySeconds(PROXY_CPU)];
  const procsBefore = cpuByProcess();
  const started = performance.now();
  await sleep(2000);
  const wall = (performance.now() - started) / 1000;
  const busiest: string[] = [];
  for (const [pid, p] of cpuByProcess()) {
    const share = ((p.seconds - (procsBefore.get(pid)?.seconds ?? p.seconds)) / wall) * 100;
    if (share > 5 && pid !== process.pid)
      busiest.push(`${p.name} (pid ${pid}) ${share.toFixed(0)} %`);
  }
  return {
    cpu0: ((cpuBusySeconds(LOAD_CPU) - (before[0] ?? 0)) / wall) * 100,
    cpu1: ((cpuBusySeconds(PROXY_CPU) - (before[1] ?? 0)) / wall) * 100,
    busiest,
  };
}

function commandLine(): string {
  const args = process.argv.slice(2);
  return args.length ? `npm run bench -- ${args.join(' ')}` : 'npm run bench';
}

function openFileLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m?.[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m?.[1] ?? 1024);
}

main().then(
  async (code) => {
    await stopAll();
    process.exit(code);
  },
  async (err) => {
    console.error(`bench: harness failure: ${(err as Error)?.stack ?? err}`);
    await stopAll();
    process.exit(1);
  },
);
