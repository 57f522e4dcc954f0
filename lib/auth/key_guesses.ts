/**
 * Access-key guessing, throttled per client address across every replica.
 *
 * A guess is a lookup of a key this process had not seen that the database did not know (see `lib/proxy`). Past
 * the limit, an address's unseen keys are looked up one at a time, at the limit's pace, not refused outright: a
 * valid key new to this replica still gets through after a short wait. Failures and paced turns are shared
 * over the cluster bus, so behind a load balancer spreading requests over N replicas a guesser gets the limit,
 * not N times it.
 *
 * @example
 * ```ts
 * const guesses = createKeyGuessThrottle({ bus, limitPerMinute: 30 });
 * if (guesses.pace("203.0.113.7") === 0) {
 *   // look the key up; if the database does not know it:
 *   guesses.fail("203.0.113.7");
 * }
 * ```
 */
import type { EventBus } from "../events.ts";
import { throttleSubject } from "../net/cidr.ts";
import { FailureThrottle } from "./throttle.ts";

/** The key-guess throttle of one process. */
export interface KeyGuessThrottle {
  /** Before looking up an unseen key from `address`: 0 when it may go ahead now, else the seconds to wait. */
  pace(address: string): number;
  /** After the database did not know a key sent from `address`. */
  fail(address: string): void;
}

/** The longest subject taken from another replica: an IPv4 address, or an IPv6 /64 as `throttleSubject` writes it. */
const MAX_SUBJECT_LENGTH = 64;

/** Creates the throttle; 30 guesses a minute per address (IPv6: per /64) unless told otherwise. */
export function createKeyGuessThrottle(deps: {
  bus?: EventBus;
  limitPerMinute?: number;
  now?: () => number;
} = {}): KeyGuessThrottle {
  const throttle = new FailureThrottle({ limit: deps.limitPerMinute ?? 30, windowMs: 60_000, now: deps.now });
  deps.bus?.subscribe((event, origin) => {
    // Our own are counted where they happen.
    if (origin !== "remote" || event.type !== "key_guess") return;
    const subject = event.subject;
    // Whatever arrives on the channel is checked: it must not grow the throttle's keys without bound in size.
    if (typeof subject !== "string" || subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH) return;
    if (event.outcome === "failed") throttle.fail(subject);
    // A turn taken elsewhere is one turn fewer here too, even when this replica has just taken its own.
    else if (event.outcome === "paced") throttle.takeTurn(subject);
  });
  return {
    pace(address) {
      const subject = throttleSubject(address);
      const throttled = throttle.retryAfterSeconds(subject) > 0;
      const wait = throttle.pace(subject);
      if (throttled && wait === 0) deps.bus?.publish({ type: "key_guess", outcome: "paced", subject });
      return wait;
    },
    fail(address) {
      const subject = throttleSubject(address);
      throttle.fail(subject);
      deps.bus?.publish({ type: "key_guess", outcome: "failed", subject });
    },
  };
}
