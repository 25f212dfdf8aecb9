export * from './base-image';
export * from './code';
export * from './enums';
export * from './hooks';
export * from './image';
export * from './logging';
