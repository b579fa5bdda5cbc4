import t from 'tap';
import { parseInternal, parseSignInResult } from '../../src/contracts/index.js';

const user = {
  id: '7',
  phone: '+79123456789',
  invite_code: 'AB12CD',
  activated_invite_code: null,
  invited_users: ['+79001112233', null],
  invited_count: 2,
  first_name: null,
  last_name: null,
  email: null,
  created_at: '2026-12-07T10:00:00.000Z',
};

t.test('an answer with fields added since is read without them: a rolling deploy keeps signing in', async (t) => {
  const answer = { user: { ...user, city: 'Kazan' }, created: false, roles: [], session_hint: 1 };
  t.same(parseSignInResult(answer), { user, created: false, roles: [] });
  t.same(parseInternal.changePhone({ user: { ...user, city: 'Kazan' }, old_phone: '+79000000000' }), {
    user,
    old_phone: '+79000000000',
  });
  const exported = { activation: null, invitees: [], is_admin: false, updated_at: '2026-12-07T10:00:00.000Z' };
  t.same(parseInternal.export({ profile: { ...user, city: 'Kazan' }, ...exported }), { profile: user, ...exported });
  t.match(parseInternal.user({ id: '7', phone: null, roles: [], status: 'deleted', city: 'Kazan' }), {
    id: '7',
    status: 'deleted',
  });
});

t.test('an answer that lacks a field or has one of the wrong type is still refused', async (t) => {
  const { email: _email, ...withoutEmail } = user;
  t.equal(parseSignInResult({ user: withoutEmail, created: true, roles: [] }), undefined);
  t.equal(parseSignInResult({ user: { ...user, invited_count: '2' }, created: true, roles: [] }), undefined);
  t.equal(parseSignInResult({ user: { ...user, city: 'Kazan' }, created: 'yes', roles: [] }), undefined);
  t.equal(parseInternal.user({ id: '7', phone: null, roles: [], status: 'gone' }), undefined);
  t.equal(parseSignInResult(null), undefined);
  t.equal(parseSignInResult('{"user":{}}'), undefined);
});
