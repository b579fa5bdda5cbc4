// Local stand-ins for the SMS providers' HTTP APIs, each checking requests as the real one does.
export * from './fake-provider.js';
export * from './smsc.js';
export * from './smsru.js';
export * from './telegram.js';
export * from './twilio.js';
