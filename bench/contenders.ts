/**
 * The proxies compared, and how to start each one on the proxy CPU in front of a backend.
 *
 * Every proxy gets the same budget where it has a knob for it: one thread or process, room for
 * MAX_CONNECTIONS clients, 16 KiB buffers (HAProxy's, nginx's and switchyard's default alike),
 * and no per-connection logging.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_CONNECTIONS, nginxArgs, nginxPreamble } from './backends.ts';
import type { CertFiles } from './certs.ts';
import type { Tools } from './install.ts';
import {
  type Child,
  freePort,
  LOAD_CPU,
  PROXY_CPU,
  spawnPinned,
  stopChild,
  waitForPort,
} from './proc.ts';

/** A proxy listening for the benchmark. */
export interface ListeningProxy {
  /** Where clients connect. */
  port: number;
  /** The process to measure; null for "direct", which has no proxy. */
  child: Child | null;
}

/**
 * What a proxy's clients speak and what it sends on. `proxy-v2`: clients begin with a PROXY v2
 * header, and the proxy sends one to the server (which must accept it: the origin's PROXY
 * port). `tls`: clients speak TLS, terminated by the proxy with `cert`; the server side is plain.
 * `sni`: clients speak TLS to the server through the proxy, which reads the ClientHello's server
 * name without decrypting and routes `serverName` to the server; its default backend is a
 * server on `deadPort`, where nothing listens, so a connection only reaches the server when the
 * rule matched.
 */
export type Frontend =
  | { kind: 'plain' }
  | { kind: 'proxy-v2' }
  | { kind: 'tls'; cert: CertFiles }
  | { kind: 'sni'; serverName: string; deadPort: number };

export const PLAIN: Frontend = { kind: 'plain' };

/** A contender of the benchmark. */
export interface Contender {
  /** Short id, used by --only and in the tables. */
  name: string;
  /** What it is, for the report. */
  description: string;
  /** Why it cannot run here, or null when it can. */
  unavailable: string | null;
  /**
   * Starts it in front of 127.0.0.1:backendPort, with its files in `dir`: pinned to the proxy
   * CPU with one thread, or with `allCores` unpinned with two (HAProxy `nbthread 2`, switchyard
   * `--workers 2`). Only HAProxy and switchyard take a `frontend` other than plain; direct
   * takes `proxy-v2` (the client's header goes straight to the origin) and `sni` (so does its
   * ClientHello).
   */
  start(
    backendPort: number,
    dir: string,
    allCores?: boolean,
    frontend?: Frontend,
  ): Promise<ListeningProxy>;
  /** Has a two-thread form for the all-cores scenario. */
  allCores?: boolean;
}

/** CPUs of a contender: the proxy CPU, or both for the all-cores scenario. */
function cpusOf(allCores: boolean | undefined): number | string {
  return allCores ? `${LOAD_CPU},${PROXY_CPU}` : PROXY_CPU;
}

/**
 * How switchyard's runtimes print their GC pauses (parsed by gcPauseOf): Node's flag goes before
 * the script; Bun's JavaScriptCore reads it from the environment.
 */
const TRACE_GC_FLAGS = ['--trace-gc'];
const TRACE_GC_ENV = { ...process.env, BUN_JSC_logGC: '1' };

/** The contender every ratio is taken against. */
export const BASELINE = 'haproxy';
/** The contender without a proxy: the ceiling of what the backend and the client can do. */
export const DIRECT = 'direct';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SWITCHYARD = join(ROOT, 'bin', 'switchyard.js');
const BUN = join(ROOT, 'node_modules', '.bin', 'bun');

