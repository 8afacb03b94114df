export * from './identity';
export * from './access-token';
