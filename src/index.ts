/** switchyard's library surface. */
export { BufferPool } from './core/buffer-pool.ts';
export type { ConnectionInfo, ProxyOptions, ProxyStats } from './core/proxy.ts';
export { ProxyServer } from './core/proxy.ts';
export { CloseReason } from './core/session.ts';
export { isLegal, State, TRANSITIONS } from './core/state.ts';
export { defaults } from './defaults.ts';
export type { Engine, EngineName, EngineSocket, SocketEvents } from './engine/engine.ts';
export { createEngine, runtimeEngineName } from './engine/select.ts';
export { ErrorCode, SwitchyardError } from './errors.ts';
export { createLogger } from './log.ts';
