/**
 * The proxy's hot path: authorise the access key, forward the request to the plan upstream untouched, fall back to
 * Bedrock when the plan upstream cannot answer (before the client has seen a byte), and record usage beside the
 * stream without ever waiting on the database.
 *
 * The route layer only parses the URL; everything else is here so it can be tested without HTTP plumbing.
 */
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { redactPath } from "../log.ts";
import type { KeyResolver, ResolvedKey } from "../auth/key_resolver.ts";
import type { BedrockCredentialStore } from "../admin/bedrock_credentials.ts";
import type { CircuitBreakers } from "./circuit_breaker.ts";
import type { UsageRecorder } from "../usage/recorder.ts";
import type { PriceBook } from "../usage/pricing.ts";
import type { BudgetGuard } from "../usage/budgets.ts";
import type { UsageRecord } from "../db/usage.ts";
import { HttpError, isDatabaseUnavailable } from "../errors.ts";
import { TimedOut } from "../within.ts";
import { betaValues, clientResponseHeaders, upstreamRequestHeaders } from "./headers.ts";
import type { PlanClient, PlanResult } from "./plan_client.ts";
import { type StreamUsage, usageFromJson } from "./sse_usage.ts";
import { classifyPlanAnswer, type FallbackDecision, fallbackReason, isFallbackStatus } from "./fallback.ts";
import type { BedrockCredentials, BedrockInvoker } from "./bedrock/client.ts";
import { mapModel, profileCandidates, resolveAlias, withoutProfile } from "./bedrock/model_map.ts";
import { modelCatalogue } from "./bedrock/model_catalogue.ts";
import {
  anthropicOnlyTool,
  DEFAULT_BEDROCK_BETAS,
  takesStructuredOutputs,
  toBedrockBody,
} from "./bedrock/translate.ts";
import {
  anthropicErrorBody,
  isModelIdRefusal,
  mapBedrockError,
  SHUTDOWN_BEFORE_ANSWER,
  ShutdownError,
} from "./bedrock/errors.ts";
import type { ProxyMetrics } from "./metrics.ts";
import { chunkReader, readBody, readUpTo, streamBody } from "./body_reader.ts";
import { idleWatch } from "./idle_watch.ts";
import { BufferPool } from "./buffer_pool.ts";
import { scanMessagesBody } from "./json_scan.ts";
import { modelPage } from "./bedrock/model_page.ts";
import { fitToModel, takesThinkingDisplay } from "./bedrock/fit_to_model.ts";
import { concatChunks } from "../encoding.ts";
import { decodeBody, relay, silenceBounded } from "./relay.ts";
import {
  NULL_BODY_STATUSES,
  type PlanAnswer,
  planAnswerOf,
  replayPlanAnswer,
  withEncoding,
} from "./plan_answer.ts";

/** What the proxy needs. */
export interface ProxyDeps {
  config: Config;
  log: Logger;
  resolver: KeyResolver;
  credentials: BedrockCredentialStore;
  breakers: CircuitBreakers;
  recorder: UsageRecorder;
  prices: PriceBook;
  budgets: BudgetGuard;
  plan: PlanClient;
  bedrock: BedrockInvoker;
  metrics: ProxyMetrics;
  now?: () => number;
}

/** One incoming proxy request, as the route hands it over. */
export interface ProxyRequest {
  requestId: string;
  /** The client's own `x-request-id`, logged beside ours for correlation. */
  clientRequestId?: string;
  rawKey: string;
  /**
   * `/v1/...` plus the query string as the client sent them, in the runtime's URL form: characters a URL may
   * not hold raw (quotes, `<`, `{`) arrive percent-encoded, as a fetch client would have sent them.
   */
  pathAndQuery: string;
  method: string;
  headers: Headers;
  request: Request;
  /** Fires when the client goes away. */
  signal: AbortSignal;
  /**
   * Key guessing from the client's address: a key the database was asked about and did not know counts as a
   * failure. Past the limit, lookups of keys this process has not seen are paced, not refused: a valid key
   * from a throttled address gets through after a short wait (a retryable 429), keys already seen at once.
   */
  guesses?: {
    /** 0 when a lookup may go ahead now, else the seconds until it may. */
    pace(): number;
    fail(): void;
  };
  /** Called once the request has its usage row and log line, so the access log does not add a second. */
  onRecorded?: () => void;
}

/** Per-request bookkeeping that ends up in the usage row and the log line. */
interface Outcome {
  provider: "anthropic" | "bedrock";
  isFallback: boolean;
  fallbackReason: string | null;
  statusCode: number;
  errorType: string | null;
  modelServed: string | null;
  ttfbMs: number | null;
  /** Bedrock only: whether the requested name mapped to a model (not the default for an unknown name). */
  modelKnown?: boolean;
}

const decoder = new TextDecoder();
const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" };
/** Largest non-streaming answer read whole for its usage; a larger one is relayed as it comes, usage unread. */
const MAX_JSON_TAP = 16 * 1024 * 1024;
/** Request-body memory kept for reuse, and the largest body buffer kept (bigger ones are rare). */
const BODY_POOL_BYTES = 32 * 1024 * 1024;
/** The refusal for a key routed to Bedrock that has no credentials to call it with. */
const NO_BEDROCK_CREDENTIALS =
  "this access key has no Bedrock credentials (routing strategy bedrock_only); ask the proxy admin to add them";
/** How long the Anthropic API gets to answer count_tokens when Bedrock could answer instead. */
const COUNT_FIRST_BYTE_TIMEOUT_MS = 10_000;
/** How long the Anthropic API gets to answer a model list a Bedrock list can replace (Claude Code waits 3 s). */
const MODELS_FIRST_BYTE_TIMEOUT_MS = 2_000;
/** The most of a plan error answer kept to replay when a side request's Bedrock answer fails too. */
const MAX_SIDE_ERROR_BODY = 64 * 1024;
const BODY_POOL_MAX_BUFFER = 4 * 1024 * 1024;

/** The proxy's entry points. */
export interface Proxy {
  /** `POST /v1/messages`: the product's hot path. */
  messages(req: ProxyRequest): Promise<Response>;
  /**
   * `POST /v1/messages/count_tokens`: the plan upstream, or Bedrock's CountTokens for a key routed to Bedrock,
   * with its circuit open, or when the plan upstream cannot answer; no usage row (counting is free).
   */
  countTokens(req: ProxyRequest): Promise<Response>;
  /**
   * `GET /v1/models[/<id>]`: the Anthropic API's list, or the models this proxy serves from Bedrock for a key
   * routed there, with its circuit open, or when the Anthropic API cannot answer (Claude Code's model discovery).
   */
  models(req: ProxyRequest, modelId: string | null): Promise<Response>;
  /** Every other `/v1/*` path: forwarded as is; no usage row. */
  passThrough(req: ProxyRequest): Promise<Response>;
  /**
   * Ends every answer still streaming (at the shutdown drain deadline): each client gets an `error` event and
   * each request's usage so far is recorded, instead of both being cut off by the exit.
   */
  interruptStreams(): void;
}

/**
 * On the proxy's own refusals that no retry can change (the access key, its user, missing credentials).
 * Claude Code retries a 401 ten times with backoff and waits out a 429's `retry-after`, so a mistyped or
 * rotated-out key used to leave it hanging for about three minutes before showing why; the Anthropic SDKs
 * (Claude Code's included) honour this header and show the error at once.
 */
const FINAL = Object.freeze({ "x-should-retry": "false" });

/** Paths on which `PROXY_PLAN_API_KEY` stands in for missing client credentials. */

