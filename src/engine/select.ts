import { ErrorCode, SwitchyardError } from '../errors.ts';
import type { Engine, EngineName, EngineOptions } from './engine.ts';

/** The engine of the runtime this process runs on. */
export function runtimeEngineName(): EngineName {
  return 'Bun' in globalThis ? 'bun' : 'node';
}

/**
 * Creates the named engine; it must match the runtime this process runs on. Each engine is
 * imported on demand, so Node never loads the Bun engine and Bun never loads `node:net`'s.
 */
export async function createEngine(name: EngineName, options: EngineOptions): Promise<Engine> {
  if (name !== runtimeEngineName()) {
    throw new SwitchyardError(
      ErrorCode.ENGINE_UNAVAILABLE,
      `engine "${name}" cannot run inside ${runtimeEngineName()}`,
    );
  }
  if (name === 'bun') {
    const { BunEngine } = await import('./bun.ts');
    return new BunEngine(options);
  }
  const { NodeEngine } = await import('./node.ts');
  return new NodeEngine(options);
}
