/**
 * Admin sign-in: constant-time checks, the same answer and similar timing for a wrong user name or a wrong
 * password, and throttling of failures per client address and per user name.
 *
 * The per-name limit refuses only addresses that have failed themselves: guessing spread over many addresses is
 * slowed to one try per address, while the admin, signing in from an address with no failures, is never locked
 * out by someone else's guesses.
 *
 * @example
 * ```ts
 * const login = createLoginService({ username: "admin", passwordHash, sessions });
 * const { token } = await login.attempt("admin", "…", "10.0.0.7"); // throws HttpError 401 / 429 / 503
 * ```
 */
import { createHash } from "node:crypto";
import { HttpError } from "../errors.ts";
import { MAX_ADMIN_USERNAME_LENGTH } from "../config.ts";
import { timingSafeEqual } from "../encoding.ts";
import { verifyPassword } from "./password.ts";
import type { Sessions } from "./session.ts";
import { FailureThrottle } from "./throttle.ts";
import { throttleSubject } from "../net/cidr.ts";
import { BoundedGate } from "../bounded_gate.ts";
import type { EventBus } from "../events.ts";

/** Sign-in outcome: a session token. */
export interface LoginService {
  attempt(
    username: string,
    password: string,
    clientAddress: string,
  ): Promise<{ token: string; expiresIn: number }>;
  /** Seconds until this address or name may try again (0: not throttled); the console shows it. */
  retryAfter(username: string, clientAddress: string): number;
}

/**
 * Creates the login service; 5 failures a minute per address and per name, then 429. A user name longer than
 * {@link MAX_ADMIN_USERNAME_LENGTH} is refused with 400 before anything is counted or checked. Password checks
 * run one at a time (`maxConcurrentChecks`) with at most `maxQueuedChecks` waiting: a guess beyond that is
 * refused with 503 and not counted against its address, so guesses spread over many addresses cannot take the
 * CPU from the proxy.
 */
export function createLoginService(deps: {
  username: string;
  passwordHash: string;
  sessions: Sessions;
  now?: () => number;
  limit?: number;
  windowMs?: number;
  maxConcurrentChecks?: number;
  maxQueuedChecks?: number;
  /** The password check (tests swap in one they can hold). */
  verify?: (password: string, stored: string) => Promise<boolean>;
  /**
   * Shares failures and successes with the other replicas, so the limits hold for the whole service, not per
   * task (a guesser would otherwise get N times the tries behind a load balancer spreading them over N).
   */
  bus?: EventBus;
}): LoginService {
  const verify = deps.verify ?? verifyPassword;
  const checks = new BoundedGate({
    concurrency: deps.maxConcurrentChecks ?? 1,
    queue: deps.maxQueuedChecks ?? 8,
  });
  const throttle = new FailureThrottle({
    limit: deps.limit ?? 5,
    windowMs: deps.windowMs ?? 60_000,
    now: deps.now,
  });
  deps.bus?.subscribe((event, origin) => {
    // Our own attempts are counted where they are made.
    if (
      origin !== "remote" ||
      (event.type !== "sign_in_failed" && event.type !== "sign_in_forgiven" &&
        event.type !== "sign_in_succeeded")
    ) {
      return;
    }
    const subjects = Array.isArray(event.subjects) ? event.subjects.slice(0, 2) : [];
    for (const s of subjects) {
      if (typeof s !== "string" || s.length > 300 || !/^(ip|user):/.test(s)) continue;
      if (event.type === "sign_in_failed") throttle.fail(s);
      else if (event.type === "sign_in_forgiven") throttle.forgive(s);
      else throttle.clear(s);
    }
  });
  const expectedName = new TextEncoder().encode(deps.username);
  const retryAfter = (username: string, client: string) => {
    const address = throttleSubject(client);
    const byAddress = throttle.retryAfterSeconds(`ip:${address}`);
    if (!throttle.hasFailed(`ip:${address}`)) return byAddress;
    return Math.max(byAddress, throttle.retryAfterSeconds(userSubject(username)));
  };

  return {
    retryAfter,
    async attempt(username, password, client) {
      // Before anything is recorded: the throttle keys on a hash, but a name this long is no admin's anyway.
      if (username.length > MAX_ADMIN_USERNAME_LENGTH) {
        throw new HttpError(
          400,
          "invalid_request_error",
          `username: expected at most ${MAX_ADMIN_USERNAME_LENGTH} characters, got ${username.length}`,
          {},
          "username",
        );
      }
      const wait = retryAfter(username, client);
      const address = throttleSubject(client);
      const user = userSubject(username);
      if (wait > 0) {
        throw new HttpError(429, "rate_limit_error", `too many failed sign-ins; try again in ${wait} s`, {
          "retry-after": String(wait),
        });
      }
      // Counted as a failure before the slow hash check and taken back on success: attempts sent in parallel
      // would otherwise all pass the check above before the first of them failed. The other replicas count it
      // now too, not after the check: a burst spread over N replicas would otherwise get N times the tries.
      throttle.fail(`ip:${address}`);
      throttle.fail(user);
      // NOTIFY payloads are at most 8000 bytes; an address is short and a name's subject is a fixed-size hash,
      // so this filter is only a guard.
      const subjects = [`ip:${address}`, user].filter((s) => s.length <= 300);
      deps.bus?.publish({ type: "sign_in_failed", subjects });
      const release = await checks.enter();
      if (!release) {
        throttle.forgive(`ip:${address}`);
        throttle.forgive(user);
        deps.bus?.publish({ type: "sign_in_forgiven", subjects });
        throw new HttpError(
          503,
          "overloaded_error",
          "sign-in is busy checking other attempts; try again in 1 s",
          {
            "retry-after": "1",
          },
        );
      }
      let passwordOk: boolean;
      try {
        // Always verify the password, even for a wrong name, so timing does not reveal which part was wrong.
        passwordOk = await verify(password, deps.passwordHash);
      } finally {
        release();
      }
      const nameOk = timingSafeEqual(new TextEncoder().encode(username), expectedName);
      if (!(passwordOk && nameOk)) {
        throw new HttpError(401, "authentication_error", "wrong user name or password");
      }
      throttle.clear(`ip:${address}`);
      throttle.clear(user);
      deps.bus?.publish({ type: "sign_in_succeeded", subjects });
      return await deps.sessions.issue(deps.username);
    },
  };
}

/**
 * The throttle's key for a user name: a SHA-256 of the name in lower case, so each key has the same small size
 * whatever was typed, and names guessed by others do not travel to the other replicas in clear.
 */
function userSubject(username: string): string {
  return `user:${createHash("sha256").update(username.toLowerCase()).digest("base64url")}`;
}
