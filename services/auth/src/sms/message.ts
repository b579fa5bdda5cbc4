import type { SmsJobKind, SmsLocale } from '@refstack/shared/contracts';

/** One message as the worker hands it to a provider: rendered, addressed, with what a provider may need. */
export interface OutgoingSms {
  /** This system's message id (the queue job's id); statuses and receipts are kept under it. */
  id: string;
  kind: SmsJobKind;
  /** E.164 recipient. */
  to: string;
  /** ISO country of the recipient (`ZZ` when unknown), for routing and metrics. */
  country: string;
  locale: SmsLocale;
  /** The whole text as an SMS carries it, autofill lines included. */
  text: string;
  /** The login code of an `otp` message; providers that deliver codes themselves (Telegram) send this. */
  code?: string;
  /** Milliseconds since the epoch after which the message is worthless. */
  expiresAt: number;
}

/** Where a message stands, in the order it moves; `delivered` and `failed` are final. */
export const DELIVERY_STATUSES = ['queued', 'sent', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];
