import { spawnSync } from 'node:child_process';
import t from 'tap';
import { closeRedis, connectRedis, pingRedis } from '../../src/platform/redis.js';
import { eventually, ThrowawayRedisCluster } from '../../src/testing/index.js';

const clusterState = (port: number) =>
  /cluster_state:(\w+)/.exec(
    spawnSync('redis-cli', ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' }).stdout,
  )?.[1];

const settles = (probe: Promise<void>) =>
  probe.then(
    () => 'ready',
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );

t.test('a Redis Cluster that refuses commands is not ready, though its nodes answer PING', async (t) => {
  // Three masters and no replica: a lost master's slots have nobody to serve them.
  const cluster = await ThrowawayRedisCluster.start(t, 3, 0);
  const redis = await connectRedis({ redisUrl: 'redis://unused', redisClusterNodes: cluster.seedList }, 'api');
  t.teardown(() => closeRedis(redis));
  t.equal(await settles(pingRedis(redis)), 'ready', 'ready while every slot is served');

  const [lost, ...survivors] = cluster.nodes.map((node) => node.port);
  await cluster.kill(lost!);
  await eventually(
    'the surviving masters to see the cluster down',
    () => survivors.every((port) => clusterState(port) === 'fail'),
    60_000,
    100,
  );
  t.equal(
    spawnSync('redis-cli', ['-p', String(survivors[0]), 'ping'], { encoding: 'utf8' }).stdout.trim(),
    'PONG',
    'a surviving node still answers PING',
  );
  // Every node the client can ask now refuses commands; no probe may call that ready.
  for (let probe = 0; probe < 5; probe += 1) {
    t.not(await settles(pingRedis(redis)), 'ready', `not ready (probe ${probe + 1})`);
  }

  await cluster.up(lost!);
  await eventually(
    'the cluster to be whole again',
    () => cluster.nodes.every((n) => clusterState(n.port) === 'ok'),
    60_000,
    100,
  );
  await eventually('readiness to come back', async () => (await settles(pingRedis(redis))) === 'ready', 30_000, 100);
});
