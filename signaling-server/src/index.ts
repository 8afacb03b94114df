export {
  startPeerwayServer,
  createPeerwayServer,
  type PeerwayServer,
  type ServerOptions,
} from './server';
export {
  parseConfig,
  configFromEnv,
  DEFAULTS,
  type ServerConfig,
  type RawServerConfig,
} from './config';
export { SqliteStore } from './store/sqlite';
export { RedisStore } from './store/redis';
export type { Store } from './store/store';
export { purgeOnce, UNCLAIMED_NODE_TTL_MS } from './nodes/purge';
export { turnCredentials, iceServersFor, CloseCode } from './ws/index';
export { TurnMonitor, probeTurn, parseTurnUrl, release, type TurnStatus } from './turn/monitor';
export {
  plan,
  describePlan,
  type Plan,
  type SchedulerNode,
  type Allocation,
  type PlanOptions,
} from './cluster/scheduler';
