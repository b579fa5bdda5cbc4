// What more than one process agrees on, free of any framework or store client at run time (lint
// keeps Fastify, ioredis, pg and BullMQ out; test/contracts/module-graph.test.ts checks the graph).
export * from './access-token.js';
export * from './api-schemas.js';
export * from './client-address.js';
export * from './config.js';
export * from './credentials.js';
export * from './errors.js';
export * from './guard-config.js';
export * from './headers.js';
export * from './internal-api.js';
export * from './lifecycle.js';
export * from './invite-code.js';
export * from './phone.js';
export { phoneCountry } from './phone-country.js';
export * from './queues.js';
export * from './processes.js';
export * from './sms-line.js';
export * from './sms-config.js';
export * from './sms-locale.js';
export * from './store-hints.js';