/** Every contender, in report order; those that cannot run here say why. */
export function listContenders(tools: Tools): Contender[] {
  const switchyard = probeSwitchyard();
  // Said outright where the CLI knows the flag, so a changed default cannot slip a log into
  // the numbers (the other proxies log nothing per connection either).
  const base = switchyard.help.includes('--access-log') ? ['--access-log', 'off'] : [];
  const list: Contender[] = [
    {
      name: DIRECT,
      description: 'no proxy: the client talks to the backend',
      unavailable: null,
      start: async (backendPort, _dir, _allCores, frontend = PLAIN) => {
        if (frontend.kind === 'tls') throw new Error('no TLS without a proxy to terminate it');
        return { port: backendPort, child: null };
      },
    },
    {
      name: BASELINE,
      description: 'HAProxy, TCP mode, one thread',
      unavailable: tools.haproxy ? null : (tools.missing.haproxy ?? 'haproxy missing'),
      allCores: true,
      start: (backendPort, dir, allCores, frontend) =>
        startHaproxy(tools.haproxy ?? '', backendPort, dir, allCores, frontend),
    },
    {
      name: 'nginx',
      description: 'nginx stream module, one worker',
      unavailable: !tools.nginx
        ? (tools.missing.nginx ?? 'nginx missing')
        : !tools.nginxStreamModule
          ? (tools.missing.nginxStreamModule ?? 'stream module missing')
          : null,
      start: (backendPort, dir) =>
        startNginxStream(tools.nginx ?? '', tools.nginxStreamModule ?? '', backendPort, dir),
    },
    {
      name: 'node-tcp-proxy',
      description: 'node-tcp-proxy (npm), on the same Node as switchyard',
      unavailable: tools.nodeTcpProxy ? null : (tools.missing.nodeTcpProxy ?? 'missing'),
      start: (backendPort) => startNodeTcpProxy(tools.nodeTcpProxy ?? '', backendPort),
    },
    {
      name: 'switchyard-node',
      description: 'switchyard, Node engine',
      unavailable: switchyard.unavailable,
      allCores: switchyard.help.includes('--workers'),
      start: (backendPort, dir, allCores, frontend) =>
        startSwitchyard('switchyard-node', backendPort, base, allCores, frontend, dir),
    },
  ];
  // Later engines and modes join only once the CLI offers them, so this file needs no edit
  // the day they land.
  if (switchyard.help.includes('--engine') && switchyard.bunEngine) {
    list.push({
      name: 'switchyard-bun',
      description: 'switchyard, Bun engine',
      unavailable: switchyard.unavailable,
      allCores: switchyard.help.includes('--workers'),
      start: (backendPort, dir, allCores, frontend) =>
        startSwitchyard(
          'switchyard-bun',
          backendPort,
          [...base, '--engine', 'bun'],
          allCores,
          frontend,
          dir,
        ),
    });
  }
  if (switchyard.help.includes('--workers')) {
    list.push({
      name: 'switchyard-node-w2',
      description: 'switchyard, Node engine, --workers 2 (both on the proxy CPU)',
      unavailable: switchyard.unavailable,
      start: (backendPort) =>
        startSwitchyard('switchyard-node-w2', backendPort, [...base, '--workers', '2']),
    });
  }
  return list;
}

interface SwitchyardProbe {
  unavailable: string | null;
  help: string;
  bunEngine: boolean;
}

function probeSwitchyard(): SwitchyardProbe {
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) {
    // The developer keeps dist/ current; building it once here makes a fresh clone work.
    console.log('bench: dist/ missing, running npm run build');
    const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    if (build.status !== 0) {
      return { unavailable: 'npm run build failed', help: '', bunEngine: false };
    }
  }
  const help = spawnSync(process.execPath, [SWITCHYARD, '--help'], { encoding: 'utf8' });
  if (help.status !== 0) {
    const why = `switchyard --help failed: ${(help.stderr ?? '').trim().slice(0, 200)}`;
    return { unavailable: why, help: '', bunEngine: false };
  }
  const bun = spawnSync(process.execPath, [SWITCHYARD, '--engine', 'bun', '--help'], {
    encoding: 'utf8',
  });
  return { unavailable: null, help: help.stdout, bunEngine: bun.status === 0 };
}

async function startHaproxy(
  haproxy: string,
  backendPort: number,
  dir: string,
  allCores?: boolean,
  frontend: Frontend = PLAIN,
): Promise<ListeningProxy> {
  const port = await freePort();
  // TLS keeps HAProxy's defaults (session cache, tickets, TLSv1.2 minimum), as switchyard keeps
  // node:tls's; the clients never resume, so every handshake is a full one on both.
  const bind =
    frontend.kind === 'proxy-v2'
      ? ' accept-proxy'
      : frontend.kind === 'tls'
        ? ` ssl crt ${frontend.cert.combined}`
        : '';
  const send = frontend.kind === 'proxy-v2' ? ' send-proxy-v2' : '';
  // SNI routing as HAProxy's documentation gives it: wait (up to 5 s, switchyard's default
  // handshake timeout too) for a whole ClientHello, then pick the backend by its server name.
  const route =
    frontend.kind === 'sni'
      ? `  tcp-request inspect-delay 5s
  tcp-request content accept if { req.ssl_hello_type 1 }
  use_backend origin if { req.ssl_sni -i ${frontend.serverName} }
  default_backend dead

backend dead
  server dead 127.0.0.1:${frontend.deadPort}
`
      : '  default_backend origin\n';
  const cfg = join(dir, `haproxy-${port}.cfg`);
  writeFileSync(
    cfg,
    `global
  nbthread ${allCores ? 2 : 1}
  maxconn ${MAX_CONNECTIONS}

defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h

frontend bench
  bind 127.0.0.1:${port}${bind}
  maxconn ${MAX_CONNECTIONS}
${route}
backend origin
  server origin 127.0.0.1:${backendPort}${send}
`,
  );
  // -db: foreground, no daemon, so the harness owns the process and sees it exit.
  return startChild('haproxy', port, haproxy, ['-db', '-f', cfg], cpusOf(allCores));
}

