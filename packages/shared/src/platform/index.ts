// What every process runs on: the Fastify app and its error, health, metrics, docs and logging
// plumbing, graceful start and stop, the stores' clients, the SMS queue's producer. A process that
// needs only part of it (the SMS worker) imports those modules by their own path.
export type { DestinationStream } from 'pino';
export * from './client-errors.js';
export * from './drain.js';
export * from './error-handler.js';
export * from './health.js';
export * from './logger.js';
export * from './metrics.js';
export * from './openapi.js';
export * from './process.js';
export * from './redis.js';
export * from './request-id.js';
export * from './revocations.js';
export * from './server-limits.js';
export * from './service-app.js';
export * from './sms-queue.js';
export * from './unavailable.js';
export * from './upstream-pool.js';