/** Creates the proxy; `messages` handles `/v1/messages`, `passThrough` every other `/v1/*` path. */
export function createProxy(deps: ProxyDeps): Proxy {
  const now = deps.now ?? (() => performance.now());
  const allowedBetas = deps.config.bedrockAllowedBetas ?? DEFAULT_BEDROCK_BETAS;
  const allowedFields = deps.config.bedrockAllowedFields ?? undefined;
  const droppedFields = deps.config.bedrockDroppedFields ?? [];
  /** Translation options for a request to `modelId`; fields left out are logged by name (values may hold tokens). */
  const translation = (requestId: string, modelId: string) => ({
    allowedBetas,
    allowedFields,
    droppedFields,
    structuredOutputs: takesStructuredOutputs(modelId),
    thinkingDisplay: takesThinkingDisplay(modelId),
    // The first 20 names: a client can send any number of fields.
    onDropped: (fields: string[]) =>
      deps.log.debug("fields not sent to bedrock", { request_id: requestId, fields: fields.slice(0, 20) }),
  });
  const bodies = new BufferPool({ maxBytes: BODY_POOL_BYTES, maxBufferBytes: BODY_POOL_MAX_BUFFER });
  const bodyLimits = { maxBytes: deps.config.maxBodyBytes, timeoutMs: deps.config.requestBodyTimeoutMs };
  // Answers streaming now, each with the function that ends it early; and the signal that ends Bedrock's.
  const liveStreams = new Set<() => void>();
  const shuttingDown = new AbortController();
  /** Requests whose handler still awaits an upstream answer, each with what cuts it at the drain deadline. */
  const awaitingAnswer = new Map<ProxyRequest, AbortController>();
  /** Milliseconds each request being answered has waited for each provider, for its Server-Timing. */
  const providerWaits = new Map<ProxyRequest, { upstream?: number; bedrock?: number }>();
  /** `region|base model id` → the Bedrock id that worked (or, all refused, the one to keep trying). */
  const workingModelIds = new Map<string, string>();
  const rememberModelId = (key: string, modelId: string) => {
    // Dated names follow a rule, so clients could make up many: keep the memo bounded.
    if (workingModelIds.size >= 1000 && !workingModelIds.has(key)) workingModelIds.clear();
    workingModelIds.set(key, modelId);
  };

  async function authorise(req: ProxyRequest): Promise<ResolvedKey> {
    // Only lookups that reach the database count: a mistyped key sent again and again is remembered as unknown
    // and costs nothing, so one misconfigured client does not throttle its whole office.
    const guess = req.guesses !== undefined && deps.resolver.isUnseen(req.rawKey);
    if (guess) {
      const wait = req.guesses!.pace();
      if (wait > 0) {
        // Retryable: the key may well be valid, and after the wait it is looked up.
        throw new HttpError(
          429,
          "rate_limit_error",
          `too many unknown access keys from this address; new keys are checked one at a time: retry in ${wait} s`,
          { "retry-after": String(wait) },
        );
      }
    }
    const r = await deps.resolver.resolve(req.rawKey);
    if (guess && r.status === "unknown") req.guesses!.fail();
    switch (r.status) {
      case "ok":
        return r.key;
      case "user_inactive":
        throw new HttpError(
          403,
          "permission_error",
          "the user of this access key is deactivated or deleted",
          FINAL,
        );
      case "unavailable":
        throw new HttpError(
          503,
          "api_error",
          "cannot verify the access key right now (database unreachable); retry",
        );
      case "expired":
        throw new HttpError(
          401,
          "authentication_error",
          "access key expired after rotation; use the new key",
          FINAL,
        );
      case "revoked":
        throw new HttpError(401, "authentication_error", "access key revoked", FINAL);
      case "unknown":
        throw new HttpError(
          401,
          "authentication_error",
          "invalid access key in the URL path (/ak/<key>)",
          FINAL,
        );
    }
  }

  /**
   * Client credentials for the plan upstream, or, with `orgKey`, the configured default key. Only the handlers
   * that account for its use pass `orgKey`: Messages (a usage row each) and the free count_tokens and models.
   * Any other path (batches, files, …, or one that only looks like theirs) would spend the organisation's key
   * unrecorded, so it needs the client's own credentials. The handler decides, not the path's shape: a pattern
   * over the path let `POST /v1/models/..%2Fmessages` through.
   */
  function planHeaders(req: ProxyRequest, orgKey: boolean): Array<[string, string]> | null {
    const headers = upstreamRequestHeaders(req.headers);
    // A browser's CORS preflight never carries credentials (the Fetch standard leaves them out) and spends
    // nothing: it goes on as it came, or the SDK's browser mode could never send its request.
    if (req.method === "OPTIONS") return headers;
    if (!headers.some(([name]) => name === "x-api-key" || name === "authorization")) {
      if (deps.config.planApiKey === "" || !orgKey) return null;
      headers.push(["x-api-key", deps.config.planApiKey]);
    }
    return headers;
  }

  async function bedrockCredentials(
    key: ResolvedKey,
  ): Promise<{ credentials: BedrockCredentials; region: string } | null> {
    if (key.hasBedrockCredentials) {
      const loaded = await deps.credentials.load(key.id);
      if (loaded) {
        return { credentials: loaded.credentials, region: loaded.region ?? deps.config.bedrockRegion };
      }
    }
    if (deps.config.bedrockUseDefaultCredentials) {
      return { credentials: { kind: "default" }, region: deps.config.bedrockRegion };
    }
    return null;
  }

  function canFallBack(key: ResolvedKey): boolean {
    return key.hasBedrockCredentials || deps.config.bedrockUseDefaultCredentials;
  }

  const handlers: Proxy = {
    /** `POST /v1/messages`: the product's hot path. */
    async messages(req: ProxyRequest): Promise<Response> {
      const t0 = now();
      const key = await authorise(req);
      // Known once the body is read: a request refused before that is recorded without them.
      let model: string | null = null;
      let stream = false;
      const finish = (o: Outcome, usage: Partial<StreamUsage>) => {
        req.onRecorded?.();
        const latencyMs = Math.round(now() - t0);
        const tokens = {
          inputTokens: usage.inputTokens ?? 0,
          outputTokens: usage.outputTokens ?? 0,
          cacheReadInputTokens: usage.cacheReadInputTokens ?? 0,
          cacheCreationInputTokens: usage.cacheCreationInputTokens ?? 0,
          cacheCreation1hInputTokens: usage.cacheCreation1hInputTokens ?? 0,
        };
        const billed = {
          ...tokens,
          speed: usage.speed,
          inferenceGeo: usage.inferenceGeo,
          webSearchRequests: usage.webSearchRequests,
        };
        let priced = deps.prices.cost(o.modelServed ?? model ?? "", billed);
        // A served id the table cannot read (an application inference profile's ARN) is priced as requested.
        if (!priced.priced && o.modelServed && model) priced = deps.prices.cost(model, billed);
        const record: UsageRecord = {
          requestId: req.requestId,
          accessKeyId: key.id,
          userId: key.userId,
          model,
          stream,
          messageId: usage.messageId ?? null,
          modelServed: o.modelServed,
          ...tokens,
          provider: o.provider,
          isFallback: o.isFallback,
          fallbackReason: o.fallbackReason,
          statusCode: o.statusCode,
          errorType: o.errorType,
          stopReason: usage.stopReason ?? null,
          latencyMs,
          timeToFirstByteMs: o.ttfbMs,
          costUsd: priced.costUsd,
          outputEstimated: usage.outputEstimated === true,
          // Bounded: they come from the upstream's answer, and a row should not carry an essay.
          speed: usage.speed?.slice(0, 32) ?? null,
          inferenceGeo: usage.inferenceGeo?.slice(0, 32) ?? null,
          webSearchRequests: usage.webSearchRequests ?? 0,
          createdAt: new Date().toISOString(),
        };
        deps.recorder.record(record);
        // A name earns its own metrics label only once a provider took it as a model: the Anthropic API answered
        // it, or Bedrock answered a name the model table knows (unknown names are served by the default model).
        const realModel = o.statusCode < 400 && (o.provider === "anthropic" || o.modelKnown === true);
        deps.metrics.observeRequest(record, priced.priced, realModel);
        deps.log.info("request", {
          request_id: req.requestId,
          client_request_id: req.clientRequestId,
          path: "/v1/messages",
          key_prefix: key.keyPrefix,
          model,
          model_served: o.modelServed,
          stream,
          provider: o.provider,
          is_fallback: o.isFallback,
          fallback_reason: o.fallbackReason,
          status: o.statusCode,
          error_type: o.errorType,
          latency_ms: latencyMs,
          ttfb_ms: o.ttfbMs,
          input_tokens: tokens.inputTokens,
          output_tokens: tokens.outputTokens,
          cache_read_input_tokens: tokens.cacheReadInputTokens,
          cache_creation_input_tokens: tokens.cacheCreationInputTokens,
          cost_usd: priced.costUsd,
          unpriced_model: priced.priced ? undefined : (o.modelServed ?? model),
        });
      };

      /** Records a request that ended before any provider saw it (its key is valid: the row is its only trace). */
      const endedHere = (statusCode: number, errorType: string) =>
        finish({
          provider: key.routingStrategy === "bedrock_only" ? "bedrock" : "anthropic",
          isFallback: false,
          fallbackReason: null,
          statusCode,
          errorType,
          modelServed: null,
          ttfbMs: null,
        }, {});
      const refusedHere = (e: HttpError): never => {
        endedHere(e.status, e.type);
        throw e;
      };

      let body: Uint8Array;
      try {
        body = await readBody(req.request, { ...bodyLimits, pool: bodies });
      } catch (e) {
        if (e instanceof HttpError) return refusedHere(e);
        // The body could not be read: the client's connection broke mid-upload (it left), which is not the
        // proxy's error, and the request signal may not say so yet.
        endedHere(499, "client_closed_request");
        return new Response(null, { status: 499 });
      }
      // The plan path reads `model` and `stream` without building the body (thousands of objects for a 70 KB
      // Claude Code body). Only a Bedrock answer needs it parsed; the bytes are kept for that until the plan
      // upstream's answer is passed through, so a stream open for minutes does not hold them.
      const fields = scanMessagesBody(body);
      if (!fields) return refusedHere(invalidBody());
      ({ model, stream } = fields);
      let bedrockBody: Uint8Array | null = body;

      /** Bedrock's answer; with `unusableGivesWay`, or {@link BEDROCK_UNUSABLE} (the body then kept). */
      const askBedrock = (
        reason: string,
        isFallback: boolean,
        planAnswer: PlanAnswer | null,
        unusableGivesWay = false,
      ) =>
        answerFromBedrock({
          req,
          key,
          parsed: parseMessagesBody(bedrockBody!),
          model,
          stream,
          reason,
          isFallback,
          planAnswer,
          t0,
          finish,
          unusableGivesWay,
        });
      const toBedrock = (reason: string, isFallback: boolean, planAnswer: PlanAnswer | null = null) => {
        if (isFallback) deps.metrics.observeFallback(reason);
        // The body is parsed by now: its bytes go back to the pool while Bedrock works.
        const answer = askBedrock(reason, isFallback, planAnswer) as Promise<Response>;
        bodies.release(bedrockBody!);
        bedrockBody = null;
        return answer;
      };

      if (key.routingStrategy === "bedrock_only") return await toBedrock("routing:bedrock_only", false);

      let fallbackPossible = canFallBack(key);
      let acquired = fallbackPossible
        ? deps.breakers.acquire(key.id)
        : { route: "plan" as const, probe: false };
      if (acquired.route === "bedrock") {
        // The budget caps Bedrock only. A user past it would be refused there until the month ends, open circuit
        // or not: the Anthropic API is their only provider, so it gets the request (budgeted users only pay for
        // the check, from a cached figure, while the circuit is open).
        if (
          key.monthlyBudgetUsd === null || (await deps.budgets.check(key.userId, key.monthlyBudgetUsd)).ok
        ) {
          // The body is kept (not released) until Bedrock has answered: if it cannot answer for this key at
          // all, the Anthropic API gets the request.
          const answer = await askBedrock("circuit_open", true, null, true);
          if (answer !== BEDROCK_UNUSABLE) {
            deps.metrics.observeFallback("circuit_open");
            bodies.release(body);
            bedrockBody = null;
            return answer;
          }
          // Bedrock refused this key's credentials: an open circuit would send every request of the key to it,
          // for the whole reset timeout, while the Anthropic API may be answering again. Closed (on every
          // replica), it counts the Anthropic API's failures afresh; this request goes there now.
          deps.breakers.reset(key.id, "Bedrock refused this key's credentials");
        }
        fallbackPossible = false;
        acquired = { route: "plan", probe: false };
      }

      const headers = planHeaders(req, true);
      if (!headers) {
        if (acquired.probe) deps.breakers.releaseProbe(key.id);
        return refusedHere(
          new HttpError(
            401,
            "authentication_error",
            "no Anthropic credentials: send x-api-key or Authorization (your Anthropic key or Claude login), or ask the proxy admin to set PROXY_PLAN_API_KEY",
            FINAL,
          ),
        );
      }
      const tUp = now();
      const sent = await deps.plan.send({
        method: "POST",
        pathAndQuery: req.pathAndQuery,
        headers,
        body,
        signal: untilShutdown(req),
        // A non-streaming answer comes whole, headers with it: its first byte is its last.
        firstByteTimeoutMs: stream ? undefined : deps.config.upstreamResponseTimeoutMs,
      });
      const upstreamMs = () => Math.round(now() - tUp);

      // Decide before the first byte reaches the client whether the plan upstream answered.
      const decision: FallbackDecision = await classifyPlanAnswer(sent, stream);
      waited(req, "upstream", now() - tUp);
      // A 429 or 5xx the API answered is labelled as such, fallen back from or not: "network" is for no answer.
      deps.metrics.observeUpstream(
        "anthropic",
        upstreamMs(),
        decision.kind === "answer"
          ? decision.status
          : decision.kind === "failure" && decision.response
          ? decision.response.status
          : 0,
      );

      /** Records an Anthropic request that ended with no usage to read: no answer, or one whose body was lost. */
      const recordPlanError = (statusCode: number, errorType: string, ttfbMs: number | null = null) =>
        finish({
          provider: "anthropic",
          isFallback: false,
          fallbackReason: null,
          statusCode,
          errorType,
          modelServed: null,
          ttfbMs,
        }, {});

      if (decision.kind === "client_gone") {
        if (acquired.probe) deps.breakers.releaseProbe(key.id);
        if (!req.signal.aborted) {
          // Cut by the drain deadline before any answer: the client is still there and may retry elsewhere.
          recordPlanError(503, "api_error");
          throw new HttpError(503, "api_error", SHUTDOWN_BEFORE_ANSWER);
        }
        recordPlanError(499, "client_closed_request");
        return new Response(null, { status: 499 });
      }

      if (decision.kind === "failure") {
        // The plan upstream could not answer: count it, then fall back when this key can.
        if (fallbackPossible) {
          if (decision.opensUntil !== undefined) {
            deps.breakers.openUntil(key.id, decision.opensUntil, decision.reason);
          } else deps.breakers.recordFailure(key.id, acquired.probe);
          // Kept (an error answer is small) in case Bedrock fails too: see answerFromBedrock.
          // Without a reader the body was lost and `head` is one made here, with no encoding.
          const planAnswer = decision.response
            ? planAnswerOf(decision.response, decision.head, decision.reader !== undefined)
            : null;
          decision.discard();
          return await toBedrock(decision.reason, true, planAnswer);
        }
        if (acquired.probe) deps.breakers.releaseProbe(key.id);
        if (decision.response && !decision.reader) {
          // An error status whose body was lost: its status and headers, with the error body made for it.
          const upstream = decision.response;
          recordPlanError(upstream.status, decision.errorType ?? "api_error", Math.round(now() - t0));
          return replayPlanAnswer(planAnswerOf(upstream, decision.head, false), req.requestId, null);
        }
        if (!decision.response || !decision.reader) {
          const status = decision.reason.includes("timeout") ? 504 : 502;
          const type = status === 504 ? "timeout_error" : "api_error";
          recordPlanError(status, type);
          throw new HttpError(status, type, `Anthropic API: ${decision.message}`);
        }
      }
      const upstream = decision.response!;
      const isSse = (upstream.headers.get("content-type") ?? "").includes("text/event-stream");
      // Pass the plan upstream's answer through (success, a 4xx, or a failure this key cannot fall back from).
      // A JSON answer reaches the client only once it is whole: until then, one cut off can still be answered
      // from Bedrock, so the breaker hears of the answer and the request body is kept until its last byte.
      const deferred = !isSse && fallbackPossible && decision.kind === "answer" && decision.countsAsSuccess;
      const settle = (whole: boolean) => {
        // A failure passed through (no fallback for this key) has released its probe already.
        if (decision.kind === "answer") {
          if (whole && decision.countsAsSuccess) deps.breakers.recordSuccess(key.id, acquired.probe);
          else if (acquired.probe) deps.breakers.releaseProbe(key.id);
        }
        // fetch copied the body when it was sent; no fallback will need it now.
        if (bedrockBody) bodies.release(bedrockBody);
        bedrockBody = null;
      };
      if (!deferred) settle(true);
      const responseHeaders = clientResponseHeaders(upstream.headers);
      responseHeaders.set("x-proxy-request-id", req.requestId);
      responseHeaders.set("x-proxy-provider", "anthropic");
      const ttfbMs = Math.round(now() - t0);
      const outcome: Outcome = {
        provider: "anthropic",
        isFallback: false,
        fallbackReason: null,
        statusCode: upstream.status,
        errorType: upstream.status >= 400 ? (decision.errorType ?? "api_error") : null,
        modelServed: null,
        ttfbMs,
      };
      const decoded = decodeBody(decision.head, decision.reader!, upstream.headers.get("content-encoding"));
      if (decoded.encoding) responseHeaders.set("content-encoding", decoded.encoding);
      if (!isSse) {
        // A JSON answer is useless to the client until its last byte, so it is read whole and handed back as
        // bytes: the runtime then writes it natively, with no stream pumped through JavaScript.
        let read: Awaited<ReturnType<typeof readUpTo>>;
        // Its headers came; a body that then stalls must not hold the request for ever.
        const stalled = idleWatch(
          deps.config.upstreamFirstByteTimeoutMs,
          () => sent.ok && sent.abort(),
          "Anthropic API",
        );
        const tBody = now();
        try {
          read = await readUpTo(decoded.reader, MAX_JSON_TAP + 1, stalled.touch);
          waited(req, "upstream", now() - tBody); // the answer's body is the upstream's time too
        } catch {
          sent.ok && sent.abort();
          if (req.signal.aborted) {
            if (deferred) settle(false);
            outcome.statusCode = 499;
            outcome.errorType = "client_closed_request";
            finish(outcome, {});
            return new Response(null, { status: 499 });
          }
          if (shuttingDown.signal.aborted) {
            if (deferred) settle(false);
            outcome.statusCode = 503;
            outcome.errorType = "stream_interrupted";
            finish(outcome, {});
            throw new HttpError(503, "api_error", SHUTDOWN_BEFORE_ANSWER);
          }
          if (deferred) {
            // Cut off or stalled before its last byte: the client has seen nothing, so Bedrock answers, as for a
            // stream reset before its first event.
            deps.breakers.recordFailure(key.id, acquired.probe);
            return await toBedrock(stalled.error ? "first_byte_timeout" : "stream_reset", true, null);
          }
          outcome.statusCode = 502;
          outcome.errorType = "stream_interrupted";
          finish(outcome, {});
          throw new HttpError(
            502,
            "api_error",
            stalled.error
              ? `${stalled.error.message} after its headers; the answer is incomplete`
              : "Anthropic API connection lost before the answer was complete",
          );
        } finally {
          stalled.stop();
        }
        if (deferred) settle(true);
        const chunks = [...decoded.head, ...read.chunks];
        if (read.done) {
          const bytes = concatChunks(chunks) as Uint8Array<ArrayBuffer>; // chunk readers copy into fresh buffers
          const usage = usageFromJson(bytes);
          outcome.modelServed = usage.model ?? null;
          if (usage.error && outcome.errorType === null) outcome.errorType = usage.error.type;
          finish(outcome, usage);
          return new Response(NULL_BODY_STATUSES.has(upstream.status) ? null : bytes, {
            status: upstream.status,
            statusText: upstream.statusText,
            headers: responseHeaders,
          });
        }
        // Larger than any Messages answer: relayed as it comes, usage unread.
        decoded.head = chunks;
      }
      deps.metrics.streamOpened();
      const out = relay({
        head: decoded.head,
        reader: decoded.reader,
        // Bytes still encoded (br, zstd) have no event boundaries to find: they go on as they come.
        sse: isSse && !decoded.encoding,
        onEnd: (usage, failure) => {
          deps.metrics.streamClosed();
          outcome.modelServed = usage.model ?? null;
          if (failure === "cancelled") {
            outcome.statusCode = outcome.statusCode < 400 ? 499 : outcome.statusCode;
            outcome.errorType ??= "client_closed_request";
          } else if (failure) {
            outcome.errorType = "stream_interrupted";
          } else if (usage.error && outcome.errorType === null) outcome.errorType = usage.error.type;
          finish(outcome, usage);
        },
        abort: () => sent.ok && sent.abort(),
        live: liveStreams,
        shutdown: shuttingDown.signal,
        idleTimeoutMs: deps.config.upstreamFirstByteTimeoutMs,
      });
      return new Response(out, {
        status: upstream.status,
        statusText: upstream.statusText,
        headers: responseHeaders,
      });
    },

    interruptStreams() {
      // Streams first, so each ends with its own error event, not as a connection the abort below cut.
      for (const interrupt of [...liveStreams]) interrupt();
      shuttingDown.abort(new ShutdownError());
      for (const cut of awaitingAnswer.values()) cut.abort(new ShutdownError());
    },

    async countTokens(req: ProxyRequest): Promise<Response> {
      // Counting takes the Anthropic API well under a second: one that hangs gives way to Bedrock long before
      // the first-byte timeout meant for answers.
      return await sideRequest(
        req,
        "count_tokens",
        true,
        (a) => countOnBedrock(req, a.key, a.body!, a.reason, a.planAnswer),
        Math.min(COUNT_FIRST_BYTE_TIMEOUT_MS, deps.config.upstreamFirstByteTimeoutMs),
      );
    },

    async models(req: ProxyRequest, modelId: string | null): Promise<Response> {
      // Claude Code waits 3 s for discovery: an Anthropic API that hangs must leave time for the Bedrock list.
      return await sideRequest(
        req,
        "models",
        false,
        (a) => bedrockModels(req, modelId, a.reason),
        MODELS_FIRST_BYTE_TIMEOUT_MS,
      );
    },

    /**
     * Every other `/v1/*` path: forwarded as is; no usage row. A body goes on as it arrives, unread and not held:
     * uploads (Files API, batches) are larger than any body the proxy reads, and it has no use for them.
     */
    async passThrough(req: ProxyRequest): Promise<Response> {
      await authorise(req);
      const upload = req.method !== "GET" && req.method !== "HEAD" && req.request.body
        ? streamBody(req.request, deps.config.requestBodyTimeoutMs)
        : null;
      // Never with the organisation's key: that is for the handlers that account for what it spends, and a path
      // that only looks like theirs (another method, an encoded slash) reaches here.
      const sent = await sendToPlan(req, upload?.stream ?? null, { orgKey: false, bodySent: upload?.done });
      if (!sent.ok) {
        // The body failing is the client's doing (too slow, or gone), not the upstream's.
        const stopped = await upload?.done.then(() => null, (e) => e ?? new Error("body stopped"));
        if (stopped instanceof HttpError) throw stopped;
        if (stopped) {
          // No one reads this answer; the status is for the log line.
          throw new HttpError(499, "invalid_request_error", "the client left while sending its request body");
        }
        throw noAnswer(req, sent);
      }
      sent.firstByte.clear();
      return passOn(req, sent);
    },
  };
  const proxy: Proxy = {
    messages: (req) => answering(req, () => handlers.messages(req)),
    countTokens: (req) => answering(req, () => handlers.countTokens(req)),
    models: (req, modelId) => answering(req, () => handlers.models(req, modelId)),
    passThrough: (req) => answering(req, () => handlers.passThrough(req)),
    interruptStreams: () => handlers.interruptStreams(),
  };
  return proxy;

  /**
   * The signal of an upstream call (Anthropic or Bedrock) made for `req`: aborted when the client goes away, or at
   * the drain deadline while the handler still awaits an answer, so that the request is answered (503,
   * retryable) and recorded before the process exits instead of cut off unrecorded by the exit. The plan client
   * reports either as `client_aborted`; `req.signal.aborted` tells them apart. (Not `AbortSignal.any` with the
   * process-wide shutdown signal: Deno keeps every signal so made alive as long as that one lives, about 10 KB
   * per request.)
   */
  function untilShutdown(req: ProxyRequest): AbortSignal {
    let cut = awaitingAnswer.get(req);
    if (cut === undefined) {
      const c = new AbortController();
      if (req.signal.aborted) c.abort();
      else if (shuttingDown.signal.aborted) c.abort(new ShutdownError());
      else req.signal.addEventListener("abort", () => c.abort(), { once: true });
      awaitingAnswer.set(req, c);
      cut = c;
    }
    return cut.signal;
  }

  /**
   * Runs a handler of `req`. Once it has returned, the request awaits no answer any more: what still runs is a
   * stream, which `liveStreams` ends at the deadline.
   */
  async function answering(req: ProxyRequest, handle: () => Promise<Response>): Promise<Response> {
    const t0 = now();
    try {
      const res = await handle();
      // Until the answer's headers: the proxy's own time, and each provider's wait. Beside an upstream's own
      // entries, if it sent any.
      const w = providerWaits.get(req);
      const upstream = w?.upstream ?? 0;
      const bedrock = w?.bedrock ?? 0;
      let timing = `proxy;dur=${Math.max(0, now() - t0 - upstream - bedrock).toFixed(1)}`;
      if (w?.upstream !== undefined) timing += `, upstream;dur=${Math.round(upstream)}`;
      if (w?.bedrock !== undefined) timing += `, bedrock;dur=${Math.round(bedrock)}`;
      res.headers.append("server-timing", timing);
      return res;
    } finally {
      awaitingAnswer.delete(req);
      providerWaits.delete(req);
    }
  }

  /** Adds to the time `req` spent waiting for a provider's answer (to its headers), for its Server-Timing. */
  function waited(req: ProxyRequest, provider: "upstream" | "bedrock", ms: number): void {
    let w = providerWaits.get(req);
    if (!w) providerWaits.set(req, w = {});
    w[provider] = (w[provider] ?? 0) + ms;
  }

  /** Whether `e` is a Bedrock call aborted by the drain deadline (not an error Bedrock answered). */
  function cutByShutdown(e: unknown): boolean {
    return shuttingDown.signal.aborted &&
      (e instanceof ShutdownError || (e instanceof Error && e.name === "AbortError"));
  }

  /** Sends a request other than messages to the plan upstream with the client's credentials; 401 without any. */
  async function sendToPlan(
    req: ProxyRequest,
    body: Uint8Array | ReadableStream<Uint8Array> | null,
    opts: { orgKey: boolean; firstByteTimeoutMs?: number; bodySent?: Promise<void> },
  ): Promise<PlanResult> {
    const headers = planHeaders(req, opts.orgKey);
    if (!headers) {
      throw new HttpError(
        401,
        "authentication_error",
        deps.config.planApiKey === ""
          ? "no Anthropic credentials: send x-api-key or Authorization"
          : "no Anthropic credentials: send x-api-key or Authorization (the proxy's own key is used only for messages, count_tokens and models)",
        FINAL,
      );
    }
    const t = now();
    try {
      return await deps.plan.send({
        method: req.method,
        pathAndQuery: req.pathAndQuery,
        headers,
        body,
        signal: untilShutdown(req),
        firstByteTimeoutMs: opts.firstByteTimeoutMs,
        bodySent: opts.bodySent,
      });
    } finally {
      waited(req, "upstream", now() - t);
    }
  }

  /** The error for a plan request that got no answer. */
  function noAnswer(req: ProxyRequest, sent: Extract<PlanResult, { ok: false }>): HttpError {
    if (sent.failure === "client_aborted") {
      // The client's signal, or the drain deadline's (then the client is still there and may retry elsewhere).
      return req.signal.aborted
        ? new HttpError(499, "api_error", "client went away")
        : new HttpError(503, "api_error", SHUTDOWN_BEFORE_ANSWER);
    }
    const status = sent.failure.includes("timeout") ? 504 : 502;
    return new HttpError(
      status,
      status === 504 ? "timeout_error" : "api_error",
      `Anthropic API: ${sent.message}`,
    );
  }

  /**
   * A side request (count_tokens, models) Bedrock can stand in for. It goes to the Anthropic API unless the key
   * is routed to Bedrock or its circuit is open; when the API cannot answer (unreachable, 429, 5xx) and the key
   * can fall back, `onBedrock` answers instead, given the reason and the API's own answer when there was one.
   * The breaker is only read: its half-open probe is for a messages request to take.
   */
  async function sideRequest(
    req: ProxyRequest,
    endpoint: "count_tokens" | "models",
    withBody: boolean,
    onBedrock: (
      a: { key: ResolvedKey; body: Uint8Array | null; reason: string; planAnswer: PlanAnswer | null },
    ) => Promise<Response> | Response,
    /** For keys Bedrock can answer for: how long the Anthropic API gets to start answering. */
    fallbackAfterMs?: number,
  ): Promise<Response> {
    const key = await authorise(req);
    const body = withBody ? await readSideBody(req) : null;
    const bedrock = (reason: string, planAnswer: PlanAnswer | null = null) => {
      if (reason !== "routing:bedrock_only") deps.metrics.observeFallback(reason, endpoint);
      return onBedrock({ key, body, reason, planAnswer });
    };
    const fallbackPossible = canFallBack(key);
    if (key.routingStrategy === "bedrock_only") {
      if (!fallbackPossible) {
        // As on messages: a list of models this key could not use would only defer the refusal.
        throw new HttpError(403, "permission_error", NO_BEDROCK_CREDENTIALS, FINAL);
      }
      return await bedrock("routing:bedrock_only");
    }
    if (fallbackPossible) {
      const breaker = deps.breakers.snapshot(key.id);
      if (breaker.state === "open" && (breaker.reopensAt ?? 0) > Date.now()) {
        return await bedrock("circuit_open");
      }
    }
    const sent = await sendToPlan(req, body, {
      orgKey: true,
      firstByteTimeoutMs: fallbackPossible ? fallbackAfterMs : undefined,
    });
    if (!sent.ok) {
      if (sent.failure === "client_aborted") throw noAnswer(req, sent);
      if (fallbackPossible) return await bedrock(sent.failure);
      throw noAnswer(req, sent);
    }
    const upstream = sent.response;
    if (!fallbackPossible || !isFallbackStatus(upstream.status)) {
      sent.firstByte.clear();
      return passOn(req, sent);
    }
    let head: Uint8Array[] = [];
    try {
      // Still under the timer: an error answer whose body never comes goes to Bedrock when it fires.
      head = (await readUpTo(chunkReader(upstream.body, sent.signal), MAX_SIDE_ERROR_BODY)).chunks;
    } catch {
      /* the answer is replaced anyway */
    } finally {
      sent.firstByte.clear();
    }
    sent.abort();
    if (req.signal.aborted) return new Response(null, { status: 499 });
    return await bedrock(
      fallbackReason(upstream.status, upstream.headers, head),
      planAnswerOf(upstream, head, true),
    );
  }

  /** The Bedrock model catalogue as Anthropic's Models API answers: the list, or one model, or 404. */
  function bedrockModels(req: ProxyRequest, modelId: string | null, reason: string): Response {
    const models = modelCatalogue(deps.config.bedrockModelMap);
    let status = 200;
    let body: string;
    if (modelId === null) {
      const query = req.pathAndQuery.includes("?")
        ? req.pathAndQuery.slice(req.pathAndQuery.indexOf("?"))
        : "";
      const page = modelPage(models, new URLSearchParams(query));
      if ("error" in page) {
        status = 400;
        body = anthropicErrorBody("invalid_request_error", page.error);
      } else body = JSON.stringify(page);
    } else {
      // An alias names the model it points at, as the Anthropic API answers it.
      const model = models.find((m) => m.id === modelId) ??
        models.find((m) => m.id === resolveAlias(modelId));
      if (model) body = JSON.stringify(model);
      else {
        status = 404;
        body = anthropicErrorBody(
          "not_found_error",
          `model: ${modelId} is not served by this proxy's Bedrock`,
        );
      }
    }
    logSide(req, { provider: "bedrock", fallback_reason: reason, status });
    return new Response(body, {
      status,
      headers: {
        "content-type": "application/json",
        "request-id": req.requestId,
        "x-proxy-request-id": req.requestId,
        "x-proxy-provider": "bedrock",
        "x-proxy-fallback-reason": reason,
      },
    });
  }

  /** The log line of a request other than messages (no usage row: this line is its only record). */
  function logSide(req: ProxyRequest, fields: Record<string, unknown>): void {
    deps.log.info("request", {
      request_id: req.requestId,
      client_request_id: req.clientRequestId,
      path: redactPath(req.pathAndQuery.split("?")[0]),
      method: req.method,
      ...fields,
    });
  }

  /**
   * A side request's body. One that breaks off mid-upload is the client leaving (499 in the request's log line),
   * as on messages, not an error of the proxy's.
   */
  async function readSideBody(req: ProxyRequest): Promise<Uint8Array> {
    try {
      return await readBody(req.request, bodyLimits);
    } catch (e) {
      if (e instanceof HttpError) throw e;
      // No one reads this answer; the status is for the log line.
      throw new HttpError(499, "invalid_request_error", "the client left while sending its request body");
    }
  }

  /** The plan upstream's answer to a side request (not messages), passed on as is, with its log line. */
  function passOn(req: ProxyRequest, sent: Extract<PlanResult, { ok: true }>): Response {
    const upstream = sent.response;
    // Relayed as it came: a compressed body keeps the header that says so.
    const responseHeaders = withEncoding(clientResponseHeaders(upstream.headers), upstream.headers);
    responseHeaders.set("x-proxy-request-id", req.requestId);
    responseHeaders.set("x-proxy-provider", "anthropic");
    // The body goes on as raw bytes (the client's accept-encoding was forwarded, so fetch decoded nothing): its
    // length is the upstream's, which a download's progress needs (the runtime would send it chunked). A HEAD's
    // is that of the body a GET would bring, where the server would say 0.
    const length = upstream.headers.get("content-length");
    if (
      length !== null && /^\d{1,15}$/.test(length) &&
      (req.method === "HEAD" || !NULL_BODY_STATUSES.has(upstream.status))
    ) responseHeaders.set("content-length", length);
    logSide(req, { provider: "anthropic", status: upstream.status });
    return new Response(silenceBounded(sent, deps.config.upstreamFirstByteTimeoutMs), {
      status: upstream.status,
      statusText: upstream.statusText,
      headers: responseHeaders,
    });
  }

  /**
   * count_tokens on Bedrock: `{"input_tokens": n}` as Anthropic answers it. When this stands in for an Anthropic
   * API that could not answer and Bedrock refuses with an error clients do not retry, the client gets a retryable
   * answer instead, as on `/v1/messages`: the Anthropic API's own, or a 503 naming both failures.
   */
  async function countOnBedrock(
    req: ProxyRequest,
    key: ResolvedKey,
    body: Uint8Array,
    reason: string,
    planAnswer: PlanAnswer | null,
  ): Promise<Response> {
    const isFallback = reason !== "routing:bedrock_only";
    const headers = new Headers({
      "request-id": req.requestId,
      "x-proxy-request-id": req.requestId,
      "x-proxy-provider": "bedrock",
      "x-proxy-fallback-reason": reason,
    });
    const logLine = (status: number, provider: string, error?: string) =>
      logSide(req, { provider, fallback_reason: reason, status, error });
    const answer = (status: number, json: string) => {
      logLine(status, "bedrock");
      headers.set("content-type", "application/json");
      return new Response(json, { status, headers });
    };
    const refuse = (status: number, type: string, message: string) => {
      if (!givesWayToRetry(isFallback, reason, status)) {
        if (!clientRetries(status)) headers.set("x-should-retry", "false");
        return answer(status, anthropicErrorBody(type, message));
      }
      if (planAnswer) {
        logLine(planAnswer.status, "anthropic", message);
        return replayPlanAnswer(planAnswer, req.requestId, reason);
      }
      return answer(503, anthropicErrorBody("api_error", bothFailed(reason, message)));
    };

    const fields = parseMessagesBody(body);
    let creds;
    try {
      creds = await bedrockCredentials(key);
    } catch (e) {
      deps.log.error("bedrock credentials could not be opened", {
        access_key_id: key.id,
        error: (e as Error).message,
      });
      return refuse(...credentialsUnopened(e));
    }
    if (!creds) {
      return refuse(
        403,
        "permission_error",
        NO_BEDROCK_CREDENTIALS,
      );
    }
    const { modelId, standsIn } = countableModelId(typeof fields.model === "string" ? fields.model : "");
    // An InvokeModel body needs max_tokens, which a count_tokens request does not carry; it is not charged, but
    // must leave room for a thinking budget.
    const thinking = fields.thinking as { budget_tokens?: unknown } | undefined;
    const budget = typeof thinking?.budget_tokens === "number" ? thinking.budget_tokens : 0;
    const counted = { max_tokens: Math.max(1, budget + 1), ...fields };
    // A model Bedrock refuses as invalid (a guessed name, one not offered here) is counted by the default model,
    // which would answer it too.
    const fallbackId = bareDefaultModelId();
    const ids = fallbackId && fallbackId !== modelId ? [modelId, fallbackId] : [modelId];
    for (let i = 0;; i++) {
      const id = ids[i];
      headers.set("x-proxy-bedrock-model", id);
      const bedrockBody = toBedrockBody(
        standsIn || i > 0 ? fitToModel(counted, id) : counted,
        betaValues(req.headers),
        translation(req.requestId, id),
      );
      const tB = now();
      try {
        const inputTokens = await deps.bedrock.countTokens({
          credentials: creds.credentials,
          region: creds.region,
          modelId: id,
          body: bedrockBody,
          signal: untilShutdown(req),
        }).finally(() => waited(req, "bedrock", now() - tB));
        return answer(200, JSON.stringify({ input_tokens: inputTokens }));
      } catch (e) {
        if (req.signal.aborted) return new Response(null, { status: 499 });
        if (cutByShutdown(e)) return answer(503, anthropicErrorBody("api_error", SHUTDOWN_BEFORE_ANSWER));
        if (i + 1 < ids.length && isModelIdRefusal(e)) continue;
        const m = keyRefusal(mapBedrockError(e), creds.credentials.kind === "default");
        const awsId = bedrockRequestId(e);
        if (awsId) headers.set("x-amzn-requestid", awsId);
        return refuse(m.status, m.type, m.message);
      }
    }
  }

  /**
   * The model id CountTokens takes for a requested name: a bare foundation-model id (it refuses inference
   * profiles). A name mapped to an ARN or an application profile is counted on the default model instead.
   */
  /** The default model's bare id, which CountTokens takes, or null when it is no foundation model's id. */
  function bareDefaultModelId(): string | null {
    const id = withoutProfile(deps.config.bedrockDefaultModel);
    return id.startsWith("anthropic.") ? id : null;
  }

  function countableModelId(requested: string): { modelId: string; standsIn: boolean } {
    const options = { overrides: deps.config.bedrockModelMap, defaultModel: deps.config.bedrockDefaultModel };
    const found = mapModel(requested, options);
    const mapped = withoutProfile(found.modelId);
    // The default model counting for a name it does not serve gets the body fitted to it, as when it answers.
    if (mapped.startsWith("anthropic.")) return { modelId: mapped, standsIn: !found.known };
    const fallback = bareDefaultModelId();
    return fallback ? { modelId: fallback, standsIn: true } : { modelId: mapped, standsIn: false };
  }

  async function answerFromBedrock(a: {
    req: ProxyRequest;
    key: ResolvedKey;
    parsed: Record<string, unknown>;
    model: string | null;
    stream: boolean;
    reason: string | null;
    isFallback: boolean;
    /** The plan upstream's own error answer, when this is a fallback from one. */
    planAnswer: PlanAnswer | null;
    t0: number;
    finish: (o: Outcome, usage: Partial<StreamUsage>) => void;
    /**
     * When Bedrock refuses the key itself (no credentials, or its credentials refused: 401), return
     * {@link BEDROCK_UNUSABLE}, recording nothing, instead of that refusal: the caller asks the Anthropic API.
     */
    unusableGivesWay?: boolean;
  }): Promise<Response | typeof BEDROCK_UNUSABLE> {
    const outcome: Outcome = {
      provider: "bedrock",
      isFallback: a.isFallback,
      fallbackReason: a.reason,
      statusCode: 200,
      errorType: null,
      modelServed: null,
      ttfbMs: null,
    };
    const fail = (status: number, type: string, message: string, extra: Record<string, string> = {}) => {
      outcome.statusCode = status;
      outcome.errorType = type;
      a.finish(outcome, {});
      return new Response(anthropicErrorBody(type, message), {
        status,
        headers: {
          "content-type": "application/json",
          "request-id": a.req.requestId,
          "x-proxy-request-id": a.req.requestId,
          "x-proxy-provider": "bedrock",
          ...(a.reason ? { "x-proxy-fallback-reason": a.reason } : {}),
          ...extra,
        },
      });
    };

    const budget = await deps.budgets.check(a.key.userId, a.key.monthlyBudgetUsd);
    if (!budget.ok) {
      if (a.isFallback) {
        // Its client may retry: the Anthropic API that could not answer may by then. When that should be is the
        // API's to say, if it did: the SDKs sleep through any retry-after, and one until the month resets would
        // hold Claude Code for days.
        const retryAfter = a.planAnswer?.headers.get("retry-after");
        return fail(429, "rate_limit_error", budget.message, retryAfter ? { "retry-after": retryAfter } : {});
      }
      // Routed to Bedrock only, nothing changes before the month ends: the client is told at once.
      return fail(429, "rate_limit_error", budget.message, {
        "retry-after": String(Math.max(1, Math.ceil((budget.resetsAt.getTime() - Date.now()) / 1000))),
        ...FINAL,
      });
    }
    const serverTool = anthropicOnlyTool(a.parsed);
    if (serverTool) {
      // Bedrock would refuse it too, after a call: a fallback gives way to the Anthropic API's retryable answer,
      // a key routed to Bedrock is told why.
      return refused(
        400,
        "invalid_request_error",
        `the ${serverTool} tool runs on the Anthropic API only; Bedrock, which answers for this access key ` +
          "now, does not offer it",
      );
    }
    let creds;
    try {
      creds = await bedrockCredentials(a.key);
    } catch (e) {
      deps.log.error("bedrock credentials could not be opened", {
        access_key_id: a.key.id,
        error: (e as Error).message,
      });
      if (a.isFallback && a.planAnswer) {
        // The Anthropic API's own answer (a 429 with its retry-after, a 529) is retryable and true; a 500 about
        // credentials, which may be a passing KMS outage, would only replace it.
        return passPlanAnswer(a.planAnswer, "api_error");
      }
      return fail(...credentialsUnopened(e));
    }
    if (!creds) {
      // Also when removed since this key was looked up (its cached flag stale): a fallback then gives way to
      // the plan upstream's retryable answer, as any other Bedrock refusal does, instead of a final 403.
      if (a.unusableGivesWay) return BEDROCK_UNUSABLE;
      return refused(403, "permission_error", NO_BEDROCK_CREDENTIALS);
    }
    const ownCredentials = creds.credentials.kind === "default";
    const requested = a.model ?? "";
    const mapped = mapModel(requested, {
      overrides: deps.config.bedrockModelMap,
      defaultModel: deps.config.bedrockDefaultModel,
    });
    outcome.modelKnown = mapped.known;
    if (
      a.key.monthlyBudgetUsd !== null && deps.prices.priceFor(mapped.modelId) === null &&
      deps.prices.priceFor(requested) === null
    ) {
      // Its spend would be recorded as nothing: the budget could not hold it.
      return refused(
        403,
        "permission_error",
        `${requested} (Bedrock ${mapped.modelId}) has no price in the proxy's price table, so its Bedrock spend ` +
          "cannot be held to your monthly budget; ask the proxy admin to price it (PROXY_MODEL_PRICING)",
      );
    }
    if (!mapped.known) {
      deps.log.warn("unknown model mapped to the default Bedrock model", {
        model: requested,
        bedrock_model: mapped.modelId,
      });
    }
    // The default model answering for another name gets the body fitted to it (thinking mode, effort, format):
    // the request was made for the model asked for, which may take what the default refuses.
    const defaultModel = deps.config.bedrockDefaultModel;
    const standsIn = (id: string) =>
      id === defaultModel && (!mapped.known || mapped.modelId !== defaultModel);
    const bodyFor = (id: string) =>
      toBedrockBody(
        standsIn(id) ? fitToModel(a.parsed, id) : a.parsed,
        betaValues(a.req.headers),
        translation(a.req.requestId, id),
      );
    // request-id, which the SDKs report with every error, is the proxy's: the id its usage rows and logs carry.
    const headers = new Headers({
      "request-id": a.req.requestId,
      "x-proxy-request-id": a.req.requestId,
      "x-proxy-provider": "bedrock",
      "x-proxy-bedrock-model": mapped.modelId,
    });
    if (a.reason) headers.set("x-proxy-fallback-reason", a.reason);
    const tB = now();
    const invoke = {
      credentials: creds.credentials,
      region: creds.region,
      modelId: mapped.modelId,
      body: new Uint8Array(0) as Uint8Array, // built below for each id tried
      requestedModel: requested || undefined,
      signal: untilShutdown(a.req),
    };
    // A profile this table chose may not exist for this model or region: the others are tried before any byte
    // goes out, and the one that worked is remembered.
    const memoKey = mapped.base ? `${creds.region}|${mapped.base}` : "";
    const remembered = workingModelIds.get(memoKey);
    const candidates = remembered
      ? [remembered]
      : mapped.base
      ? profileCandidates(mapped.base, mapped.modelId, creds.region)
      : [mapped.modelId];
    // A model Bedrock refuses under every profile (a name newer than the table, or a model this account's
    // region or API does not offer: AWS serves its newest models on another route first): answered by the
    // default model, as names the table cannot place at all are, rather than failing the fallback. Ids the
    // operator or the client chose (no base) are used as they are.
    if (mapped.base && !remembered && !candidates.includes(defaultModel)) candidates.push(defaultModel);
    for (let attempt = 0;; attempt++) {
      invoke.modelId = candidates[attempt];
      if (attempt === 0 || standsIn(invoke.modelId) !== standsIn(candidates[attempt - 1])) {
        invoke.body = bodyFor(invoke.modelId);
      }
      outcome.modelServed = invoke.modelId;
      if (standsIn(invoke.modelId)) {
        outcome.modelKnown = false;
        if (attempt > 0) {
          deps.log.warn(
            "model refused by Bedrock under every profile; answered by the default Bedrock model",
            {
              model: requested,
              bedrock_model: invoke.modelId,
            },
          );
        }
      }
      headers.set("x-proxy-bedrock-model", invoke.modelId);
      const tCall = now();
      try {
        const response = await callBedrock().finally(() => waited(a.req, "bedrock", now() - tCall));
        if (memoKey) rememberModelId(memoKey, invoke.modelId);
        return response;
      } catch (e) {
        if (attempt + 1 < candidates.length && isModelIdRefusal(e)) {
          deps.log.info("bedrock refused the model id; trying the next inference profile", {
            request_id: a.req.requestId,
            refused: invoke.modelId,
            next: candidates[attempt + 1],
          });
          continue;
        }
        // Every candidate refused: later requests try only the first, not the whole list again.
        if (memoKey && isModelIdRefusal(e)) rememberModelId(memoKey, candidates[0]);
        if (a.unusableGivesWay && !a.req.signal.aborted && !cutByShutdown(e)) {
          const refusal = mapBedrockError(e);
          // Only a refusal of the credentials themselves (401: unrecognised, expired, bad signature) is the
          // whole key's. A 403 is most often one model's access (granted model by model): the key's other
          // models still answer, and reopening the key to a failing Anthropic API would cost them its wait.
          if (refusal.status === 401) {
            deps.metrics.observeUpstream("bedrock", Math.round(now() - tB), refusal.status);
            deps.log.warn("bedrock refused this key's credentials; asking the Anthropic API instead", {
              request_id: a.req.requestId,
              bedrock_request_id: bedrockRequestId(e) ?? null,
              status: refusal.status,
              message: refusal.message,
            });
            return BEDROCK_UNUSABLE;
          }
        }
        return bedrockFailed(e);
      }
    }

    async function callBedrock(): Promise<Response> {
      if (!a.stream) {
        const result = await deps.bedrock.invoke(invoke);
        deps.metrics.observeUpstream("bedrock", Math.round(now() - tB), 200);
        outcome.ttfbMs = Math.round(now() - a.t0);
        const json = result.body as { id?: string; stop_reason?: string };
        a.finish(outcome, {
          ...result.usage,
          messageId: json.id ?? null,
          stopReason: json.stop_reason ?? null,
        });
        headers.set("content-type", "application/json");
        if (result.requestId) headers.set("x-amzn-requestid", result.requestId);
        return new Response(JSON.stringify(result.body), { status: 200, headers });
      }
      const streamed = await deps.bedrock.invokeStream(invoke);
      deps.metrics.observeUpstream("bedrock", Math.round(now() - tB), 200);
      outcome.ttfbMs = Math.round(now() - a.t0);
      deps.metrics.streamOpened();
      // Interrupted directly at the drain deadline, as relayed streams are: not only through the signal.
      const interrupt = () => streamed.interrupt();
      liveStreams.add(interrupt);
      streamed.usage.then((u) => {
        liveStreams.delete(interrupt);
        deps.metrics.streamClosed();
        if (u.cancelled && shuttingDown.signal.aborted && !a.req.signal.aborted) {
          outcome.errorType = "stream_interrupted";
        } else if (u.cancelled) {
          outcome.statusCode = 499;
          outcome.errorType = "client_closed_request";
        } else if (u.interrupted) outcome.errorType = "stream_interrupted";
        else if (u.error) outcome.errorType = u.error.type;
        a.finish(outcome, u);
      });
      for (const [k, v] of Object.entries(SSE_HEADERS)) headers.set(k, v);
      if (streamed.requestId) headers.set("x-amzn-requestid", streamed.requestId);
      return new Response(streamed.events, { status: 200, headers });
    }

    function bedrockFailed(e: unknown): Response {
      if (a.req.signal.aborted) {
        // The client left while Bedrock worked: its cancellation, not a Bedrock failure (no warning, no 5xx).
        outcome.statusCode = 499;
        outcome.errorType = "client_closed_request";
        a.finish(outcome, {});
        return new Response(null, { status: 499 });
      }
      if (cutByShutdown(e)) {
        // Cut by the drain deadline, not refused: the client is still there and may retry elsewhere.
        return fail(503, "api_error", SHUTDOWN_BEFORE_ANSWER);
      }
      const mappedError = keyRefusal(mapBedrockError(e), ownCredentials);
      const awsId = bedrockRequestId(e);
      deps.metrics.observeUpstream("bedrock", Math.round(now() - tB), mappedError.status);
      deps.log.warn("bedrock call failed", {
        request_id: a.req.requestId,
        bedrock_request_id: awsId ?? null,
        status: mappedError.status,
        error_type: mappedError.type,
        message: mappedError.message,
      });
      return refused(mappedError.status, mappedError.type, mappedError.message, awsId);
    }

    /**
     * Bedrock's refusal, or, for a fallback whose client would retry the plan's answer, that answer (or a 503):
     * see givesWayToRetry.
     */
    function refused(status: number, type: string, message: string, awsId?: string): Response {
      if (!givesWayToRetry(a.isFallback, a.reason, status)) {
        // Final, or Claude Code would retry a refusal of the key's credentials (a 401) for minutes. Bedrock's own
        // id goes with its error: it is what AWS support asks for.
        return fail(status, type, message, {
          ...(clientRetries(status) ? {} : FINAL),
          ...(awsId ? { "x-amzn-requestid": awsId } : {}),
        });
      }
      if (!a.planAnswer) return fail(503, "api_error", bothFailed(a.reason, message));
      return passPlanAnswer(a.planAnswer, type);
    }

    /** The plan upstream's own answer in place of Bedrock's, recorded with the error that stood in its way. */
    function passPlanAnswer(planAnswer: PlanAnswer, errorType: string): Response {
      outcome.statusCode = planAnswer.status;
      outcome.errorType = errorType;
      a.finish(outcome, {});
      return replayPlanAnswer(planAnswer, a.req.requestId, a.reason);
    }
  }
}

