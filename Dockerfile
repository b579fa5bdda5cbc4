# One Dockerfile, one target per process:
#   docker build --target auth|sms-worker|referral|gateway -t refstack/<target> .
# docker-compose.yml builds all four. A runtime image holds the service's compiled `dist`, its
# package.json (it carries "type": "module") and its production dependencies, nothing else.
# No secret is read at build time or stored in an image: every secret arrives as an environment
# variable when the container starts (see .env.example).

# Debian-based on purpose: the images must not depend on apk/musl.
ARG NODE_IMAGE=node:22-slim

FROM ${NODE_IMAGE} AS build
# Corepack may be missing or unable to download offline; npm ships with every node image.
# Keep the major in step with "engines.pnpm" in package.json.
ARG PNPM_VERSION=12
RUN npm install --global --no-fund --no-audit --loglevel=warn "pnpm@${PNPM_VERSION}" && pnpm --version
ENV CI=true
WORKDIR /src

# Only the lockfile decides what gets downloaded, so this layer survives source edits.
COPY pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
RUN pnpm fetch

COPY . .
RUN pnpm install --frozen-lockfile --offline
RUN pnpm build

# `pnpm deploy` gives each service a self-contained directory: its production dependencies, with
# @refstack/shared injected as a real copy of its published files (dist) rather than a workspace
# symlink that would point outside the directory. pnpm 12 needs neither --legacy nor
# inject-workspace-packages for this.
RUN pnpm deploy --filter @refstack/auth --prod /out/auth \
 && pnpm deploy --filter @refstack/referral --prod /out/referral \
 && pnpm deploy --filter @refstack/gateway --prod /out/gateway

FROM ${NODE_IMAGE} AS runtime
# In a container the operations ports (9091, 9092) listen on every interface so that a scraper on the
# compose network reaches them; they stay private because no port of theirs is ever published.
ENV NODE_ENV=production HOST=0.0.0.0 OPS_HOST=0.0.0.0
WORKDIR /app
# The image's own unprivileged user (uid 1000). Files copied below stay owned by root, so the
# process cannot rewrite its own code.
USER node
# Node is PID 1 (the entrypoint execs it) and the services close gracefully on SIGTERM themselves.
STOPSIGNAL SIGTERM

# The auth package has two entry points; both images share these layers.
FROM runtime AS auth-package
COPY --from=build /out/auth/package.json ./package.json
COPY --from=build /out/auth/node_modules ./node_modules
COPY --from=build /out/auth/dist ./dist

FROM auth-package AS auth
EXPOSE 3001
CMD ["node", "dist/server.js"]

FROM auth-package AS sms-worker
CMD ["node", "dist/sms-worker.js"]

FROM runtime AS referral
COPY --from=build /out/referral/package.json ./package.json
COPY --from=build /out/referral/node_modules ./node_modules
COPY --from=build /out/referral/dist ./dist
EXPOSE 3002
# Applies pending migrations before it listens; `node dist/cli/migrate.js` does only that.
CMD ["node", "dist/server.js"]

FROM runtime AS gateway
COPY --from=build /out/gateway/package.json ./package.json
COPY --from=build /out/gateway/node_modules ./node_modules
COPY --from=build /out/gateway/dist ./dist
EXPOSE 8080
CMD ["node", "dist/server.js"]
