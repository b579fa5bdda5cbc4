import type { SmsLocale } from '@refstack/shared/contracts';
import { en } from './en.js';
import type { LocaleTexts } from './locale-texts.js';
import { ru } from './ru.js';

export type { LocaleTexts } from './locale-texts.js';

/** Every SMS locale's texts; the type makes a locale without its file a compile error. */
export const LOCALE_TEXTS: Readonly<Record<SmsLocale, LocaleTexts>> = { en, ru };
