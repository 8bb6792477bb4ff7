FROM node:22-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
ENV NODE_ENV=production HUB_CONFIG_DIR=/app/config
# The role (gateway, production, historian, iot, quality, migrate) is the command.
ENTRYPOINT ["npx", "tsx", "bin/hub.ts"]
CMD ["all"]
