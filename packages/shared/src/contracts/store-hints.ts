export type StoreName = 'Postgres' | 'Redis';

/** What to do when a store is not there: said by the processes, `pnpm start` and `pnpm test`. */
export const STORE_START_HINTS: Record<StoreName, string> = {
  Postgres:
    'Start one with `docker compose up -d postgres`, or the local service ' +
    '(`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`), ' +
    'or point DATABASE_URL at a running server.',
  Redis:
    'Start one with `docker compose up -d redis`, or a local one ' +
    '(`redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no`), ' +
    'or point REDIS_URL at a running server.',
};
