/** `switchyard --version`: what runs, so a bug report says it in one paste. */
import { readFileSync } from 'node:fs';
import type { EngineName } from '../engine/engine.ts';
import { runtimeEngineName } from '../engine/select.ts';
import { isSingleExecutable, singleExecutableAsset } from '../runtime-check.ts';

/**
 * The package's version, from package.json: two levels up from src/cli/ and dist/cli/ alike, or
 * the copy the single executable carries.
 */
export function packageVersion(): string {
  const text = isSingleExecutable()
    ? singleExecutableAsset('package.json').toString('utf8')
    : readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return String(JSON.parse(text).version);
}

/** What each engine's sockets are, as the README's "How it works" says. */
const ENGINE_SOCKETS = {
  node: 'libuv TCP handles, no net.Socket',
  bun: 'Bun.listen and Bun.connect',
} as const;

/**
 * Three lines: switchyard's version, the runtime this process is (name, version, binary: `npx`
 * and a shell may find different ones), and the socket engine it runs. `--engine X --version`
 * asks the runtime that engine runs on (the CLI hands off first), so the lines are that one's.
 */
export function versionText(engine: EngineName = runtimeEngineName()): string {
  const exe = isSingleExecutable() ? ', single executable' : '';
  const runtime =
    runtimeEngineName() === 'bun'
      ? `bun ${process.versions.bun} (${process.execPath})`
      : `node ${process.versions.node} (${process.execPath}${exe})`;
  return [
    `switchyard ${packageVersion()}`,
    `runtime: ${runtime}`,
    `engine: ${engine} (${ENGINE_SOCKETS[engine]})`,
  ].join('\n');
}
