import t, { type Test } from 'tap';
import { TestStack } from '@refstack/shared/testing';

// The operations ports (the gateway's /metrics and readiness details, the SMS worker's /metrics)
// listen on OPS_HOST, apart from HOST: a gateway opened to the world on HOST keeps them private.
// 127.0.0.2 stands for an outward address here: Linux answers on the whole of 127.0.0.0/8, and a
// server bound to one of its addresses refuses connections to another.

/** The status of a GET, or the network error's code when nothing answers. */
async function answer(url: string): Promise<number | string> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(5000) })).status;
  } catch (error) {
    return (error as { cause?: { code?: string } }).cause?.code ?? String(error);
  }
}

async function startEdge(t: Test, env: Record<string, string>, publicHost: string) {
  const stack = await TestStack.create(t, env);
  stack.start('gateway');
  stack.start('sms-worker');
  const { GATEWAY_PORT, GATEWAY_METRICS_PORT, SMS_WORKER_METRICS_PORT } = stack.ports;
  const urls = {
    public: (host: string) => `http://${host}:${GATEWAY_PORT}/health/live`,
    gatewayOps: (host: string) => `http://${host}:${GATEWAY_METRICS_PORT}/metrics`,
    workerOps: (host: string) => `http://${host}:${SMS_WORKER_METRICS_PORT}/metrics`,
  };
  // Each binds its operations port before it reports ready: the gateway before its public port.
  await stack.waitFor(async () => (await answer(urls.public(publicHost))) === 200, 90_000, 'the gateway listening');
  await stack.waitForLine(/"msg":"sms worker ready"/, 90_000, 0);
  return urls;
}

t.test('with HOST on an outward address, the operations ports stay on loopback', async (t) => {
  const urls = await startEdge(t, { HOST: '127.0.0.2' }, '127.0.0.2');
  t.equal(await answer(urls.public('127.0.0.2')), 200, 'the public port is on HOST');
  t.equal(await answer(urls.public('127.0.0.1')), 'ECONNREFUSED', 'and only there');
  t.equal(await answer(urls.gatewayOps('127.0.0.2')), 'ECONNREFUSED', "the gateway's /metrics is not on HOST");
  t.equal(await answer(urls.workerOps('127.0.0.2')), 'ECONNREFUSED', "nor is the worker's");
  t.equal(await answer(urls.gatewayOps('127.0.0.1')), 200, 'both are on OPS_HOST, 127.0.0.1 by default');
  t.equal(await answer(urls.workerOps('127.0.0.1')), 200);
});

t.test('OPS_HOST moves the operations ports, and only them', async (t) => {
  const urls = await startEdge(t, { OPS_HOST: '127.0.0.2' }, '127.0.0.1');
  t.equal(await answer(urls.gatewayOps('127.0.0.2')), 200);
  t.equal(await answer(urls.workerOps('127.0.0.2')), 200);
  t.equal(await answer(urls.gatewayOps('127.0.0.1')), 'ECONNREFUSED');
  t.equal(await answer(urls.workerOps('127.0.0.1')), 'ECONNREFUSED');
  t.equal(await answer(urls.public('127.0.0.1')), 200, 'the public port stays on HOST');
});
