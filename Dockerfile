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

# ---- runtime-deps: only the packages main.ts loads; the CDK, Tailwind, Puppeteer and the Anthropic SDK stay out
# (node_modules about 70 MB instead of 350 MB). See scripts/runtime_deps.ts.
FROM denoland/deno:${DENO_VERSION} AS runtime-deps
ENV DENO_NO_UPDATE_CHECK=1
WORKDIR /app
COPY deno.json deno.lock ./
COPY scripts/runtime_deps.ts scripts/
RUN deno run --no-config --allow-read=. --allow-write=. scripts/runtime_deps.ts \
 && deno install

# ---- runtime
FROM denoland/deno:${DENO_VERSION}
ENV DENO_NO_UPDATE_CHECK=1 \
    DENO_NO_PROMPT=1 \
    NO_COLOR=1 \
    PROXY_ENV=production \
    PROXY_HOST=0.0.0.0 \
    PROXY_PORT=8000 \
    PROXY_DATA_DIR=/app/.data \
    PROXY_SHUTDOWN_DRAIN_SECONDS=25 \
    MALLOC_MMAP_THRESHOLD_=131072
# MALLOC_MMAP_THRESHOLD_: glibc maps allocations of 128 KiB or more (connection buffers, large request bodies)
# on their own and returns them when freed. By default it carves them from the main heap, whose freed middle it
# keeps: holding 1,000 open streams took 677-686 MB instead of 608-619 MB (bench/bench.ts --only=open). 64 KiB
# saved a little more memory but cost 6-9 % more CPU per request; 128 KiB costs none measurable.
WORKDIR /app
COPY . .
# The trimmed config and lock replace the full ones; node_modules is self-contained.
COPY --from=runtime-deps /app/deno.json /app/deno.lock ./
COPY --from=runtime-deps /app/node_modules ./node_modules
COPY --from=build /app/static/build ./static/build
# Everything stays root-owned and read-only to the app; only the data dir (usage spool) is the app's.
# `deno cache --frozen` resolves main.ts's whole graph now against the trimmed lock (a broken import, or a
# package the trimming dropped that main.ts needs, fails the build, not the start) and keeps the transpiled
# code in DENO_DIR (/deno-dir) so tasks start fast.
RUN deno cache --frozen main.ts \
 && mkdir -p /app/.data \
 && chown deno:deno /app/.data
# The task runs with a read-only root filesystem and a volume here: declared as one, the volume starts with this
# directory's owner (the app's user), not root's.
VOLUME ["/app/.data"]
USER deno
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD ["deno", "eval", "--no-config", "const r = await fetch(`http://127.0.0.1:${Deno.env.get('PROXY_PORT') ?? 8000}/health`); await r.body?.cancel(); if (!r.ok) Deno.exit(1);"]
# The image's entrypoint (tini) forwards SIGTERM; the app drains in-flight requests for
# PROXY_SHUTDOWN_DRAIN_SECONDS, then exits (ECS stopTimeout is 40 s).
# The permissions of `deno task start`, narrowed to reading the app and writing only the data dir.
CMD ["deno", "run", "--cached-only", "--allow-net", "--allow-env", "--allow-read=/app", "--allow-write=/app/.data", "--allow-sys", "main.ts"]
