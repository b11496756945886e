# cmk-service: API and worker in one image (CMK_ROLE picks which runs). Node.js 22 LTS.
# Build stage: all dependencies, TypeScript compiled to dist/.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs ./scripts/build.mjs
COPY src ./src
RUN npm run build

# Runtime dependencies only: no TypeScript, tsx, esbuild or test tools in the image.
FROM node:22-bookworm-slim AS runtime-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:22-bookworm-slim
# Production: CMK_MODE must be set explicitly (azure, or sandbox for a demo), and REDIS_URL must answer.
ENV NODE_ENV=production
WORKDIR /app
COPY --from=runtime-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./package.json
# In sandbox mode the emulator writes its CA (and seed key cache) here; compose mounts it on the host.
RUN mkdir -p /app/.sandbox && chown node:node /app/.sandbox
USER node
EXPOSE 3000 8443
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/src/server.js"]
