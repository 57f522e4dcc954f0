/**
 * Notices clients that closed their connection while their request still awaits its answer's headers.
 *
 * Deno's HTTP server (2.9) aborts a request's signal when its client goes away, except before the answer's
 * headers when the request body was over a few hundred bytes; Claude Code's are about 70 KB. Such a client was
 * noticed only when the upstream answered or its first-byte timeout struck, so the upstream kept working for
 * no one, and a timeout could send the request on to Bedrock. The kernel does know: the server's side of a
 * connection whose client closed it is in CLOSE_WAIT, or gone from the table after a reset. {@link PeerWatch}
 * reads Linux's socket tables (`/proc/net/tcp`, `/proc/net/tcp6`) once a second, and only while some request
 * has waited a second already, so quick answers never cost a read. Where the tables cannot be read it stays idle
 * and requests behave as before: not Linux, or a process without `--allow-all` (Deno refuses reads under
 * `/proc` to anything less, `--allow-read` included).
 */
import { parseIp } from "./cidr.ts";

/** A TCP peer as `Deno.serve` reports it (`info.remoteAddr`). */
export interface PeerAddress {
  hostname: string;
  port: number;
}

/** Options of {@link PeerWatch}; the defaults are for production. */
export interface PeerWatchOptions {
  /** Reads a socket table; rejects when it cannot (then the watch stays idle). */
  readTable?: (path: string) => Promise<string>;
  /** Time between two reads of the tables while requests are watched. */
  intervalMs?: number;
  /** A request is looked up once it has been watched this long. */
  minAgeMs?: number;
  now?: () => number;
  /** Told once when the tables cannot be read (missing, or not permitted), with why. */
  onUnavailable?: (error: Error) => void;
}

interface Watched {
  peer: PeerAddress;
  /**
   * Its remote address as the IPv4 table writes it (null for an IPv6 peer) and as the IPv6 table does; worked
   * out at its first look-up, which most requests, answered sooner, never reach.
   */
  keys?: { v4: string | null; v6: string };
  since: number;
  /** Found in a table once: missing later means reset, not a format this reader does not know. */
  seen: boolean;
  /**
   * Missing from the last read, having been seen: a reset, or a line the kernel's table skipped (it is read in
   * pieces, not as one snapshot). Reported when missing twice in a row.
   */
  missed: boolean;
  onGone: () => void;
}

/** TCP state `01` in the tables: ESTABLISHED. Any other on the server's side means the client's end is closed. */
const ESTABLISHED = "01";

/**
 * Watches the clients of one listening port for having closed their end of the connection.
 *
 * @example
 * ```ts
 * const peers = new PeerWatch();
 * await peers.listening(8080); // false where the tables cannot be read: then watch() does nothing
 * const unwatch = peers.watch(info.remoteAddr, () => controller.abort());
 * try {
 *   return await answer(request, controller.signal);
 * } finally {
 *   unwatch(); // once the headers go, Deno notices a client leaving by itself
 * }
 * ```
 */
export class PeerWatch {
  readonly #entries = new Set<Watched>();
  readonly #readTable: (path: string) => Promise<string>;
  readonly #intervalMs: number;
  readonly #minAgeMs: number;
  readonly #now: () => number;
  readonly #onUnavailable: (error: Error) => void;
  #portHex: string | null = null;
  /** The tables were read once: the watch can work here. */
  #readable = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #unavailable = false;
  #closed = false;
  #reads = 0;
  #noticed = 0;

  constructor(opts: PeerWatchOptions = {}) {
    this.#readTable = opts.readTable ?? ((path) => Deno.readTextFile(path));
    this.#intervalMs = opts.intervalMs ?? 1_000;
    this.#minAgeMs = opts.minAgeMs ?? 1_000;
    this.#now = opts.now ?? Date.now;
    this.#onUnavailable = opts.onUnavailable ?? (() => {});
  }

  /**
   * The port the server listens on: only its connections are looked at. Reads the tables once to learn whether
   * it can; resolves to whether it is {@link active} (when not, `onUnavailable` was told why).
   */
  async listening(port: number): Promise<boolean> {
    this.#portHex = hex4(port);
    try {
      await this.#readTable("/proc/net/tcp");
      this.#readable = true;
    } catch (e) {
      this.#giveUp(e as Error);
    }
    return this.active;
  }

  /** Whether requests are watched: the port is known and the tables could be read. */
  get active(): boolean {
    return this.#portHex !== null && this.#readable && !this.#unavailable && !this.#closed;
  }

  /** How many times the tables were read: for tests, and to see that quick answers cost none. */
  get reads(): number {
    return this.#reads;
  }

  /** How many clients were reported gone (each request's `onGone` called). */
  get noticed(): number {
    return this.#noticed;
  }

