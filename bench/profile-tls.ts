/**
 * Where switchyard's time goes in TLS handshakes: runs switchyard (Node engine) under
 * `node --cpu-prof`, and with --perf also under `perf record -g`, while http-load makes full
 * handshakes through it, then prints the summaries as Markdown. `--mode terminate` (default):
 * switchyard terminates (the tls-handshake-* scenario); `--mode sni`: the handshake is the
 * origin's and switchyard routes it by the ClientHello's name (sni-route); `--mode forward`: the
 * same traffic forwarded as plain TCP (sni-plain).
 *
 *   node bench/profile-tls.ts [--mode terminate|sni|forward] [--key ecdsa-p256|rsa-2048]
 *                             [--seconds 10] [--perf]
 *
 * Files (the .cpuprofile, perf.data, configs) stay in bench/results/tmp/profile-*.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startOrigin } from './backends.ts';
import { type KeyType, makeCert } from './certs.ts';
import { type Frontend, PLAIN, switchyardConfig } from './contenders.ts';
import { ensureTools } from './install.ts';
import { runHttpLoad } from './load.ts';
import { treeCpuSeconds } from './measure.ts';
import {
  freePort,
  installCleanup,
  PROXY_CPU,
  pinSelf,
  runPinned,
  spawnPinned,
  stopAll,
  stopChild,
  waitForPort,
} from './proc.ts';
import { shareTable, summarizeCpuProfile, summarizePerfReport } from './profile-summary.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SWITCHYARD = join(ROOT, 'bin', 'switchyard.js');
const CONNECTIONS = 50;
/** The name the client sends (the bench certificate's SAN) and the SNI rule matches. */
const SERVER_NAME = 'localhost';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      key: { type: 'string', default: 'ecdsa-p256' },
      seconds: { type: 'string', default: '10' },
      perf: { type: 'boolean', default: false },
      mode: { type: 'string', default: 'terminate' },
    },
  });
  const mode = values.mode;
  if (mode !== 'terminate' && mode !== 'sni' && mode !== 'forward')
    throw new Error('--mode: terminate, sni or forward');
  const keyType = values.key as KeyType;
  if (keyType !== 'ecdsa-p256' && keyType !== 'rsa-2048')
    throw new Error('--key: ecdsa-p256 or rsa-2048');
  const seconds = Number(values.seconds);
  installCleanup();
  pinSelf();
  const tools = ensureTools();
  if (!tools.nginx) throw new Error(`no nginx: ${tools.missing.nginx}`);
  const tmp = join(ROOT, 'bench', 'results', 'tmp');
  mkdirSync(tmp, { recursive: true });
  const dir = mkdtempSync(join(tmp, 'profile-'));
  const cert = await makeCert(keyType, dir);
  // The origin speaks TLS itself (tlsPort) when switchyard only passes the handshake on.
  const origin = await startOrigin(tools.nginx, dir, mode === 'terminate' ? undefined : cert);
  const port = await freePort();
  const config = join(dir, 'switchyard.yaml');
  const frontend: Frontend =
    mode === 'terminate'
      ? { kind: 'tls', cert }
      : mode === 'sni'
        ? { kind: 'sni', serverName: SERVER_NAME, deadPort: await freePort() }
        : PLAIN;
  const backendPort = mode === 'terminate' ? origin.port : (origin.tlsPort as number);
  writeFileSync(config, switchyardConfig(port, backendPort, frontend));
  const args = ['--cpu-prof', `--cpu-prof-dir=${dir}`, SWITCHYARD, '--config', config];
  args.push('--log-level', 'warn', '--access-log', 'off');
  const proxy = spawnPinned('switchyard-node', PROXY_CPU, process.execPath, args);
  await waitForPort(port, proxy);
  const load = {
    port,
    path: '/small',
    connections: CONNECTIONS,
    rate: 0,
    tls: true,
    newConnection: true,
    // As the scenarios: the tls-handshake rows send no name, the passthrough ones must.
    ...(mode === 'terminate' ? {} : { servername: SERVER_NAME }),
  };
  await runHttpLoad({ ...load, seconds: 2 }); // warm-up: JIT, pools
  let perf: ReturnType<typeof spawn> | null = null;
  const perfData = join(dir, 'perf.data');
  if (values.perf) {
    perf = spawn('perf', ['record', '-F', '999', '-g', '-o', perfData, '-p', String(proxy.pid)], {
      stdio: 'ignore',
    });
    await new Promise((r) => setTimeout(r, 500));
  }
  const cpuBefore = treeCpuSeconds(proxy.pid);
  const result = await runHttpLoad({ ...load, seconds });
  const cpu = treeCpuSeconds(proxy.pid) - cpuBefore;
  if (perf) {
    perf.kill('SIGINT');
    await new Promise((r) => perf?.once('exit', r));
  }
  await stopChild(proxy, 10_000);
  await stopChild(origin.child);

  const out: string[] = [];
  const rate = result.requests / result.seconds;
  out.push(
    `## TLS handshakes (${keyType}, ${mode}), switchyard-node: ${Math.round(rate)}/s, ` +
      `${((cpu * 1e6) / result.requests).toFixed(0)} µs CPU/handshake over ${seconds} s`,
    '',
  );
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  const summary = summarizeCpuProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')));
  out.push(
    `node --cpu-prof (${(summary.busyMs / 1000).toFixed(1)} s on CPU, warm-up included):`,
    '',
  );
  out.push(...shareTable('category (self time)', summary.categories), '');
  out.push(...shareTable('function (self time)', summary.top), '');
  if (perf) {
    const report = await runPinned(
      0,
      'perf',
      ['report', '-i', perfData, '--stdio', '--no-children', '--sort', 'dso,sym', '-q'],
      120_000,
    );
    const p = summarizePerfReport(report.stdout);
    out.push('perf record -g (self time, measured window only):', '');
    out.push(...shareTable('category', p.categories), '');
    out.push(...shareTable('symbol', p.top), '');
  }
  const text = out.join('\n');
  writeFileSync(join(dir, 'summary.md'), text);
  console.log(text);
  console.log(`\nfiles in ${dir}`);
}

main().then(
  async () => {
    await stopAll();
    process.exit(0);
  },
  async (err) => {
    console.error(`profile-tls: ${(err as Error)?.stack ?? err}`);
    await stopAll();
    process.exit(1);
  },
);
