/**
 * Both sides of a session: the client's signaling state machine, the node's
 * answering one, the candidate policy, the stats schedule.
 */
export * from './machine';
export * from './answerer';
export * from './policy';
export * from './stats';
