import type { RedisClient as Redis } from '@refstack/shared/platform/redis';
import type { SmsJobKind, SmsProviderName } from '@refstack/shared/contracts';
import type { DeliveryStatus } from './message.js';

/** How long a message's status is kept after its last change. */
export const MESSAGE_STATUS_TTL_MS = 7 * 24 * 3600 * 1000;
/** How many messages of one phone are kept at most (the newest): its list indexes every one. */
const MESSAGES_PER_PHONE = 50;
/** Events kept per message (the newest). */
const EVENTS_PER_MESSAGE = 20;

export type MessageEventName = 'queued' | 'attempt_failed' | DeliveryStatus;

export interface MessageEvent {
  at: number;
  event: MessageEventName;
  provider?: SmsProviderName;
  reason?: string;
}

/** What auth knows of one message: who took it, where it stands, and how it got there. */
export interface MessageRecord {
  id: string;
  kind: SmsJobKind;
  to: string;
  country: string;
  status: DeliveryStatus;
  /** The provider that took it (null while none has). */
  provider: SmsProviderName | null;
  provider_message_id: string | null;
  /** The provider's reason for the last failure, or why it was never sent. */
  reason: string | null;
  created_at: number;
  updated_at: number;
  events: MessageEvent[];
}

export interface MessageRef {
  id: string;
  kind: SmsJobKind;
  to: string;
  country: string;
}

interface Change {
  at: number;
  event: MessageEventName;
  status?: DeliveryStatus;
  provider?: SmsProviderName;
  provider_message_id?: string;
  reason?: string;
  /** A receipt may only move a message that a provider has taken, and only the provider that took it. */
  receipt?: boolean;
  /** Only while no provider has taken it (expiry). */
  unsent?: boolean;
}

/**
 * Applies one change to a message's record in one step: creates the record (status `queued`) when
 * the worker first sees the message, moves the status only forward (queued → sent → delivered or
 * failed; the last two are final), and keeps the phone's list of messages. A change that would move
 * a status backwards, or a receipt for a message no provider took, changes nothing.
 * KEYS: the message, the phone's list (one hash tag: the phone).
 * Returns {1, record, previous status, ids that left the list} when it changed the record,
 * {0, record or false} otherwise.
 */
const APPLY = `
local change = cjson.decode(ARGV[1])
local ref = cjson.decode(ARGV[2])
local ttl, cap, eventsCap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local raw = redis.call('GET', KEYS[1])
local m
if raw then
  if change.event == 'queued' then return {0, raw} end
  m = cjson.decode(raw)
elseif change.event ~= 'queued' then
  -- Only opening a message creates its record: a receipt for a message not ours, or a late step of
  -- one whose number was forgotten (a deleted account), writes nothing.
  return {0, false}
else
  m = {id = ref.id, kind = ref.kind, to = ref.to, country = ref.country, status = 'queued',
       provider = cjson.null, provider_message_id = cjson.null, reason = cjson.null,
       created_at = change.at, updated_at = change.at, events = {{at = change.at, event = 'queued'}}}
  redis.call('ZADD', KEYS[2], change.at, ref.id)
end
local rank = {queued = 1, sent = 2, delivered = 3, failed = 3}
local previous = m.status
if change.receipt and m.provider == cjson.null and previous == 'queued' then
  -- Its provider index exists, so the worker heard the provider take it and is about to record
  -- that: a receipt faster than that step records it itself rather than being lost.
  m.provider = change.provider
  m.provider_message_id = change.provider_message_id
elseif change.receipt and m.provider ~= change.provider then
  return {0, cjson.encode(m)}
end
-- A job that ran on past its expiry (a stalled one, run again) must not turn a sent message into
-- one never sent.
if change.unsent and previous ~= 'queued' then return {0, cjson.encode(m)} end
if change.status then
  if rank[previous] >= 3 or rank[change.status] <= rank[previous] then return {0, cjson.encode(m)} end
  m.status = change.status
elseif change.event == 'attempt_failed' and previous ~= 'queued' then
  return {0, cjson.encode(m)}
end
if change.status == 'sent' and not change.receipt then
  m.provider = change.provider
  m.provider_message_id = change.provider_message_id or cjson.null
end
if change.status == 'failed' and change.reason then m.reason = change.reason end
m.updated_at = change.at
if raw then
  local event = {at = change.at, event = change.event, provider = change.provider, reason = change.reason}
  table.insert(m.events, event)
  while #m.events > eventsCap do table.remove(m.events, 1) end
end
local encoded = cjson.encode(m)
redis.call('SET', KEYS[1], encoded, 'PX', ttl)
local evicted = redis.call('ZRANGE', KEYS[2], 0, -(cap + 1))
if #evicted > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(cap + 1)) end
redis.call('PEXPIRE', KEYS[2], ttl)
return {1, encoded, previous, evicted}
`;

