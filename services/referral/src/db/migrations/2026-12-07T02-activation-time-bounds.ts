import { sql, type Kysely } from 'kysely';
import * as previous from './2026-12-06T00-activate-invite-function.js';

// Frozen. activate_invite as 2026-12-06T00 made it (same signature, so instances of either version
// call it during a rolling deploy), with two bounds that version lacked:
//  - `p_lock_wait_ms` bounds all its lock waits together, measured from its start: each wait gets
//    what is left of it, so a statement started in time answers in time (before, each wait got the
//    whole, and one activation could queue on the advisory lock and then on each row in turn). A
//    lock is tried before it is waited for, and only a wait sets `lock_timeout`.
//  - An activation's time is also after the owner's newest invitee's: the clock's time, or a
//    microsecond past that invitee's when the clock stepped back, so the invitee index keeps listing
//    an owner's invitees in the order their activations commit, the order of the embedded list.
// A frozen migration must not follow today's schema type, so its handle is untyped (as in every one).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE OR REPLACE FUNCTION activate_invite(p_user bigint, p_code text, p_keep int, p_lock_wait_ms int,
      OUT outcome text, OUT o_inviter_id bigint, OUT o_inviter_phone text, OUT o_invited_count int,
      OUT o_activated_code text)
    LANGUAGE plpgsql AS $fn$
    DECLARE
      u users%ROWTYPE;
      i users%ROWTYPE;
      top bigint;
      walked_top bigint;
      found_user boolean;
      top_inviter bigint;
      row_id bigint;
      ids bigint[];
      locked boolean := false;
      newest timestamptz;
      -- Where the lock waits must have ended; null leaves the session's own lock_timeout. Each wait
      -- gets what is left (at least 1 ms, since 0 would mean no bound): a lock that is free is still
      -- taken when nothing is left, a busy one is then given up at once.
      waits_end constant timestamptz := CASE WHEN p_lock_wait_ms > 0
        THEN clock_timestamp() + p_lock_wait_ms * interval '1 millisecond' END;
      walk constant text := '
        WITH RECURSIVE chain(id, parent) AS (
          SELECT a.id, a.invited_by_id FROM users a WHERE a.id = $1
          UNION ALL
          SELECT a.id, a.invited_by_id FROM users a JOIN chain ON a.id = chain.parent
        )
        SELECT coalesce(bool_or(chain.id = $2), false), max(chain.id) FILTER (WHERE chain.parent IS NULL)
        FROM chain';
    BEGIN
      LOOP
        SELECT * INTO u FROM users WHERE id = p_user;
        IF NOT FOUND OR u.deleted_at IS NOT NULL THEN outcome := 'gone'; RETURN; END IF;
        IF u.blocked_at IS NOT NULL THEN outcome := 'blocked'; RETURN; END IF;
        IF u.invited_by_id IS NOT NULL THEN
          o_activated_code := u.activated_invite_code;
          outcome := CASE WHEN u.activated_invite_code = p_code THEN 'already' ELSE 'other_code' END;
          RETURN;
        END IF;
        SELECT * INTO i FROM users WHERE invite_code = p_code AND deleted_at IS NULL AND blocked_at IS NULL;
        IF NOT FOUND THEN outcome := 'not_found'; RETURN; END IF;
        IF i.id = p_user THEN outcome := 'self'; RETURN; END IF;
        EXIT WHEN locked;

        IF u.invited_count > 0 THEN
          EXECUTE walk USING i.id, p_user INTO found_user, top;
          IF found_user THEN outcome := 'cycle'; RETURN; END IF;
        END IF;

        -- Each lock is tried first; only one that is busy sets the bound for its wait, so an
        -- activation that waits for nothing pays for no setting.
        IF NOT pg_try_advisory_xact_lock(7270, (i.id % 2147483647)::int) THEN
          IF waits_end IS NOT NULL THEN
            PERFORM set_config('lock_timeout',
              greatest(1, ceil(extract(epoch FROM waits_end - clock_timestamp()) * 1000)) || 'ms', true);
          END IF;
          PERFORM pg_advisory_xact_lock(7270, (i.id % 2147483647)::int);
        END IF;
        ids := ARRAY[least(p_user, i.id), greatest(p_user, i.id)];
        IF top IS NOT NULL AND top <> i.id THEN
          ids := CASE
            WHEN top < ids[1] THEN ARRAY[top, ids[1], ids[2]]
            WHEN top < ids[2] THEN ARRAY[ids[1], top, ids[2]]
            ELSE ARRAY[ids[1], ids[2], top]
          END;
        END IF;
        FOREACH row_id IN ARRAY ids LOOP
          IF row_id = top AND row_id <> i.id THEN
            PERFORM 1 FROM users l WHERE l.id = row_id FOR SHARE SKIP LOCKED;
          ELSE
            PERFORM 1 FROM users l WHERE l.id = row_id FOR UPDATE SKIP LOCKED;
          END IF;
          CONTINUE WHEN FOUND;
          IF waits_end IS NOT NULL THEN
            PERFORM set_config('lock_timeout',
              greatest(1, ceil(extract(epoch FROM waits_end - clock_timestamp()) * 1000)) || 'ms', true);
          END IF;
          IF row_id = top AND row_id <> i.id THEN
            PERFORM 1 FROM users l WHERE l.id = row_id FOR SHARE;
          ELSE
            PERFORM 1 FROM users l WHERE l.id = row_id FOR UPDATE;
          END IF;
        END LOOP;
        locked := true;
      END LOOP;

      IF u.invited_count > 0 THEN
        walked_top := i.id;
        LOOP
          EXECUTE walk USING walked_top, p_user INTO found_user, walked_top;
          IF found_user THEN outcome := 'cycle'; RETURN; END IF;
          EXIT WHEN walked_top = i.id OR walked_top = top;
          IF waits_end IS NOT NULL THEN
            PERFORM set_config('lock_timeout',
              greatest(1, ceil(extract(epoch FROM waits_end - clock_timestamp()) * 1000)) || 'ms', true);
          END IF;
          SELECT t.invited_by_id INTO top_inviter FROM users t WHERE t.id = walked_top FOR SHARE;
          EXIT WHEN top_inviter IS NULL;
          walked_top := top_inviter;
        END LOOP;
      END IF;

      -- Under the owner's locks no other invitee of theirs is being written. In the invitee index's
      -- own order, so that it reads one entry whatever the statistics say (max() may be planned as
      -- a read of every invitee when they look few).
      SELECT n.activated_at INTO newest FROM users n WHERE n.invited_by_id = i.id
      ORDER BY n.activated_at DESC, n.id DESC LIMIT 1;
      UPDATE users w SET invited_by_id = i.id, activated_invite_code = p_code,
        activated_at = greatest(clock_timestamp(), newest + interval '1 microsecond'), updated_at = now()
      WHERE w.id = p_user AND w.invited_by_id IS NULL;
      IF NOT FOUND THEN outcome := 'other_code'; RETURN; END IF;

      UPDATE users o SET invited_count = o.invited_count + 1,
        invited_users = to_json((ARRAY[u.phone] || ARRAY(SELECT json_array_elements_text(o.invited_users)))[1:p_keep])
      WHERE o.id = i.id
      RETURNING o.invited_count INTO o_invited_count;
      o_inviter_id := i.id;
      o_inviter_phone := i.phone;
      o_activated_code := p_code;
      outcome := 'activated';
    END
    $fn$
  `.execute(db);
}

// Untyped for the same reason as up.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP FUNCTION activate_invite(bigint, text, int, int)`.execute(db);
  await previous.up(db);
}
