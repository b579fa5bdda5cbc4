import t from 'tap';
import { buildAuthTestApp } from './auth-test-app.js';

interface Operation {
  security?: unknown;
  deprecated?: boolean;
}

t.test('every public auth operation declares that it takes no bearer token', async (t) => {
  const { app } = await buildAuthTestApp(t);
  const spec = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, Record<string, Operation>>;
  };
  const own = [
    ['/api/v1/auth/send-code', 'post'],
    ['/api/v1/auth/verify', 'post'],
    ['/api/v1/auth/refresh', 'post'],
    ['/api/v1/auth/logout', 'post'],
    ['/api/v1/auth/token/verify', 'post'],
    ['/.well-known/jwks.json', 'get'],
  ] as const;
  for (const [path, method] of own) {
    const operation = spec.paths[path]?.[method];
    t.same(operation?.security, [], `${method} ${path}`);
    t.notOk(operation?.deprecated, `${method} ${path} is not deprecated`);
  }
});
