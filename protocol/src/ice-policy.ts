/**
 * The package index reaches the client session module (its state machine,
 * candidate policy with RELAY_HOLD_MS, and stats schedule) through here.
 */
export * from './session/index';
