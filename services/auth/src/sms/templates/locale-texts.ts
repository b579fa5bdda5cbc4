import type { SmsJobKind, SmsLocale } from '@refstack/shared/contracts';

/**
 * One language's SMS texts. A template names its values in braces: `{code}` and `{lifetime}` in a
 * login message, `{invite_code}`, `{new}` and `{people}` in an inviter notice. A template must fit one SMS
 * segment with the longest values (the worker refuses to start otherwise), so keep them short:
 * 160 characters in GSM-7, 70 as soon as one character is not GSM-7 (any Cyrillic letter).
 */
export interface LocaleTexts {
  locale: SmsLocale;
  templates: Record<SmsJobKind, string>;
  /** A code's lifetime in words: "5 minutes". */
  lifetime(seconds: number): string;
  /** How many people have activated a code, as the notice says it. */
  people(count: number): string;
  /** How many activations a notice reports since the previous one. */
  activations(count: number): string;
}
