# syntax=docker/dockerfile:1
# kube-vertex-proxy: Node.js 24 (the major pinned as the devDependency `node`).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the image already is Node 24; the `node` pin's installer is for workstations.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The image's own node runs tsc (node_modules/.bin/node is the uninstalled workstation pin).
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Numeric non-root user; nothing is written at run time, so the root filesystem can be read-only.
USER 65532:65532
EXPOSE 8080 9090
# node is PID 1's direct child-free process: SIGTERM reaches it and triggers the graceful drain.
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve", "--config", "/etc/kube-vertex-proxy/config.yaml"]
