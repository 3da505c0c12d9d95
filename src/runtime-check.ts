/**
 * What the runtime this process runs on can do: its version against what a feature needs, and
 * whether it is a single executable (`npm run build:exe`). Imports nothing of the project, so any
 * layer may ask. The range the whole command needs (package.json's `engines`) is checked before
 * any of this loads, by bin/switchyard.js, which must parse on every old Node.
 */

/** -1, 0 or 1 as `a` is below, equal to or above `b` (dotted numbers, `v` prefix allowed). */
export function compareVersions(a: string, b: string): number {
  const pa = a.replace(/^v/, '').split('.').map(Number);
  const pb = b.replace(/^v/, '').split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/**
 * Null when this runtime is Node `minimum` or newer, else the one line a refusal prints:
 * `--engine epoll needs Node >= 26.1.0 (node:ffi); this is Node 22.23.3`. Under Bun (which
 * reports the Node version it implements) the line names Bun.
 */
export function nodeFeatureProblem(
  feature: string,
  minimum: string,
  versions: NodeJS.ProcessVersions = process.versions,
): string | null {
  const bun = (versions as { bun?: string }).bun;
  if (bun === undefined && compareVersions(versions.node, minimum) >= 0) return null;
  const found = bun === undefined ? `Node ${versions.node}` : `Bun ${bun}`;
  return `${feature} needs Node >= ${minimum}; this is ${found}`;
}

/** `node:sea`, where the runtime has it (Node >= 20.12; not Bun). */
function seaModule(): typeof import('node:sea') | undefined {
  return process.getBuiltinModule?.('node:sea') as typeof import('node:sea') | undefined;
}

/**
 * True inside the single executable (`switchyard-linux-x64`): no package directory exists, the
 * executable itself is the command (workers run it again, without a script argument), and
 * files that ship with the package come from its assets.
 */
export function isSingleExecutable(): boolean {
  return seaModule()?.isSea() === true;
}

/** A file the single executable carries (bin/build-exe.ts lists them), by its package path. */
export function singleExecutableAsset(name: string): Buffer {
  const sea = seaModule();
  if (sea === undefined) throw new Error('not a single executable');
  return Buffer.from(sea.getAsset(name));
}

/**
 * The command that runs this switchyard again (a worker, under the same runtime): the runtime
 * and the script, or the single executable alone (its script is inside it; a script argument
 * would reach the CLI as an argument).
 */
export function selfCommand(): string[] {
  return isSingleExecutable() ? [process.execPath] : [process.execPath, process.argv[1] ?? ''];
}
