import net from 'node:net';
import t from 'tap';
import { Redis } from 'ioredis';
import { closeRedis, connectRedis } from '../../src/platform/redis.js';
import { createTestRedisPrefix, TEST_REDIS_URL, type Teardownable } from '../../src/testing/index.js';

/**
 * A proxy in front of the test Redis that, once armed, lets the next reply's connection die with the
 * reply unsent: Redis ran the command, the client never hears so.
 */
async function replyDroppingProxy(t: Teardownable) {
  const target = new URL(TEST_REDIS_URL);
  let armed = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.pipe(upstream);
    upstream.on('data', (chunk) => {
      if (armed) {
        armed = false;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as net.AddressInfo;
  const db = target.pathname.replace('/', '') || '0';
  return { url: `redis://127.0.0.1:${port}/${db}`, arm: () => (armed = true) };
}

t.test('a command whose reply was lost with its connection is not sent again after reconnecting', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const proxy = await replyDroppingProxy(t);
  const redis = await connectRedis(proxy.url, 'api');
  t.teardown(() => closeRedis(redis));
  const direct = new Redis(TEST_REDIS_URL, { lazyConnect: true });
  await direct.connect();
  t.teardown(() => direct.disconnect());

  // A script that is not safe to run twice, as a refresh token's rotation or a code's spending is not.
  const key = `${prefix}:runs`;
  proxy.arm();
  const outcome = await redis.incr(key).then(
    (value) => `answered ${value}`,
    () => 'failed',
  );
  t.equal(outcome, 'failed', 'the caller hears that the outcome is unknown');
  t.equal(await direct.get(key), '1', 'Redis ran the command once');
  t.equal(await redis.incr(key), 2, 'the connection serves the next command');
});
