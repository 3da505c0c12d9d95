import { ErrorCode, SwitchyardError } from '../errors.ts';
import type { Engine, EngineName, EngineOptions } from './engine.ts';
import { NodeEngine } from './node.ts';

/** The engine of the runtime this process runs on. */
export function runtimeEngineName(): EngineName {
  return 'Bun' in globalThis ? 'bun' : 'node';
}

/** Creates the named engine; it must match the runtime this process runs on. */
export async function createEngine(name: EngineName, options: EngineOptions): Promise<Engine> {
  if (name !== runtimeEngineName()) {
    throw new SwitchyardError(
      ErrorCode.ENGINE_UNAVAILABLE,
      `engine "${name}" cannot run inside ${runtimeEngineName()}`,
    );
  }
  if (name === 'node') return new NodeEngine(options);
  throw new SwitchyardError(ErrorCode.ENGINE_UNAVAILABLE, `engine "${name}" is not built yet`);
}
