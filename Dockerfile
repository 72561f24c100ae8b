# The headcount service on Node 24 (LTS), pinned to a minor. Its database comes from DATABASE_URL (see docker-compose.yml).
FROM node:24.21-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY web ./web
COPY scripts/build-web.mjs ./scripts/
RUN npx tsc -p tsconfig.json && node scripts/build-web.mjs

FROM node:24.21-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
COPY sql ./sql
USER node
EXPOSE 8080
# A small young generation, and an old generation that grows by half of what is live
# (V8 picks 1.1-4x by its timing): the heap follows the memory budgets instead of running
# ahead of garbage collection (docs/operations.md, "Guarantees and limits").
CMD ["node", "--max-semi-space-size=4", "--heap-growing-percent=50", "dist/server.js"]
