/**
 * The embedded invitee list in SQL, without imports, so the load-and-race suite and the benchmark
 * check and seed exactly what activations write.
 */

/** How many invitee phones a profile embeds; the rest are paged through /profile/invited. */
export const EMBEDDED_INVITEES = 100;

/**
 * The newest EMBEDDED_INVITEES invitee phones of the inviter whose id the SQL expression `inviterId`
 * names, in the invitee index's order, null for an invitee deleted since (whose phone is erased):
 * what each inviter's stored list must equal. recordInvitee keeps the list by prepending instead of
 * rereading it; a phone change or a deletion rewrites it with this.
 */
export const newestInviteePhones = (inviterId: string): string =>
  `ARRAY(SELECT i.phone FROM users i WHERE i.invited_by_id = ${inviterId} ` +
  `ORDER BY i.activated_at DESC, i.id DESC LIMIT ${EMBEDDED_INVITEES})`;

/** How many users' stored invitee list differs from newestInviteePhones: 0 when every list is exact. */
export const STALE_INVITEE_LISTS_SQL =
  'SELECT count(*)::int AS n FROM users u ' +
  `WHERE u.invited_users::jsonb <> to_jsonb(${newestInviteePhones('u.id')})`;