async function startNginxStream(
  nginx: string,
  module: string,
  backendPort: number,
  dir: string,
): Promise<ListeningProxy> {
  const port = await freePort();
  const conf = join(dir, `nginx-stream-${port}.conf`);
  writeFileSync(
    conf,
    `${nginxPreamble(dir, `nginx-stream-${port}`, `load_module ${module};`)}
stream {
  server {
    listen 127.0.0.1:${port} backlog=4096;
    proxy_pass 127.0.0.1:${backendPort};
    proxy_timeout 1h;
  }
}
`,
  );
  return startChild('nginx', port, nginx, nginxArgs(dir, conf));
}

async function startNodeTcpProxy(cli: string, backendPort: number): Promise<ListeningProxy> {
  const port = await freePort();
  // -h is its listen host, not help; -q keeps it from logging.
  const args = [cli, '-p', String(port), '-h', '127.0.0.1', '-n', '127.0.0.1'];
  args.push('-s', String(backendPort), '-q');
  return startChild('node-tcp-proxy', port, process.execPath, args);
}

async function startSwitchyard(
  name: string,
  backendPort: number,
  extra: string[],
  allCores?: boolean,
  frontend: Frontend = PLAIN,
  dir = '',
): Promise<ListeningProxy> {
  const port = await freePort();
  const args =
    frontend.kind === 'plain'
      ? ['--listen', `127.0.0.1:${port}`, '--backend', `127.0.0.1:${backendPort}`]
      : ['--config', writeSwitchyardConfig(name, port, backendPort, frontend, dir)];
  if (frontend.kind === 'plain') args.push('--max-connections', String(MAX_CONNECTIONS));
  args.push('--log-level', 'warn', ...extra);
  if (allCores) args.push('--workers', '2');
  const cpus = cpusOf(allCores);
  // GC pauses are printed (a line per collection, a few per second under load: noise well under
  // the run-to-run spread) so the latency scenarios can put them beside the tail.
  const gcArgs = [...TRACE_GC_FLAGS, SWITCHYARD, ...args];
  try {
    return await startChild(name, port, process.execPath, gcArgs, cpus, TRACE_GC_ENV);
  } catch (err) {
    // The Bun engine may need the CLI itself to run under Bun; try that before giving up.
    if (!extra.includes('bun') || !existsSync(BUN)) throw err;
    return startChild(name, port, BUN, [SWITCHYARD, ...args], cpus, TRACE_GC_ENV);
  }
}

/**
 * A config file for a frontend the command line cannot describe: the shorthand's one frontend
 * and one server, plus the PROXY protocol on both sides, TLS termination, or SNI routing (to
 * `origin` by the rule, to the dead server by default).
 */
export function switchyardConfig(port: number, backendPort: number, frontend: Frontend): string {
  const frontendExtra =
    frontend.kind === 'proxy-v2'
      ? '\n    proxyProtocol: { accept: v2 }'
      : frontend.kind === 'tls'
        ? `\n    tls: { certificates: [{ cert: ${frontend.cert.cert}, key: ${frontend.cert.key} }] }`
        : frontend.kind === 'sni'
          ? `\n    sni: [{ match: ${frontend.serverName}, backend: origin }]`
          : '';
  const send = frontend.kind === 'proxy-v2' ? ', sendProxy: v2' : '';
  const dead =
    frontend.kind === 'sni'
      ? `
  - name: dead
    servers:
      - { name: dead, address: 127.0.0.1:${frontend.deadPort} }`
      : '';
  return `frontends:
  - name: bench
    listen: 127.0.0.1:${port}
    backend: ${frontend.kind === 'sni' ? 'dead' : 'origin'}
    maxConnections: ${MAX_CONNECTIONS}${frontendExtra}
backends:
  - name: origin
    servers:
      - { name: origin, address: 127.0.0.1:${backendPort}${send} }${dead}
`;
}

function writeSwitchyardConfig(
  name: string,
  port: number,
  backendPort: number,
  frontend: Frontend,
  dir: string,
): string {
  const file = join(dir, `${name}-${port}.yaml`);
  writeFileSync(file, switchyardConfig(port, backendPort, frontend));
  return file;
}

async function startChild(
  name: string,
  port: number,
  command: string,
  args: string[],
  cpus: number | string = PROXY_CPU,
  env?: NodeJS.ProcessEnv,
): Promise<ListeningProxy> {
  const child = spawnPinned(name, cpus, command, args, env);
  try {
    await waitForPort(port, child);
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return { port, child };
}
