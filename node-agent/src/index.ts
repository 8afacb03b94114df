export { Agent, type AgentOptions } from './agent';
export { nextDelay } from './policy';
export { normaliseTarget, loadConfig, loadOrCreateIdentity } from './home';