/**
 * Bedrock refusing the credentials or access the admin gave an access key, said as such: the developer's own
 * login is fine, and a 401 would have Claude Code tell them to run /login. Other errors are left as they are.
 */
function keyRefusal(e: { status: number; type: string; message: string }, ownCredentials: boolean) {
  if (e.status !== 401 && e.status !== 403) return e;
  const what = e.status === 401 ? "refused the credentials" : "refused access with the credentials";
  const whose = ownCredentials
    ? "the proxy runs with (its own AWS role, PROXY_BEDROCK_USE_DEFAULT_CREDENTIALS)"
    : "the proxy admin stored for this access key";
  const fix = ownCredentials
    ? "ask the proxy admin to grant the proxy's role Bedrock and model access"
    : "ask the proxy admin to replace the key's Bedrock credentials or grant them model access";
  return {
    status: 403,
    type: "permission_error",
    message: `Bedrock ${what} ${whose} (${
      e.message.replace(/^Bedrock: /, "")
    }); your own sign-in is fine: ${fix}`,
  };
}

/** What {@link answerFromBedrock} returns, given `unusableGivesWay`, when Bedrock refuses the key itself. */
const BEDROCK_UNUSABLE: unique symbol = Symbol("bedrock unusable for this key");

/**
 * Whether a Bedrock refusal should give way to a retryable answer. When Bedrock stands in for an Anthropic API
 * that could not answer and refuses with an error clients do not retry (credentials, model access, a field it
 * does not take), that says nothing about the request: a final 4xx would stop the client for what is only an
 * outage. With the circuit open a retry would meet Bedrock again for the rest of the reset timeout, so its
 * error is the useful answer then.
 */
