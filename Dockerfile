# Claude Code proxy: one Deno process (proxy, admin API and console). Built by `deno task deploy` (CDK) or
# `docker build -t claude-code-proxy .`; see README.md, "Deploying to AWS".
ARG DENO_VERSION=2.9.6

# ---- deps: npm dependencies from the lockfile into node_modules (layer kept until deno.json/deno.lock change)
FROM denoland/deno:${DENO_VERSION} AS deps
ENV DENO_NO_UPDATE_CHECK=1
WORKDIR /app
COPY deno.json deno.lock ./
RUN deno install --frozen

# ---- build: CSS (Tailwind CLI) and client islands bundle into static/build/
FROM deps AS build
COPY . .
RUN deno task build

# ---- runtime
FROM denoland/deno:${DENO_VERSION}
ENV DENO_NO_UPDATE_CHECK=1 \
    DENO_NO_PROMPT=1 \
    PROXY_ENV=production \
    PROXY_HOST=0.0.0.0 \
    PROXY_PORT=8000 \
    PROXY_DATA_DIR=/app/.data \
    PROXY_SHUTDOWN_DRAIN_SECONDS=25
WORKDIR /app
# node_modules is self-contained: the runtime needs nothing else from the deps stage.
COPY --from=deps /app/node_modules ./node_modules
COPY . .
COPY --from=build /app/static/build ./static/build
# Everything stays root-owned and read-only to the app; only the data dir (usage spool) is the app's.
# `deno cache` resolves main.ts's whole graph now (a broken import fails the build, not the start) and keeps
# the transpiled code in DENO_DIR (/deno-dir) so tasks start fast.
RUN deno cache --frozen main.ts \
 && mkdir -p /app/.data \
 && chown deno:deno /app/.data
USER deno
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD ["deno", "eval", "--no-config", "const r = await fetch(`http://127.0.0.1:${Deno.env.get('PROXY_PORT') ?? 8000}/health`); await r.body?.cancel(); if (!r.ok) Deno.exit(1);"]
# The image's entrypoint (tini) forwards SIGTERM; the app drains in-flight requests for
# PROXY_SHUTDOWN_DRAIN_SECONDS, then exits (ECS stopTimeout is 35 s).
# The permissions of `deno task start`, narrowed to reading the app and writing only the data dir.
CMD ["deno", "run", "--cached-only", "--allow-net", "--allow-env", "--allow-read=/app", "--allow-write=/app/.data", "--allow-sys", "main.ts"]
