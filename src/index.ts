/** switchyard's library surface. */
export type { AdminOptions, AdminServer } from './admin/server.ts';
export { startAdminServer } from './admin/server.ts';
export type { StatsSource } from './admin/source.ts';
export type { CreateProxyOptions, ProxyHandle } from './api.ts';
export { createProxy } from './api.ts';
export { loadConfigFile, parseConfig, parseConfigYaml } from './config/load.ts';
export type {
  BackendConfig,
  BalanceAlgorithm,
  Config,
  ConfigInput,
  FrontendConfig,
  HealthCheckConfig,
  ServerConfig,
} from './config/schema.ts';
export type { RouteHook, RouteInfo } from './core/backend.ts';
export type { BalanceContext } from './core/balancer.ts';
export {
  balance,
  hashString,
  leastConnections,
  powerOfTwoChoices,
  smoothRoundRobin,
  sourceHash,
} from './core/balancer.ts';
export { BufferPool } from './core/buffer-pool.ts';
export type { EndingInfo, Fin, Rejection, SessionEnding } from './core/ending.ts';
export { ENDINGS, Ending } from './core/ending.ts';
export type { ConnectionLog, ProxyOptions } from './core/proxy.ts';
export { ProxyServer } from './core/proxy.ts';
export { isLegal, State, TRANSITIONS } from './core/state.ts';
export { defaults } from './defaults.ts';
export type { Engine, EngineName, EngineSocket, SocketEvents } from './engine/engine.ts';
export { createEngine, runtimeEngineName } from './engine/select.ts';
export { ConfigError, ErrorCode, SwitchyardError } from './errors.ts';
export { createLogger } from './log.ts';
export { AccessLog } from './observability/access-log.ts';
export { formatMetrics, METRICS_CONTENT_TYPE } from './observability/metrics.ts';
export type {
  BackendStats,
  ConnectionRow,
  Declaration,
  FrontendStats,
  HistogramSnapshot,
  Merge,
  ProxyStats,
  ServerStats,
  ServerView,
  SwitchyardStats,
} from './stats.ts';
export { BACKEND_STATS, FRONTEND_STATS, SERVER_STATS } from './stats.ts';
export type { HostPort } from './units.ts';
