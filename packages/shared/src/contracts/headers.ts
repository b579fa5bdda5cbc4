/** The request id every answer and every log line of a request carries, across all services. */
export const REQUEST_ID_HEADER = 'x-request-id';
/** The service credential between auth and referral; the gateway never forwards a client's. */
export const INTERNAL_TOKEN_HEADER = 'x-internal-token';
