# syntax=docker/dockerfile:1
# kube-vertex-proxy: Node.js 24 (the major pinned as the devDependency `node`).
#
# Stages: deps (every dependency) → build (tsc) → prod-deps (production
# dependencies only, from the same lockfile) → runtime (dist + prod deps, no
# npm, non-root). test/integration/production-artifact.test.ts performs the
# same steps outside Docker (no Docker engine on the build machines) and starts
# the result against the stand-ins; keep the two in step.
# Pinned by digest (the tag moves with every Node and Debian update; a digest
# builds the same base every time). Update tag and digest together, e.g. with
# `docker buildx imagetools inspect node:24-bookworm-slim`.
ARG NODE_IMAGE=node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the image already is Node 24; the `node` pin's installer is
# for workstations, and no production dependency needs an install script.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund

FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The image's own node runs tsc (node_modules/.bin/node is the uninstalled workstation pin).
# src/ only: the stand-ins and `npm start` live in dev/ and never enter the image
# (test/integration/image-tree.test.ts checks the tree this stage produces).
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ARG VERSION=dev
LABEL org.opencontainers.image.title="kube-vertex-proxy" \
      org.opencontainers.image.description="Identity-aware reverse proxy between GKE workloads and Vertex AI" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# No package manager at run time: nothing is installed there, and less to patch.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
# The chart's defaults (helm/kube-vertex-proxy/values.yaml: maxSemiSpaceMiB, mallocTrimThresholdBytes).
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=4" \
    GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072
WORKDIR /app
COPY --from=prod-deps /src/package.json ./package.json
COPY --from=prod-deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Numeric non-root user (the chart's runAsUser): Kubernetes can check
# runAsNonRoot without a passwd lookup. Nothing is written at run time (audit
# files go to a mounted volume, temporary files to /tmp), so the root
# filesystem can be mounted read-only.
USER 65532:65532
EXPOSE 8080 9090
# Exec form: node is PID 1 and receives SIGTERM itself; `serve` handles it
# (readiness off, drain in-flight requests for server.shutdownGrace, exit 0).
# The proxy starts no child processes, so PID 1 has no zombies to reap.
# --initial-old-space-size: the chart's initialHeapMiB default (NODE_OPTIONS cannot carry it).
# No HEALTHCHECK: in Kubernetes the probes on the admin port (/healthz,
# /readyz) do that job.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--initial-old-space-size=64", "dist/cli.js"]
CMD ["serve", "--config", "/etc/kube-vertex-proxy/config.yaml"]
