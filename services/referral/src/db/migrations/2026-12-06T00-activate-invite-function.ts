import { sql, type Kysely } from 'kysely';

// Frozen. An activation as one function, in one round trip, under READ COMMITTED: the rows it
// locks decide every race, not a serializable snapshot (src/invites/README.md names each guard and
// its test). Each statement of a PL/pgSQL function sees what committed before it started, so what
// is checked after a lock is what the lock protects.
//  - It queues on the owner's advisory lock (namespace 7270, the id's low 31 bits, as every other
//    path takes it), held to the end of the transaction: activations of one popular code run one
//    after another, and the waits count against `p_lock_wait_ms`.
//  - It locks the user's and the owner's rows in id order (crossed activations queue instead of
//    deadlocking) and checks both again under the locks.
//  - A cycle needs the user to have invitees. Their count is on the user's row, which every
//    invitee's activation updates (and nothing lowers): under the user's lock it is exact and none
//    is on its way. Read from the row, not the invitee index, whose generic plan could scan.
//  - The owner's chain of inviters only grows at its top (a set inviter never changes), so holding
//    the top's row in share mode keeps it from growing until this commits: whoever would give it an
//    inviter waits and then sees this edge.
// Refusals are answers (`outcome`), not errors, so the service words them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE FUNCTION activate_invite(p_user bigint, p_code text, p_keep int, p_lock_wait_ms int,
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
      -- The chain above an owner: whether the user is in it, and its top. Run with EXECUTE, so that
      -- it is planned for its ids each time, never as a generic plan (it runs only for users who
      -- have invitees).
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
        -- First unlocked, so that a refusal never queues; then again under the locks.
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

        -- The top of the owner's chain, when the user has invitees (and so could close a cycle).
        IF u.invited_count > 0 THEN
          EXECUTE walk USING i.id, p_user INTO found_user, top;
          IF found_user THEN outcome := 'cycle'; RETURN; END IF;
        END IF;

        IF p_lock_wait_ms > 0 THEN
          PERFORM set_config('lock_timeout', p_lock_wait_ms || 'ms', true);
        END IF;
        PERFORM pg_advisory_xact_lock(7270, (i.id % 2147483647)::int);
        -- Every row in id order (the user and the owner to write, the top to keep as it is), so
        -- that activations whose rows overlap queue instead of deadlocking.
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
          -- A top not locked above (the chain grew, or the user had no invitees a moment ago).
          SELECT t.invited_by_id INTO top_inviter FROM users t WHERE t.id = walked_top FOR SHARE;
          EXIT WHEN top_inviter IS NULL;
          walked_top := top_inviter;
        END LOOP;
      END IF;

      -- The clock's time, taken under both locks: an owner's invitees get increasing times in the
      -- order their activations commit, the order of the embedded list.
      UPDATE users w SET invited_by_id = i.id, activated_invite_code = p_code,
        activated_at = clock_timestamp(), updated_at = now()
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

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP FUNCTION activate_invite(bigint, text, int, int)`.execute(db);
}
