import t from 'tap';
import { TestStack } from '@refstack/shared/testing';

const PER_HOUR = 8;
// Three ranges (the number without its last 4 digits) that bots pump, and six where people live.
const ATTACKED = ['+7912500', '+7912501', '+7912502'];
const HOMES = ['+7913600', '+7913601', '+7913602', '+7913603', '+7913604', '+7913605'];
const BOT_REQUESTS_PER_RANGE = 60;
const PEOPLE_PER_HOME = 4;

const number = (range: string, n: number) => `${range}${String(n).padStart(4, '0')}`;
let nextAddress = 0;
/** A client address of its own for every request: the attacker has as many as it likes. */
const address = () => {
  nextAddress += 1;
  return `10.${(nextAddress >> 16) & 255}.${(nextAddress >> 8) & 255}.${nextAddress & 255}`;
};

/** Runs `tasks` with at most `width` in flight. */
async function inParallel<T>(width: number, tasks: Array<() => Promise<T>>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]!();
      }
    }),
  );
  return results;
}

/**
 * A pumping attack in real processes: bots behind many addresses (X-Forwarded-For from a trusted
 * proxy) ask for codes to numbers of a few ranges and never verify, while people in other ranges
 * sign in as usual. Each attacked range gets at most SMS_PREFIX_PER_HOUR messages; nobody else
 * loses a sign-in.
 */
t.test('SMS pumping: each attacked range gets at most its hourly share, people elsewhere sign in', async (t) => {
  const stack = await TestStack.create(t, {
    SMS_PREFIX_PER_HOUR: String(PER_HOUR),
    SMS_MIN_CONVERSION: '0.2',
    // The test client is the proxy in front of the gateway; the gateway is auth's proxy.
    GATEWAY_TRUSTED_PROXIES: '127.0.0.1',
    TRUSTED_PROXIES: '127.0.0.1',
    UPSTREAM_TIMEOUT_MS: '30000',
  });
  await stack.startAll(90_000);
  const as = (ip: string) => ({ 'x-forwarded-for': ip });

  const bots = ATTACKED.flatMap((range) =>
    Array.from({ length: BOT_REQUESTS_PER_RANGE }, (_, n) => async () => {
      const res = await stack.request('POST', '/api/v1/auth/send-code', {
        body: { phone: number(range, n) },
        headers: as(address()),
      });
      return { range, status: res.status, code: (res.json as { code?: string }).code };
    }),
  );
  const people = HOMES.flatMap((range) =>
    Array.from({ length: PEOPLE_PER_HOME }, (_, n) => async () => {
      const phone = number(range, n);
      const ip = address();
      const since = stack.log.sms.length;
      const sent = await stack.request('POST', '/api/v1/auth/send-code', { body: { phone }, headers: as(ip) });
      if (sent.status !== 200) return { range, status: sent.status, code: (sent.json as { code?: string }).code };
      const code = await stack.nextLoginCode(phone, since, 30_000);
      const res = await stack.request('POST', '/api/v1/auth/verify', { body: { phone, code }, headers: as(ip) });
      return { range, status: res.status, code: (res.json as { code?: string }).code };
    }),
  );
  // Bots and people interleaved, as they would arrive.
  const tasks = bots
    .map((bot, i) => [bot, people[i]])
    .flat()
    .filter((task) => task !== undefined);
  const answers = await inParallel(16, tasks);

  const botAnswers = answers.filter((a) => ATTACKED.includes(a.range));
  const peopleAnswers = answers.filter((a) => HOMES.includes(a.range));
  t.same(
    peopleAnswers.filter((a) => a.status !== 200),
    [],
    `every one of the ${peopleAnswers.length} people signed in`,
  );
  await stack.waitFor(
    () => stack.log.sms.length >= botAnswers.filter((a) => a.status === 200).length + peopleAnswers.length,
    30_000,
    'every accepted code printed',
  );
  for (const range of ATTACKED) {
    const sent = stack.log.sms.filter((sms) => sms.to.startsWith(range)).length;
    const refused = botAnswers.filter((a) => a.range === range && a.code === 'prefix_blocked').length;
    t.comment(`range ${range}xxxx: ${sent} SMS went out of ${BOT_REQUESTS_PER_RANGE} asked, ${refused} refused`);
    t.ok(sent <= PER_HOUR, `range ${range}: at most SMS_PREFIX_PER_HOUR (${PER_HOUR}) sent, got ${sent}`);
    t.equal(sent + refused, BOT_REQUESTS_PER_RANGE, 'every other request was refused as prefix_blocked');
  }
  const metrics = await fetch(`http://127.0.0.1:${stack.ports.AUTH_PORT}/metrics`).then((r) => r.text());
  t.match(metrics, /sms_guard_refusals_total\{[^}]*reason="prefix_velocity"[^}]*\} \d+/, 'operators see why');
});
