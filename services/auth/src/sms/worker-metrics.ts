import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';

/** The SMS worker's own registry: process metrics, the SMS funnel and the providers' circuits. */
export function workerRegistry(): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'sms-worker' });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * `GET /metrics` and `GET /health/live` on the worker's internal port. Plain node:http: the worker
 * serves nothing else, and keeps Fastify out of its process.
 */
export async function serveWorkerMetrics(registry: Registry, host: string, port: number): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method === 'GET' && path === '/metrics') {
      registry.metrics().then(
        (body) => response.writeHead(200, { 'content-type': registry.contentType }).end(body),
        () => response.writeHead(500).end(),
      );
    } else if (request.method === 'GET' && path === '/health/live') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","service":"sms-worker"}');
    } else {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"status":404}');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
