import t from 'tap';
import { readFileSync } from 'node:fs';
import { isDependencyUnavailable } from '../../src/platform/unavailable.js';

/** A reply error as ioredis builds it: the class name and Redis's own words. */
function replyError(message: string): Error {
  const error = new Error(message);
  error.name = 'ReplyError';
  return error;
}

/** What an ioredis Cluster client throws once its redirections run out, quoting the last error. */
const outOfRedirections = (last: Error) => new Error(`Too many Cluster redirections. Last error: ${String(last)}`);

t.test('a Redis Cluster failing over is a dependency unavailable (503), not a bug (500)', async (t) => {
  // Each seen from a cluster client while a master was SIGKILLed and its replica promoted.
  const seen = [
    outOfRedirections(replyError('MOVED 9343 127.0.0.1:30104')),
    outOfRedirections(new Error('Connection is closed.')),
    outOfRedirections(replyError('CLUSTERDOWN The cluster is down')),
    new Error('Command timed out'),
    replyError('CLUSTERDOWN The cluster is down'),
    replyError('TRYAGAIN Multiple keys request during rehashing of slot'),
    replyError('LOADING Redis is loading the dataset in memory'),
    replyError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
    replyError("READONLY You can't write against a read only replica."),
    new Error('Failed to refresh slots cache.'),
    new Error('None of startup nodes is available'),
    new Error("Cluster isn't ready and enableOfflineQueue options is false"),
  ];
  for (const error of seen) t.ok(isDependencyUnavailable(error), error.message);
  t.ok(isDependencyUnavailable(new Error('sign-in failed', { cause: seen[0] })), 'also as the cause of another');
});

t.test('a refusal that retrying cannot cure stays a bug', async (t) => {
  const bugs = [
    replyError("CROSSSLOT Keys in request don't hash to the same slot"),
    replyError('WRONGTYPE Operation against a key holding the wrong kind of value'),
    replyError("ERR wrong number of arguments for 'set' command"),
    replyError('NOSCRIPT No matching script. Please use EVAL.'),
    new TypeError("Cannot read properties of undefined (reading 'id')"),
    // The word alone, not at the start of a reply, is no Redis condition.
    new Error('the user is LOADING something'),
  ];
  for (const error of bugs) t.notOk(isDependencyUnavailable(error), error.message);
});

t.test('the messages matched are the ones ioredis writes', async (t) => {
  // Were ioredis to reword them, the list would silently stop matching: read them from its source.
  const built = (file: string) => readFileSync(new URL(file, import.meta.resolve('ioredis')), 'utf8');
  const cluster = built('./cluster/index.js');
  for (const text of ['Too many Cluster redirections', 'None of startup nodes is available', "Cluster isn't ready"]) {
    t.ok(cluster.includes(text), `ioredis still says "${text}"`);
  }
  t.ok(built('./errors/ClusterAllFailedError.js').includes('Failed to refresh slots cache'), 'and the slots refresh');
});
