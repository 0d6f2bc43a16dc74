# One image, two programs: `mailfleet operator` and `mailfleet relay --config /etc/mailfleet/relay.yaml`.
# Node.js 24 runs the TypeScript sources directly (type stripping), so there is no build step.
# For people with Docker. `npm run image` (scripts/build-image.ts) builds the same file set, user,
# entrypoint and environment without Docker, reproducibly and without a shell;
# test/unit/image.test.ts keeps the two in step.
#
# The base is pinned by digest (node:24-bookworm-slim, Node.js 24.18.0): a rebuild gets the same
# base until this line changes. To move on: docker buildx imagetools inspect node:24-bookworm-slim
# and replace the digest in both FROM lines.
FROM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d
# docker build --build-arg VERSION=$(node -p 'require("./package.json").version') --build-arg REVISION=$(git rev-parse HEAD) .
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.source="https://github.com/mailfleet/mailfleet"
LABEL org.opencontainers.image.version="${VERSION}"
LABEL org.opencontainers.image.revision="${REVISION}"
LABEL org.opencontainers.image.licenses="Apache-2.0"
LABEL org.opencontainers.image.title="mailfleet"
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
