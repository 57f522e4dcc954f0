/**
 * Builds the domain services from configuration: the one place that wires `lib/` together, used by `main.ts`
 * and by tests (which pass overrides such as a fixed clock).
 */
import { HttpClientPool } from "./net/http_client_pool.ts";
import { settlesWithin } from "./settles_within.ts";
import type { Config } from "./config.ts";
import type { Db } from "./db/db.ts";
import type { Logger } from "./log.ts";
import { createEventBus, type EventBus } from "./events.ts";
import { createKeyHasher } from "./auth/access_key.ts";
import { createKeyResolver, type KeyResolver } from "./auth/key_resolver.ts";
import { createSessions, type Sessions } from "./auth/session.ts";
import { createLoginService, type LoginService } from "./auth/login.ts";
import { createKeyGuessThrottle, type KeyGuessThrottle } from "./auth/key_guesses.ts";
import { createSessionRevocations, type SessionRevocations } from "./auth/revocations.ts";
import { createEncryptor, type Encryptor } from "./crypto/mod.ts";
import { type BedrockCredentialStore, createBedrockCredentialStore } from "./admin/bedrock_credentials.ts";
import { type Admin, createAdmin } from "./admin/admin.ts";
import { CircuitBreakers } from "./proxy/circuit_breaker.ts";
import { PriceBook } from "./usage/pricing.ts";
import { UsageRecorder } from "./usage/recorder.ts";
import { BudgetGuard } from "./usage/budgets.ts";
import { PlanClient } from "./proxy/plan_client.ts";
import { BedrockInvoker } from "./proxy/bedrock/client.ts";
import { ProxyMetrics } from "./proxy/metrics.ts";
import { createProxy, type Proxy } from "./proxy/proxy.ts";
import { join } from "node:path";
import { attachNotifyTransport } from "./db/notify.ts";
import { RetentionJob } from "./usage/retention.ts";
import { PeerWatch } from "./net/peer_watch.ts";

/** Everything the routes call. */
export interface Services {
  bus: EventBus;
  resolver: KeyResolver;
  sessions: Sessions;
  /** Signed-out sessions (the list `sessions` checks). */
  revocations: SessionRevocations;
  login: LoginService;
  /** Access-key guessing per client address, shared with the other replicas. */
  keyGuesses: KeyGuessThrottle;
  encryptor: Encryptor;
  credentials: BedrockCredentialStore;
  admin: Admin;
  breakers: CircuitBreakers;
  prices: PriceBook;
  recorder: UsageRecorder;
  budgets: BudgetGuard;
  metrics: ProxyMetrics;
  bedrock: BedrockInvoker;
  proxy: Proxy;
  /**
   * Notices clients that leave before their answer's headers (see `lib/net/peer_watch.ts`); told the port once
   * the server listens.
   */
  peers: PeerWatch;
  now: () => Date;
  /** Starts background work: usage flushing, cross-replica events. */
  start(): Promise<void>;
  /** Stops background work, flushing usage (up to `deadlineMs`). */
  stop(deadlineMs: number): Promise<void>;
}

/** Test and deployment seams. */
export interface ServiceOverrides {
  now?: () => Date;
  encryptor?: Encryptor;
  kmsCredentials?: { accessKeyId: string; secretAccessKey: string };
  fetch?: typeof fetch;
}

