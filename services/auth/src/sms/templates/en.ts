import type { LocaleTexts } from './locale-texts.js';

export const en: LocaleTexts = {
  locale: 'en',
  templates: {
    otp: 'Your login code is {code}. It expires in {lifetime}.',
    invite_activated:
      'Your invite code {invite_code} was activated {new} since the last notice. {people} joined with it so far.',
    phone_changed:
      'Your account moved to the phone number ending in {ending}. If you did not do this, contact support.',
  },
  lifetime(seconds) {
    if (seconds % 60 !== 0) return `${seconds} seconds`;
    const minutes = seconds / 60;
    return minutes === 1 ? '1 minute' : `${minutes} minutes`;
  },
  people: (count) => (count === 1 ? '1 person has' : `${count} people have`),
  activations: (count) => (count === 1 ? 'once' : `${count} times`),
};
