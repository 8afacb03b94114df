export * from './wire';
export * from './frame';
export * from './head';
export * from './channel';
export * from './errors';
export * from './socket';
export * from './mux';
export * from './response';
