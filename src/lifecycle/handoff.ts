import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineName } from '../engine/engine.ts';
import { runtimeEngineName } from '../engine/select.ts';
import { isSingleExecutable } from '../runtime-check.ts';

/** The package root, from src/lifecycle/ or dist/lifecycle/ alike: the pinned runtimes live under it. */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The command itself, which the other runtime runs with the same arguments. */
const BIN = `${PACKAGE_ROOT}bin/switchyard.js`;
/** Set in the handed-off process, so a runtime that is still the wrong one fails, not loops. */
const HANDOFF_ENV = 'SWITCHYARD_HANDOFF';

/** Where each runtime is looked for: the pinned devDependency first, then PATH. */
const CANDIDATES: Record<EngineName, { pinned: string[]; command: string }> = {
  bun: { pinned: [`${PACKAGE_ROOT}node_modules/.bin/bun`], command: 'bun' },
  node: {
    pinned: [`${PACKAGE_ROOT}node_modules/node/bin/node`, `${PACKAGE_ROOT}node_modules/.bin/node`],
    command: 'node',
  },
};

/**
 * What the one line says when neither the pinned runtime (which exists only in a checkout) nor
 * PATH has it: a package user's ways to get one.
 */
const INSTALL_ADVICE: Record<string, string> = {
  bun: 'put a bun on PATH (https://bun.sh) or `npm i -g bun`',
  node: 'put a node on PATH',
};

/** The runtime binary for `engine`, or null when neither the pinned one nor PATH has it. */
export function runtimeBinary(engine: EngineName): string | null {
  const { pinned, command } = CANDIDATES[engine];
  const onPath = (process.env.PATH ?? '').split(delimiter).map((dir) => `${dir}/${command}`);
  for (const file of [...pinned, ...onPath]) {
    try {
      accessSync(file, fsConstants.X_OK);
      return file;
    } catch {
      // not there; try the next
    }
  }
  return null;
}

/**
 * Runs this command under the runtime `engine` needs, with the same arguments. Where the runtime
 * has `process.execve` (Node >= 22.15, Bun) the process image is replaced: same pid, signals and
 * exit code are the new runtime's own, and this call does not return. Elsewhere the runtime runs
 * as a child: SIGINT, SIGTERM and SIGHUP are passed on and its exit code becomes this process's.
 * Resolves with the exit code, or 1 (with one line on stderr) when the runtime cannot be found.
 */
export function handOff(engine: EngineName, argv: string[]): Promise<number> {
  if (process.env[HANDOFF_ENV]) {
    process.stderr.write(
      `switchyard: --engine ${engine}: handed off to ${process.execPath}, which is ${runtimeEngineName()}\n`,
    );
    return Promise.resolve(1);
  }
  if (isSingleExecutable()) {
    // No package directory to run under another runtime: the executable is Node's engine only.
    process.stderr.write(
      `switchyard: --engine ${engine}: the single executable runs the node engine only; install the package (npm i -g switchyard) for ${engine}\n`,
    );
    return Promise.resolve(1);
  }
  const runtime = runtimeBinary(engine);
  if (runtime === null) {
    process.stderr.write(
      `switchyard: --engine ${engine}: no ${CANDIDATES[engine].command} binary: ${INSTALL_ADVICE[engine]}\n`,
    );
    return Promise.resolve(1);
  }
  const env = { ...process.env, [HANDOFF_ENV]: runtimeEngineName() };
  const args = [BIN, ...argv];
  if (typeof process.execve === 'function') {
    process.execve(runtime, [runtime, ...args], env);
  }
  const child = spawn(runtime, args, { stdio: 'inherit', env });
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const pass = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of signals) process.on(signal, pass);
  return new Promise<number>((resolve) => {
    child.once('error', (err) => {
      process.stderr.write(`switchyard: cannot start ${runtime}: ${err.message}\n`);
      resolve(1);
    });
    child.once('exit', (code, signal) => {
      for (const s of signals) process.off(s, pass);
      resolve(code ?? 128 + (signal ? osConstants.signals[signal] : 0));
    });
  });
}