/** Creates the services. */
export async function createServices(
  config: Config,
  db: Db,
  log: Logger,
  overrides: ServiceOverrides = {},
): Promise<Services> {
  const now = overrides.now ?? (() => new Date());
  const nowMs = () => now().getTime();
  const bus = createEventBus();
  const hasher = await createKeyHasher(config.keyHasherSecret);
  const resolver = createKeyResolver({ db, hasher, ttlSeconds: config.accessKeyCacheTtl, bus, now: nowMs });
  const revocations = createSessionRevocations({ db, bus, now: nowMs });
  const sessions = createSessions({
    secret: config.jwtSecret,
    ttlSeconds: config.jwtTtlSeconds,
    now,
    passwordHash: config.adminPasswordHash,
    username: config.adminUsername,
    revocations,
  });
  const login = createLoginService({
    username: config.adminUsername,
    passwordHash: config.adminPasswordHash,
    sessions,
    now: nowMs,
    bus,
  });
  const keyGuesses = createKeyGuessThrottle({ bus, now: nowMs });
  const encryptor = overrides.encryptor ?? createEncryptor({
    kmsKeyId: config.kmsKeyId,
    kmsEndpoint: config.kmsEndpoint || undefined,
    region: kmsRegion(config),
    localKey: config.localEncryptionKey,
    kmsCredentials: overrides.kmsCredentials,
  });
  const credentials = createBedrockCredentialStore({
    db,
    encryptor,
    ttlSeconds: config.bedrockKeyCacheTtl,
    bus,
    now: nowMs,
  });
  const admin = createAdmin({ db, hasher, bus, credentials, now });
  const breakers = new CircuitBreakers({
    failureThreshold: config.circuitFailureThreshold,
    failureWindowMs: config.circuitFailureWindow * 1000,
    resetTimeoutMs: config.circuitResetTimeout * 1000,
    now: nowMs,
    onTransition: (e) => {
      log.info("circuit transition", {
        access_key_id: e.key,
        from: e.from,
        to: e.to,
        reason: e.reason,
        reopens_at: e.reopensAt === null ? null : new Date(e.reopensAt).toISOString(),
      });
      bus.publish({
        type: "circuit",
        accessKeyId: e.key,
        state: e.to,
        reopensAt: e.reopensAt,
        probing: e.probing,
      });
    },
  });
  // A transition published by another replica: apply it without re-broadcasting.
  bus.subscribe((e, origin) => {
    if (e.type === "circuit" && origin === "remote") {
      breakers.applyRemote(e.accessKeyId, { state: e.state, reopensAt: e.reopensAt, probing: e.probing });
    }
  });
  const prices = new PriceBook({ ...config.modelPricing });
  const budgets = new BudgetGuard({ db, timeZone: config.timezone, now: nowMs, log });
  bus.subscribe((e) => {
    if (e.type === "user_changed") budgets.forget(e.userId);
  });
  const recorder = new UsageRecorder({
    db,
    log,
    timeZone: config.timezone,
    spoolDir: join(config.dataDir, "usage-spool"),
    flushIntervalMs: config.usageFlushIntervalMs,
    queueMax: config.usageQueueMax,
    retentionDays: config.usageRetentionDays,
    onCommitted: (records) => budgets.onCommitted(records),
  });
  const metrics = new ProxyMetrics();
  const peers = new PeerWatch({
    onUnavailable: (e) =>
      log.info(
        "client socket watch off: a client leaving before its answer's headers is noticed only when they come " +
          "(it reads /proc/net/tcp, which Deno allows only with --allow-all)",
        { error: e.message },
      ),
  });
  let detach: (() => Promise<void>) | null = null;
  const retention = new RetentionJob({ db, log, days: config.usageRetentionDays });
  // Bedrock gets the plan upstream's limits: a whole non-streamed answer, and the longest silence of a stream.
  // One pool for both upstreams: each client keeps a connection per host.
  const upstreamClients = new HttpClientPool(config.upstreamConnections);
  const bedrock = new BedrockInvoker({
    httpClients: upstreamClients,
    endpoint: config.bedrockEndpoint || undefined,
    requestTimeoutMs: config.upstreamResponseTimeoutMs,
    streamIdleTimeoutMs: config.upstreamFirstByteTimeoutMs,
  });
  const plan = new PlanClient({
    baseUrl: config.planApiUrl,
    connectTimeoutMs: config.upstreamConnectTimeoutMs,
    firstByteTimeoutMs: config.upstreamFirstByteTimeoutMs,
    probe: !config.egressProxy,
    fetch: overrides.fetch,
    clients: upstreamClients,
  });
  const proxy = createProxy({
    config,
    log,
    resolver,
    credentials,
    breakers,
    recorder,
    prices,
    budgets,
    plan,
    bedrock,
    metrics,
  });
  return {
    bus,
    resolver,
    sessions,
    revocations,
    login,
    keyGuesses,
    encryptor,
    credentials,
    admin,
    breakers,
    prices,
    recorder,
    budgets,
    metrics,
    bedrock,
    proxy,
    peers,
    now,
    async start() {
      await revocations.load();
      recorder.start();
      retention.start();
      detach = await attachNotifyTransport({
        db,
        bus,
        log,
        onResync: () => {
          resolver.expireAll(); // re-read on next use, yet still served if the database fails again
          credentials.expireAll(); // likewise: still used if the database fails again
          breakers.clear();
          revocations.load().catch((e) =>
            log.warn("could not reload signed-out sessions", { error: (e as Error).message })
          );
        },
      });
    },
    async stop(deadlineMs) {
      // Each step is bounded: a stalled database connection must not keep the usage queue from the spool.
      peers.close();
      if (detach) await settlesWithin(detach(), 1_000);
      await settlesWithin(retention.stop(), 1_000);
      await recorder.close(deadlineMs);
      bedrock.close();
      upstreamClients.close();
    },
  };
}

/** The KMS key's region: from its ARN when it is one, else the Bedrock region. */
function kmsRegion(config: Config): string {
  const m = /^arn:aws[\w-]*:kms:([a-z0-9-]+):/.exec(config.kmsKeyId);
  return m ? m[1] : config.bedrockRegion;
}
