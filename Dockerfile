# syntax=docker/dockerfile:1
# Séance app image: build with the dev toolchain, ship only what runs.

# Any Debian bookworm image with Node.js 24 on PATH and a `node` user (uid 1000) will do;
# the tests build from a stand-in made from Debian packages, as no registry is reachable.
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: compile TypeScript, then drop dev dependencies -------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# sqlite3 (the embedded default database) falls back to compiling from source when no
# prebuilt binary fits; these tools stay in this stage only.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# ...against the headers that come with the image's Node (in /usr/local/include/node),
# rather than downloading them from nodejs.org.
ENV npm_config_nodedir=/usr/local
# Dependencies first, so editing the source does not reinstall them. --ignore-scripts
# because `prepare` would build before the source is copied; sqlite3's own install
# script is then run on its own.
COPY package.json package-lock.json ./
# The client package is an npm workspace: npm ci needs its manifest too.
COPY client/package.json ./client/package.json
RUN npm ci --ignore-scripts && npm rebuild sqlite3
COPY . .
RUN npm run build && npm prune --omit=dev

# --- runtime ------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# No NODE_ENV here: run alone, the image is `npm start` (one node, SQLite, a random JWT secret
# kept in /app/data). The compose file, the Kubernetes manifests and the Procfile platform set
# NODE_ENV=production, and production refuses to start without JWT_SECRET.
ENV HOST=0.0.0.0 \
    PORT=8000
WORKDIR /app
# Owned by root and read-only to the app user: a compromised process cannot rewrite its code.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
# dist holds the server, the models and the config loader (compiled from TypeScript).
COPY --from=build /app/dist ./dist
# The /play page (static HTML, CSS and script) and the client's browser build it runs on.
COPY --from=build /app/public ./public
COPY --from=build /app/client/dist/seance-client.js ./client/dist/seance-client.js
# The realtime protocol's AsyncAPI document, served at /asyncapi.json.
COPY --from=build /app/docs/asyncapi.yaml ./docs/asyncapi.yaml
# sequelize-cli (the `migrate` service, the Procfile release phase) and the server's own
# umzug runner both read the migrations from here.
COPY --from=build /app/migrations ./migrations
COPY --from=build /app/config/sequelize-cli.js ./config/sequelize-cli.js
COPY --from=build /app/.sequelizerc ./.sequelizerc
# The one place the app writes: the embedded SQLite default (DATABASE_URL unset) keeps its
# file in data/. Mount a volume here to keep it across containers.
RUN mkdir data && chown node:node data
# The `node` user ships with the official image.
USER node
EXPOSE 8000
CMD ["node", "dist/server/index.js"]
