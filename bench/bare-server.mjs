// The baseline: a bare Fastify "hello" server, started the same way as the services (its own
// process, NODE_ENV=production), no logging, no plugins.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/hello', async () => ({ hello: 'world' }));
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
process.stdout.write(`listening ${app.server.address().port}\n`);
