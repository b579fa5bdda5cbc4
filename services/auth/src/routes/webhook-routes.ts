import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problemResponses } from '@refstack/shared/contracts';
import { Type } from 'typebox';
import type { ReceiptService } from '../sms/receipt-service.js';

export interface WebhookRoutesOptions {
  receipts: ReceiptService;
}

/**
 * `POST /webhooks/sms/{provider}`: delivery receipts. Registered as a plugin of its own, because
 * a receipt's signature covers the exact bytes the provider sent (form or JSON): the body reaches
 * the provider's checker unparsed.
 */
export const webhookRoutes: FastifyPluginAsyncTypebox<WebhookRoutesOptions> = async (app, { receipts }) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.post(
    '/webhooks/sms/:provider',
    {
      schema: {
        tags: ['webhooks'],
        // Authenticated by the provider's signature over the receipt, not by a token.
        security: [],
        summary: "An SMS provider's delivery receipt (smsru, twilio, telegram)",
        description:
          'Register `PUBLIC_BASE_URL/webhooks/sms/<provider>` with the provider. The receipt must carry the ' +
          "provider's signature (`X-Twilio-Signature`; SMS.ru's `hash`; Telegram's `X-Request-Signature`), " +
          'is applied once (a second copy is answered as taken and changes nothing), and moves the message ' +
          'it names forward: queued, sent, delivered or failed.',
        params: Type.Object({ provider: Type.String({ maxLength: 32 }) }),
        response: {
          200: Type.String({
            description: 'Taken, or taken before; the body is what the provider expects (`100` for SMS.ru).',
          }),
          ...problemResponses('webhook_signature_invalid', 'not_found', 'service_unavailable'),
        },
      },
    },
    async (request, reply) => {
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const answer = await receipts.receive(request.params.provider, {
        url: request.url,
        headers: request.headers,
        body,
      });
      return reply.code(200).type(answer.contentType).send(answer.body);
    },
  );
};