  /**
   * Calls `onGone` once, should the client at `peer` close its end before the returned function is called. A
   * peer that is not an IP address, or a watch that is not {@link active}, is never reported.
   */
  watch(peer: PeerAddress, onGone: () => void): () => void {
    if (!this.active) return noop;
    const entry: Watched = { peer, since: this.#now(), seen: false, missed: false, onGone };
    this.#entries.add(entry);
    this.#schedule();
    return () => this.#entries.delete(entry);
  }

  /** Stops watching; no reports after this. */
  close(): void {
    this.#closed = true;
    this.#entries.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#entries.size === 0 || !this.active) return;
    const timer = setTimeout(() => this.#tick(), this.#intervalMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  async #tick(): Promise<void> {
    try {
      const now = this.#now();
      const due = [...this.#entries].filter((e) => now - e.since >= this.#minAgeMs);
      if (due.length > 0) await this.#check(due);
    } catch (e) {
      // Missing or forbidden stays so; anything else (too many open files, say) may pass: tried next time.
      if (
        e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied ||
        e instanceof Deno.errors.NotCapable
      ) this.#giveUp(e);
    } finally {
      this.#timer = undefined;
      this.#schedule();
    }
  }

  #giveUp(e: Error): void {
    if (this.#unavailable) return;
    this.#unavailable = true;
    this.#entries.clear();
    this.#onUnavailable(e);
  }

  async #check(due: Watched[]): Promise<void> {
    const port = this.#portHex!;
    for (const e of due) {
      const keys = e.keys ?? tableKeys(e.peer);
      if (keys === null) this.#entries.delete(e); // not an IP address: nothing to look up
      else e.keys = keys;
    }
    due = due.filter((e) => e.keys !== undefined);
    if (due.length === 0) return;
    this.#reads++;
    const states = socketStates(await this.#readTable("/proc/net/tcp"), port);
    // A dual-stack listener keeps IPv4 clients in the IPv6 table: read it only when a peer was not found.
    if (due.some((e) => !states.has(e.keys!.v4 ?? e.keys!.v6))) {
      // Missing where IPv6 is off. Any other failure skips this look-up: read as empty, it would report every
      // client of a dual-stack listener gone.
      const v6 = await this.#readTable("/proc/net/tcp6").catch((e) => {
        if (e instanceof Deno.errors.NotFound) return "";
        throw e;
      });
      for (const [k, v] of socketStates(v6, port)) states.set(k, v);
    }
    for (const e of due) {
      if (!this.#entries.has(e)) continue; // answered while the tables were read
      const { v4, v6 } = e.keys!;
      const state = (v4 !== null ? states.get(v4) : undefined) ?? states.get(v6);
      const closed = state !== undefined && state !== ESTABLISHED;
      const reset = state === undefined && e.seen && e.missed;
      if (closed || reset) {
        this.#entries.delete(e);
        this.#noticed++;
        try {
          e.onGone();
        } catch {
          // One watcher's failure must not stop the others being told.
        }
      } else if (state === undefined) {
        e.missed = e.seen;
      } else {
        e.seen = true;
        e.missed = false;
      }
    }
  }
}

function noop(): void {}

/**
 * The states of the connections on local port `portHex` in one socket table (`/proc/net/tcp` or `tcp6`), by
 * remote address as the table writes it (`0100007F:C922`).
 *
 * @example
 * ```ts
 * socketStates(await Deno.readTextFile("/proc/net/tcp"), "1F90").get("0100007F:C922"); // "01"
 * ```
 */
export function socketStates(table: string, portHex: string): Map<string, string> {
  const states = new Map<string, string>();
  const needle = `:${portHex} `;
  // Only the lines naming the port are split: the table holds every socket of the network namespace (tens of
  // thousands on a busy host, megabytes), and splitting all of it took 50-60 ms of the event loop.
  for (let at = table.indexOf(needle); at >= 0; at = table.indexOf(needle, at + needle.length)) {
    const start = table.lastIndexOf("\n", at) + 1;
    const end = table.indexOf("\n", at);
    const [, local, remote, state] = table.slice(start, end < 0 ? undefined : end).trim().split(/\s+/);
    if (local?.endsWith(`:${portHex}`) && remote && state) states.set(remote, state);
    if (end < 0) break;
    at = end - needle.length; // the next line, not a second match in this one
  }
  return states;
}

/**
 * How the socket tables write `peer`: an IPv4 peer in the IPv4 table and, mapped, in the IPv6 one. Each 32-bit
 * word of the address is printed as the machine stores it, so on little-endian machines its bytes are reversed.
 * Null for a peer that is not an IP address.
 *
 * @example
 * ```ts
 * tableKeys({ hostname: "127.0.0.1", port: 51490 });
 * // { v4: "0100007F:C922", v6: "0000000000000000FFFF00000100007F:C922" } on x86_64
 * ```
 */
export function tableKeys(peer: PeerAddress): { v4: string | null; v6: string } | null {
  const bytes = parseIp(peer.hostname);
  if (bytes === null || !Number.isInteger(peer.port)) return null;
  const port = `:${hex4(peer.port)}`;
  const words = [0, 4, 8, 12].map((i) => word(bytes, i)).join("");
  const isV4 = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return { v4: isV4 ? word(bytes, 12) + port : null, v6: words + port };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function word(bytes: Uint8Array, at: number): string {
  const four = Array.from(bytes.subarray(at, at + 4));
  if (LITTLE_ENDIAN) four.reverse();
  return four.map((b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
}

function hex4(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, "0");
}
