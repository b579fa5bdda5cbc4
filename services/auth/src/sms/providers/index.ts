import type { SmsConfig, SmsProviderName } from '@refstack/shared/contracts';
import { consoleSmsProvider } from './console.js';
import type { SmsProvider } from './provider.js';
import { smscProvider } from './smsc.js';
import { smsruProvider } from './smsru.js';
import { telegramGatewayProvider } from './telegram.js';
import { twilioProvider } from './twilio.js';

export { SmsPermanentError, SmsTransientError, type Acceptance, type SmsProvider } from './provider.js';
export { consoleSmsProvider } from './console.js';

/** The path under PUBLIC_BASE_URL where a provider posts its delivery receipts (through the gateway). */
export const receiptPath = (provider: SmsProviderName): string => `/webhooks/sms/${provider}`;

/** The receipt URL a provider is given per message, when PUBLIC_BASE_URL is set. */
export function receiptUrl(sms: Pick<SmsConfig, 'publicBaseUrl'>, provider: SmsProviderName): string | undefined {
  return sms.publicBaseUrl === undefined ? undefined : `${sms.publicBaseUrl}${receiptPath(provider)}`;
}

/**
 * The providers the routes name, built from their settings (loadConfig has checked that each has
 * its credentials).
 */
export function createSmsProviders(sms: SmsConfig, write?: (line: string) => void): Map<SmsProviderName, SmsProvider> {
  const providers = new Map<SmsProviderName, SmsProvider>();
  for (const name of sms.providers) providers.set(name, createSmsProvider(name, sms, write));
  return providers;
}

function createSmsProvider(name: SmsProviderName, sms: SmsConfig, write?: (line: string) => void): SmsProvider {
  switch (name) {
    case 'console':
      return consoleSmsProvider(write);
    case 'smsru':
      return smsruProvider(sms.smsru);
    case 'smsc':
      return smscProvider(sms.smsc);
    case 'twilio':
      return twilioProvider(sms.twilio, receiptUrl(sms, 'twilio'));
    case 'telegram':
      return telegramGatewayProvider(sms.telegram, receiptUrl(sms, 'telegram'));
  }
}