function givesWayToRetry(isFallback: boolean, reason: string | null, status: number): boolean {
  return isFallback && reason !== "circuit_open" && !clientRetries(status);
}

/** Bedrock's id of a failed call (`x-amzn-requestid`, kept by the AWS SDK in the error's `$metadata`). */
function bedrockRequestId(e: unknown): string | undefined {
  const id = (e as { $metadata?: { requestId?: unknown } } | null)?.$metadata?.requestId;
  return typeof id === "string" && id !== "" ? id : undefined;
}

/** The 503's message when the Anthropic API gave no answer to replay and the fallback failed. */
function bothFailed(reason: string | null, bedrockMessage: string): string {
  return `Anthropic API unavailable (${reason}) and the Bedrock fallback failed: ${bedrockMessage}`;
}

/** Whether the Anthropic SDKs retry a status by themselves (408, 409, 429 and 5xx). */
function clientRetries(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** A Messages request body, parsed: a JSON object, or 400. */
function parseMessagesBody(body: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(body));
  } catch {
    throw invalidBody();
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalidBody();
  return value as Record<string, unknown>;
}

function invalidBody(): HttpError {
  return new HttpError(
    400,
    "invalid_request_error",
    "request body is not valid JSON; expected a Messages API object",
  );
}

/**
 * Why a key's Bedrock credentials could not be opened, as the client should hear it: a database it cannot reach
 * (nothing cached yet) is a passing outage to retry, not a sealing problem for the admin.
 */
function credentialsUnopened(e: unknown): [503 | 500, "api_error", string] {
  return isDatabaseUnavailable(e) || e instanceof TimedOut
    ? [
      503,
      "api_error",
      "Bedrock credentials could not be read: the proxy cannot reach its database; retry shortly",
    ]
    : [
      500,
      "api_error",
      "Bedrock credentials for this access key could not be decrypted; ask the proxy admin",
    ];
}