interface MessageLogCommands {
  smsMessageApply(
    messageKey: string,
    listKey: string,
    change: string,
    ref: string,
    ttlMs: number,
    cap: number,
    eventsCap: number,
  ): Promise<[number, string | null, string?, string[]?]>;
}

export interface AppliedChange {
  changed: boolean;
  record: MessageRecord | undefined;
  previous?: DeliveryStatus;
}

/**
 * Each message's status and history in Redis for MESSAGE_STATUS_TTL_MS: written by the SMS worker
 * as it sends and by auth's receipt routes as providers report, read by the operator's listing.
 * A phone's messages share its hash tag, so each step touches one Redis Cluster slot; the index
 * from a provider's message id to ours is a key of its own, read before the step.
 */
export class MessageLog {
  private readonly redis: Redis & MessageLogCommands;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    if (!('smsMessageApply' in redis)) redis.defineCommand('smsMessageApply', { numberOfKeys: 2, lua: APPLY });
    this.redis = redis as Redis & MessageLogCommands;
  }

  private messageKey(phone: string, id: string): string {
    return `${this.prefix}:sms:{${phone}}:m:${id}`;
  }

  private listKey(phone: string): string {
    return `${this.prefix}:sms:{${phone}}:list`;
  }

  private providerKey(provider: SmsProviderName, providerMessageId: string): string {
    return `${this.prefix}:sms:pid:${provider}:${providerMessageId}`;
  }

  private async apply(ref: MessageRef, change: Change): Promise<AppliedChange> {
    const [changed, encoded, previous, evicted] = await this.redis.smsMessageApply(
      this.messageKey(ref.to, ref.id),
      this.listKey(ref.to),
      JSON.stringify(change),
      JSON.stringify(ref),
      MESSAGE_STATUS_TTL_MS,
      MESSAGES_PER_PHONE,
      EVENTS_PER_MESSAGE,
    );
    // A record that left its phone's list goes with it, so that the list names every record of the
    // phone (forgetting a number reads it).
    if (evicted && evicted.length > 0) await this.drop(ref.to, evicted);
    return {
      changed: changed === 1,
      record: encoded ? parseRecord(encoded) : undefined,
      ...(previous ? { previous: previous as DeliveryStatus } : {}),
    };
  }

  /** The record, created as `queued` when the worker first takes the message. */
  async open(ref: MessageRef, at: number): Promise<MessageRecord> {
    const { record } = await this.apply(ref, { at, event: 'queued' });
    if (!record) throw new Error(`message ${ref.id} has no record`);
    return record;
  }

  /** A provider failed this try; the message stays `queued` for the next one. */
  attemptFailed(ref: MessageRef, provider: SmsProviderName, reason: string, at: number): Promise<AppliedChange> {
    return this.apply(ref, { at, event: 'attempt_failed', provider, reason });
  }

  /** A provider took the message; its receipts will name `providerMessageId`. */
  async sent(
    ref: MessageRef,
    provider: SmsProviderName,
    providerMessageId: string | undefined,
    at: number,
  ): Promise<AppliedChange> {
    if (providerMessageId) {
      // Written before the status, so that a receipt arriving at once finds its message.
      await this.redis.set(
        this.providerKey(provider, providerMessageId),
        JSON.stringify({ to: ref.to, id: ref.id }),
        'PX',
        MESSAGE_STATUS_TTL_MS,
      );
    }
    const applied = await this.apply(ref, {
      at,
      event: 'sent',
      status: 'sent',
      provider,
      ...(providerMessageId ? { provider_message_id: providerMessageId } : {}),
    });
    // No record: the number was forgotten while the provider had the message (its account was
    // deleted or moved). An index entry would name the number for seven days and lead nowhere.
    if (!applied.record && providerMessageId) await this.redis.del(this.providerKey(provider, providerMessageId));
    return applied;
  }

  /** The message will never be sent: refused for the number, or expired first. */
  failed(ref: MessageRef, provider: SmsProviderName | undefined, reason: string, at: number): Promise<AppliedChange> {
    return this.apply(ref, { at, event: 'failed', status: 'failed', reason, ...(provider ? { provider } : {}) });
  }

  /** The message expired before a provider took it; one a provider took stays as it is. */
  expired(ref: MessageRef, reason: string, at: number): Promise<AppliedChange> {
    return this.apply(ref, { at, event: 'failed', status: 'failed', reason, unsent: true });
  }

  /**
   * A provider's delivery receipt. Unknown messages (expired from the log, or never ours) and
   * receipts that would move a status backwards change nothing.
   */
  async receipt(
    provider: SmsProviderName,
    providerMessageId: string,
    status: DeliveryStatus,
    reason: string | undefined,
    at: number,
  ): Promise<AppliedChange> {
    const indexed = await this.redis.get(this.providerKey(provider, providerMessageId));
    if (!indexed) return { changed: false, record: undefined };
    const { to, id } = JSON.parse(indexed) as { to: string; id: string };
    return this.apply(
      { id, to, kind: 'otp', country: '' },
      {
        at,
        event: status,
        status,
        provider,
        provider_message_id: providerMessageId,
        receipt: true,
        ...(reason ? { reason } : {}),
      },
    );
  }

  async get(phone: string, id: string): Promise<MessageRecord | undefined> {
    const raw = await this.redis.get(this.messageKey(phone, id));
    return raw ? parseRecord(raw) : undefined;
  }

  /** The phone's messages of the last seven days (at most the newest 50), newest first. */
  async list(phone: string, limit = MESSAGES_PER_PHONE): Promise<MessageRecord[]> {
    const ids = await this.redis.zrevrange(this.listKey(phone), 0, limit - 1);
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.messageKey(phone, id)));
    return raws.filter((raw): raw is string => raw !== null).map(parseRecord);
  }

  /**
   * Removes every message record of the phone, its list and the receipt index entries that point at
   * them (a receipt for one of them then changes nothing).
   */
  async forget(phone: string): Promise<void> {
    const ids = await this.redis.zrange(this.listKey(phone), '0', '-1');
    await this.drop(phone, ids);
    // Only the records read leave the list: one the worker opens meanwhile (the notice a move
    // sends the number it leaves) stays listed, and so findable.
    if (ids.length > 0) await this.redis.zrem(this.listKey(phone), ...ids);
  }

  /** Removes these records of the phone and the receipt index entries that point at them. */
  private async drop(phone: string, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const keys = ids.map((id) => this.messageKey(phone, id));
    const indexed = (await this.redis.mget(keys)).flatMap((raw) => {
      const record = raw === null ? undefined : parseRecord(raw);
      return record?.provider && record.provider_message_id
        ? [this.providerKey(record.provider, record.provider_message_id)]
        : [];
    });
    // Each index entry is a slot of its own on a cluster: one command each. The records share the
    // phone's slot, and go after the entries that only they name.
    await Promise.all(indexed.map((key) => this.redis.del(key)));
    await this.redis.del(...keys);
  }

  /** The newest login message to the phone since `since` that a provider took (other than `except`). */
  async lastCodeMessage(phone: string, since: number, except?: string): Promise<MessageRecord | undefined> {
    for (const record of await this.list(phone, 5)) {
      if (record.created_at < since) return undefined;
      if (record.kind === 'otp' && record.provider !== null && record.id !== except) return record;
    }
    return undefined;
  }
}

function parseRecord(raw: string): MessageRecord {
  const record = JSON.parse(raw) as MessageRecord;
  // cjson writes an empty Lua table as an object; a record always has its first event, but be exact.
  if (!Array.isArray(record.events)) record.events = [];
  return record;
}
