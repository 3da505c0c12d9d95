/**
 * What the numbers were measured on: CPU model, kernel, and the version of every program in the
 * comparison. Results from different machines or versions are not comparable; the report says
 * which ones it comes from.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Tools } from './install.ts';

export interface Machine {
  cpuModel: string;
  cpus: number;
  kernel: string;
  versions: Record<string, string>;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUN = `${ROOT}node_modules/.bin/bun`;

export function describeMachine(tools: Tools): Machine {
  const versions: Record<string, string> = { node: process.version };
  const first = (cmd: string | null, args: string[], pattern: RegExp) => {
    if (!cmd) return 'n/a';
    const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 10_000 });
    return pattern.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1] ?? 'unknown';
  };
  versions.bun = first(BUN, ['--version'], /^(\S+)/);
  versions.haproxy = first(tools.haproxy, ['-v'], /version (\S+)/);
  versions.nginx = first(tools.nginx, ['-v'], /nginx\/(\S+)/);
  versions.redis = first(tools.redisServer, ['--version'], /v=(\S+)/);
  versions.wrk = first(tools.wrk, ['-v'], /wrk (\S+)/);
  versions['node-tcp-proxy'] = first(
    process.execPath,
    ['-p', "require('node-tcp-proxy/package.json').version"],
    /^(\S+)/,
  );
  versions.switchyard = switchyardVersion();
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown CPU',
    cpus: cpus().length,
    kernel: release(),
    versions,
  };
}

/**
 * switchyard changes while it is benchmarked: the commit, whether the work tree differs from it,
 * and when dist/ (what actually runs) was built.
 */
function switchyardVersion(): string {
  const git = (args: string[]) =>
    spawnSync('git', args, { cwd: ROOT, encoding: 'utf8', timeout: 10_000 }).stdout?.trim() ?? '';
  const commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown commit';
  const dirty = git(['status', '--porcelain', '--', 'src', 'bin']) ? ', src/ modified' : '';
  let built = 'not built';
  try {
    built = `dist/ built ${statSync(`${ROOT}dist/cli.js`).mtime.toISOString().slice(0, 19)}Z`;
  } catch {
    // dist/ missing: contenders.ts builds it, or reports switchyard n/a.
  }
  return `${commit}${dirty}, ${built}`;
}

/** The CPU model as a file-name fragment: "Intel(R) Xeon(R) Processor @ 2.50GHz" → "intel-xeon-processor-2-50ghz". */
export function cpuSlug(model: string): string {
  return model
    .toLowerCase()
    .replace(/\((r|tm)\)/g, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}
