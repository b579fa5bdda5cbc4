export * from './test-config.js';
export * from './test-database.js';
export * from './test-redis.js';
export * from './log-capture.js';
export * from './free-port.js';
export * from './redis-contents.js';
