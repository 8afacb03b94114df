export * from './units';
export * from './image';
export * from './labels';
export * from './spec';
export * from './spec-yaml';
export * from './resources';
