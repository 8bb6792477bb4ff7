# The hub's image: one build, every role (the command). Node 24 is the LTS the hub is tested on (docs/operations.md, "Node.js").
FROM node:24-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; the image's own Node runs them (the `node` devDependency is for machines without 24).
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
ENV NODE_ENV=production HUB_CONFIG_DIR=/app/config
# The role (all, gateway, production, historian, iot, quality, ingest, migrate) is the command.
ENTRYPOINT ["npx", "tsx", "bin/hub.ts"]
CMD ["all"]
