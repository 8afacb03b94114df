export * from './spec';
export * from './inputs';
export * from './worker';
export * from './view';
