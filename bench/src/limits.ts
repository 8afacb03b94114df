/**
 * The server's limits raised for benchmarks: every simulated peer comes
 * from 127.0.0.1, so the per-IP and per-connection guards would throttle
 * the load being measured.
 */
export const BENCH_LIMITS = {
  connectionsPerMinutePerIp: 1_000_000,
  messagesPerSecond: 100_000,
  messageBurst: 100_000,
  agentMessagesPerSecond: 100_000,
  agentMessageBurst: 100_000,
  maxSessionsPerClient: 100_000,
};
