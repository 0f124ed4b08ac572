# syntax=docker/dockerfile:1
# Patchline operator image: compiled JavaScript and production dependencies only, on Debian's
# slim Node.js runtime with the git CLI and OpenSSH's client (GitOps mode writes to git over
# HTTPS and SSH; docs/decisions.md says why not a JavaScript git), npm removed, running as a
# non-root user.

# --- build: compile TypeScript ---------------------------------------------------------
FROM node:24.21.0-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the `node` devDependency would download a second Node.js binary.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

# --- deps: production dependencies only ------------------------------------------------
FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime ---------------------------------------------------------------------------
FROM node:24.21.0-bookworm-slim AS runtime
# git and ssh for GitOps write-back, gnupg to sign its commits with OpenPGP keys; npm, npx, corepack and yarn are not needed at run time.
# ssh needs the user in /etc/passwd (65532, as distroless' "nonroot").
RUN apt-get update \
  && apt-get install -y --no-install-recommends git openssh-client gnupg ca-certificates \
  && rm -rf /var/lib/apt/lists/* /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
    /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg \
  && groupadd --gid 65532 nonroot \
  && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin nonroot
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
# Numeric, so that runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/node", "/app/dist/main.js"]
