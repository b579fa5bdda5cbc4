import { SegmentedMessage } from 'sms-segments-calculator';
import { ConfigError, SMS_LOCALES, type SmsJob, type SmsJobKind, type SmsLocale } from '@refstack/shared/contracts';
import { LOCALE_TEXTS, type LocaleTexts } from './templates/index.js';

/** The lines a phone reads to fill in a code by itself; both optional. */
export interface AutofillOptions {
  /** Android SMS Retriever: the app's 11-character hash, on a line of its own. */
  androidAppHash: string | undefined;
  /** WebOTP and iOS domain-bound codes: `@<domain> #<code>`, which must be the message's last line. */
  webOtpDomain: string | undefined;
}

const PLACEHOLDERS: Record<SmsJobKind, readonly string[]> = {
  otp: ['code', 'lifetime'],
  invite_activated: ['invite_code', 'people', 'new'],
  phone_changed: ['ending'],
};

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{([a-z_]+)\}/g, (whole, name: string) => values[name] ?? whole);
}

/**
 * The whole text of a message. A login message gets the autofill lines: the app hash first, then
 * the WebOTP line, because WebOTP (and iOS) read only the last line while the SMS Retriever finds
 * the hash anywhere in the message.
 */
export function renderSms(job: SmsJob, texts: LocaleTexts, autofill: AutofillOptions): string {
  if (job.kind === 'invite_activated') {
    return fill(texts.templates.invite_activated, {
      invite_code: job.inviteCode,
      people: texts.people(job.invitedCount),
      new: texts.activations(job.newCount ?? 1),
    });
  }
  if (job.kind === 'phone_changed') return fill(texts.templates.phone_changed, { ending: job.newEnding });
  const lines = [fill(texts.templates.otp, { code: job.code, lifetime: texts.lifetime(job.ttlSeconds) })];
  if (autofill.androidAppHash) lines.push(autofill.androidAppHash);
  if (autofill.webOtpDomain) lines.push(`@${autofill.webOtpDomain} #${job.code}`);
  return lines.join('\n');
}

export interface SegmentCheck {
  template: string;
  length: number;
  limit: number;
  encoding: 'GSM-7' | 'UCS-2';
  segments: number;
}

/** How a text is encoded and how many segments it takes. */
export function segmentsOf(text: string): Omit<SegmentCheck, 'template' | 'limit'> & { limit: number } {
  const message = new SegmentedMessage(text);
  const encoding = message.encodingName;
  return {
    length: encoding === 'GSM-7' ? message.numberOfCharacters : text.length,
    encoding,
    limit: encoding === 'GSM-7' ? 160 : 70,
    segments: message.segmentsCount,
  };
}

/**
 * Each locale's templates rendered with the longest values this configuration can produce (a code
 * of `otpLength` nines, the largest invitee count a notice names, both autofill lines).
 */
export function templateChecks(
  options: AutofillOptions & { otpLength: number; otpTtlSeconds: number },
  locales: readonly SmsLocale[] = SMS_LOCALES,
  texts: Readonly<Record<SmsLocale, LocaleTexts>> = LOCALE_TEXTS,
): SegmentCheck[] {
  const samples: Record<SmsJobKind, SmsJob> = {
    otp: {
      kind: 'otp',
      to: '+0',
      expiresAt: 0,
      code: '9'.repeat(options.otpLength),
      ttlSeconds: options.otpTtlSeconds,
    },
    invite_activated: {
      kind: 'invite_activated',
      to: '+0',
      expiresAt: 0,
      inviteCode: 'WWWWWW',
      invitedCount: 9_999_999,
      newCount: 9_999_999,
    },
    phone_changed: { kind: 'phone_changed', to: '+0', expiresAt: 0, newEnding: '9999' },
  };
  return locales.flatMap((locale) =>
    (Object.keys(samples) as SmsJobKind[]).map((kind) => {
      const text = renderSms(samples[kind], texts[locale], options);
      return { template: `${locale}.${kind}`, ...segmentsOf(text) };
    }),
  );
}

/**
 * Refuses, naming each, a template that takes more than one segment with the longest values, or
 * that misses or misspells its placeholders. The worker runs this before it takes a job.
 */
export function assertTemplatesFit(
  options: AutofillOptions & { otpLength: number; otpTtlSeconds: number },
  texts: Readonly<Record<SmsLocale, LocaleTexts>> = LOCALE_TEXTS,
): void {
  const problems: string[] = [];
  for (const locale of SMS_LOCALES) {
    for (const kind of Object.keys(PLACEHOLDERS) as SmsJobKind[]) {
      const template = texts[locale].templates[kind];
      const used = [...template.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]);
      for (const name of used) {
        if (!PLACEHOLDERS[kind].includes(name ?? ''))
          problems.push(`SMS template ${locale}.${kind}: unknown {${name}}`);
      }
      if (kind === 'otp' && !used.includes('code')) problems.push(`SMS template ${locale}.otp: has no {code}`);
    }
  }
  for (const check of templateChecks(options, SMS_LOCALES, texts)) {
    if (check.segments > 1) {
      const values = check.template.endsWith('.otp')
        ? `the longest code${options.androidAppHash ? ', the app hash' : ''}` +
          `${options.webOtpDomain ? ' and the WebOTP line' : ''}`
        : 'the longest values';
      problems.push(
        `SMS template ${check.template}: ${check.length} characters with ${values}, ` +
          `over the ${check.limit} of one ${check.encoding} segment`,
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
}
