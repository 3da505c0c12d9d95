/** `switchyard --version`: what runs, so a bug report says it in one paste. */
import { readFileSync } from 'node:fs';
import { runtimeEngineName } from '../engine/select.ts';

/** The package's version, from package.json (two levels up from src/cli/ and dist/cli/ alike). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return String(pkg.version);
}

/** What each engine's sockets are, as the README's "How it works" says. */
const ENGINE_SOCKETS = {
  node: 'libuv TCP handles, no net.Socket',
  bun: 'Bun.listen and Bun.connect',
} as const;

/**
 * Three lines: switchyard's version, the runtime this process is (name, version, binary: `npx`
 * and a shell may find different ones), and the socket engine it runs by default.
 */
export function versionText(): string {
  const engine = runtimeEngineName();
  const runtime =
    engine === 'bun'
      ? `bun ${process.versions.bun} (${process.execPath})`
      : `node ${process.versions.node} (${process.execPath})`;
  return [
    `switchyard ${packageVersion()}`,
    `runtime: ${runtime}`,
    `engine: ${engine} (${ENGINE_SOCKETS[engine]})`,
  ].join('\n');
}
