import type { LocaleTexts } from './locale-texts.js';

// Cyrillic makes a message UCS-2, whose one segment holds 70 characters, autofill lines included:
// hence the abbreviations ("мин", "сек"), which also spare Russian's plural forms.
export const ru: LocaleTexts = {
  locale: 'ru',
  templates: {
    otp: 'Код: {code}. Действует {lifetime}',
    invite_activated: 'Код приглашения {invite_code} активировали: +{new}. Всего: {people}',
    phone_changed: 'Аккаунт перенесён на номер …{ending}. Если это не вы, напишите в поддержку',
  },
  lifetime: (seconds) => (seconds % 60 === 0 ? `${seconds / 60} мин` : `${seconds} сек`),
  people: (count) => `${count} чел.`,
  // "+5" spares Russian's plural forms of "раз".
  activations: (count) => String(count),
};
