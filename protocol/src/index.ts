export * from './errors';
export * from './names';
export * from './signaling';
export * from './signaling-agent';
export * from './tunnel';
export * from './stats';
export * from './ice-policy';
export * from './redirect';
