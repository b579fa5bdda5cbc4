import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { buildReferralTestApp, createUser, eventually, otherProcessRevocations } from '../referral-test-app.js';

const WITHIN_MS = 5000;

const readProfile = (app: FastifyInstance, token: string) =>
  app.inject({ method: 'GET', url: '/api/v1/profile', headers: { authorization: `Bearer ${token}` } });
const status = async (app: FastifyInstance, token: string) => (await readProfile(app, token)).statusCode;

t.test("an ended session's tokens are refused within seconds, remembered ones too; other sessions go on", async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  const auth = await otherProcessRevocations(t, ctx);
  const ended = ctx.issuer.sign({ sub: user.id, phone: user.phone, sid: 'session-1' });
  const other = ctx.issuer.sign({ sub: user.id, phone: user.phone, sid: 'session-2' });
  t.equal(await status(ctx.app, ended), 200, 'accepted, and now remembered');
  t.equal(await status(ctx.app, other), 200);

  await auth.publish([{ sid: 'session-1' }]);
  const took = await eventually(
    'the ended session refused',
    async () => (await status(ctx.app, ended)) === 401,
    WITHIN_MS,
  );
  t.comment(`refused ${took} ms after the publish`);
  const refused = await readProfile(ctx.app, ended);
  t.equal(refused.json().code, 'unauthorized');
  t.match(refused.json().detail, /session .*has ended/);
  t.equal(await status(ctx.app, other), 200, "another session's token of the same user still works");
  const unseen = ctx.issuer.sign({ sub: user.id, phone: user.phone, sid: 'session-1' });
  t.equal(await status(ctx.app, unseen), 401, 'a token of that session not seen before is refused on its first check');
});

t.test("a user's revocation refuses every token issued up to its time, not those issued after", async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [user, bystander] = [await createUser(ctx), await createUser(ctx)];
  const auth = await otherProcessRevocations(t, ctx);
  const now = Math.floor(Date.now() / 1000);
  const older = ctx.issuer.sign({ sub: user.id, phone: user.phone, sid: 'a', iat: now - 60 });
  const current = ctx.issuer.sign({ sub: user.id, phone: user.phone, sid: 'b', iat: now });
  const noIat = ctx.issuer.sign({ sub: user.id, phone: user.phone, iat: undefined });
  for (const token of [older, current, noIat]) t.equal(await status(ctx.app, token), 200);

  await auth.publish([{ sub: user.id, before: now }]);
  await eventually('the user revoked', async () => (await status(ctx.app, current)) === 401, WITHIN_MS);
  t.equal(await status(ctx.app, older), 401, 'an older token too');
  t.equal(await status(ctx.app, noIat), 401, 'a token without iat counts as the oldest');
  const later = ctx.issuer.sign({ sub: user.id, phone: user.phone, sid: 'c', iat: now + 1 });
  t.equal(await status(ctx.app, later), 200, 'a token issued after the revocation works');
  t.equal(await status(ctx.app, bystander.token), 200, "another user's token works");
});
