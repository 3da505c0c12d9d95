/**
 * The tools the benchmark drives, found or installed from Debian.
 *
 * Only what is missing gets installed, and every step is printed: a benchmark that quietly
 * changes the machine it measures is hard to trust. A tool that cannot be had makes the scenarios
 * or contenders that need it "n/a" with the reason; it is not a harness failure.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** Debian packages, each with the file that proves it usable. */
const PACKAGES = [
  { name: 'haproxy', proof: '/usr/sbin/haproxy' },
  { name: 'nginx-light', proof: '/usr/sbin/nginx' },
  { name: 'libnginx-mod-stream', proof: '/usr/lib/nginx/modules/ngx_stream_module.so' },
  { name: 'wrk', proof: '/usr/bin/wrk' },
  // redis-server pulls in redis-tools, which holds redis-benchmark.
  { name: 'redis-server', proof: '/usr/bin/redis-server' },
  { name: 'redis-tools', proof: '/usr/bin/redis-benchmark' },
  { name: 'iperf3', proof: '/usr/bin/iperf3' },
  // The server, initdb and pgbench live under /usr/lib/postgresql/MAJOR/bin (see postgresBin).
  { name: 'postgresql', proof: '/usr/share/postgresql-common' },
] as const;

/** Absolute paths of the tools, or null with why each one is missing. */
export interface Tools {
  haproxy: string | null;
  nginx: string | null;
  nginxStreamModule: string | null;
  wrk: string | null;
  redisServer: string | null;
  redisBenchmark: string | null;
  /** The CLI of the npm peer contender, node-tcp-proxy. */
  nodeTcpProxy: string | null;
  iperf3: string | null;
  /** PostgreSQL's bin directory (postgres, initdb, pgbench), the highest major installed. */
  postgresBin: string | null;
  pgbench: string | null;
  /** The harness's own runtime, which runs http-load.ts: always there. */
  node: string | null;
  /** Why a tool above is null, by tool key. */
  missing: Record<string, string>;
}

/** Installs what is missing (as root) and returns where each tool is. */
export function ensureTools(): Tools {
  const absent = PACKAGES.filter((p) => !isInstalled(p.name) || !existsSync(p.proof));
  let installError = '';
  if (absent.length === 0) {
    console.log('install: every Debian package is present');
  } else if (process.getuid?.() !== 0) {
    installError = `not root, cannot apt-get install ${absent.map((p) => p.name).join(' ')}`;
    console.log(`install: ${installError}`);
  } else {
    installError = aptInstall(absent.map((p) => p.name));
  }
  const found = (proof: string): string | null => (existsSync(proof) ? proof : null);
  const tools: Tools = {
    haproxy: found('/usr/sbin/haproxy'),
    nginx: found('/usr/sbin/nginx'),
    nginxStreamModule: found('/usr/lib/nginx/modules/ngx_stream_module.so'),
    wrk: found('/usr/bin/wrk'),
    redisServer: found('/usr/bin/redis-server'),
    redisBenchmark: found('/usr/bin/redis-benchmark'),
    nodeTcpProxy: resolveNodeTcpProxy(),
    iperf3: found('/usr/bin/iperf3'),
    postgresBin: postgresBin(),
    pgbench: null,
    node: process.execPath,
    missing: {},
  };
  tools.pgbench = tools.postgresBin ? found(`${tools.postgresBin}/pgbench`) : null;
  for (const [key, value] of Object.entries(tools)) {
    if (value === null) {
      tools.missing[key] = installError || `${key} not found after install`;
    }
  }
  if (tools.nodeTcpProxy === null) {
    // It is a devDependency: `npm ci` brings it. The harness does not run npm itself so it never
    // rewrites node_modules or the lockfile under a developer's feet.
    tools.missing.nodeTcpProxy = 'node-tcp-proxy not in node_modules (run npm ci)';
  }
  return tools;
}

function isInstalled(pkg: string): boolean {
  // dpkg-query's own field syntax, not a template placeholder.
  const format = '-f=$' + '{Status}';
  const r = spawnSync('dpkg-query', ['-W', format, pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/** Runs apt-get install; returns '' on success or the reason it failed. */
function aptInstall(names: string[]): string {
  // Debian starts a package's service on install. The benchmark runs its own foreground copies
  // on its own ports, so a policy-rc.d that says "no" is put in place unless one already is.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const args = ['install', '-y', '--no-install-recommends', ...names];
    console.log(`install: apt-get ${args.join(' ')}`);
    let r = spawnSync('apt-get', args, { env, stdio: 'inherit', timeout: 300_000 });
    if (r.status !== 0) {
      // A fresh machine has no package lists yet; one update is the usual cure.
      console.log('install: apt-get update');
      spawnSync('apt-get', ['update'], { env, stdio: 'inherit', timeout: 300_000 });
      console.log(`install: apt-get ${args.join(' ')}`);
      r = spawnSync('apt-get', args, { env, stdio: 'inherit', timeout: 300_000 });
    }
    return r.status === 0 ? '' : `apt-get install ${names.join(' ')} failed (status ${r.status})`;
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
}

function postgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const majors = readdirSync(root)
    .filter(
      (d) => existsSync(`${root}/${d}/bin/postgres`) && existsSync(`${root}/${d}/bin/pgbench`),
    )
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] ? `${root}/${majors[0]}/bin` : null;
}

function resolveNodeTcpProxy(): string | null {
  try {
    const require = createRequire(import.meta.url);
    const pkgJson = require.resolve('node-tcp-proxy/package.json');
    const cli = pkgJson.replace(/package\.json$/, 'tcp-proxy-cli.js');
    return existsSync(cli) ? cli : null;
  } catch {
    return null;
  }
}
