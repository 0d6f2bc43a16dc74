# One image, two programs: `mailfleet operator` and `mailfleet relay --config /etc/mailfleet/relay.yaml`.
# Node.js 24 runs the TypeScript sources directly (type stripping), so there is no build step.
# For people with Docker. `npm run image` (scripts/build-image.ts) builds the same file set, user,
# entrypoint and environment without Docker, reproducibly and without a shell;
# test/unit/image.test.ts keeps the two in step.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY contract ./contract
COPY operator/src ./operator/src
COPY relay/src ./relay/src
# Runs as the image's unprivileged "node" user (uid 1000); the pods also set a read-only root
# filesystem, so the relay writes only to its spool volume.
USER 1000:1000
ENTRYPOINT ["node", "/app/bin/mailfleet.ts"]
CMD ["--help"]
