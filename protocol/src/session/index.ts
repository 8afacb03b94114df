/** The client side of a session: its signaling state machine, its candidate policy, its stats schedule. */
export * from './machine';
export * from './policy';
export * from './stats';
