import assert from "node:assert/strict";
import { PeerWatch, socketStates, tableKeys } from "./peer_watch.ts";
import { waitFor } from "../../tests/helpers/proxy.ts";

const HEADER =
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

/** One socket-table line: local port 0x1F90 (8080) on 127.0.0.1 unless given. */
function line(remote: string, state: string, local = "0100007F:1F90"): string {
  return `   0: ${local} ${remote} ${state} 00000000:00000000 00:00000000 00000000   0  0 1065 1 0 100 0 0 10 0\n`;
}

/** A fake clock and tables the test rewrites; ticks run as fast as the timer allows. */
async function fixture(tables: { tcp: string; tcp6?: string }) {
  let t = 0;
  const read: string[] = [];
  const peers = new PeerWatch({
    intervalMs: 1,
    minAgeMs: 1_000,
    now: () => t,
    readTable: (path) => {
      read.push(path);
      if (path.endsWith("tcp6")) {
        return tables.tcp6 === undefined ? Promise.reject(new Error("off")) : Promise.resolve(tables.tcp6);
      }
      return Promise.resolve(tables.tcp);
    },
  });
  assert.equal(await peers.listening(8080), true);
  read.length = 0; // the probe
  return { peers, read, advance: (ms: number) => (t += ms) };
}

const procReadable = await Deno.stat("/proc/net/tcp").then(() => true, () => false);
const ipv6Loopback = (() => {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
})();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("tableKeys writes addresses as Linux's socket tables do", () => {
  assert.deepEqual(tableKeys({ hostname: "127.0.0.1", port: 51490 }), {
    v4: "0100007F:C922",
    v6: "0000000000000000FFFF00000100007F:C922",
  });
  assert.deepEqual(tableKeys({ hostname: "::ffff:10.1.2.3", port: 443 }), {
    v4: "0302010A:01BB",
    v6: "0000000000000000FFFF00000302010A:01BB",
  });
  assert.deepEqual(tableKeys({ hostname: "::1", port: 80 }), {
    v4: null,
    v6: "00000000000000000000000001000000:0050",
  });
  assert.deepEqual(tableKeys({ hostname: "2001:db8::7", port: 80 }), {
    v4: null,
    v6: "B80D0120000000000000000007000000:0050",
  });
  assert.equal(tableKeys({ hostname: "/run/proxy.sock", port: 0 }), null);
});

Deno.test("socketStates keeps the listening port's connections only, by remote address", () => {
  const table = HEADER + line("0100007F:C922", "01") + line("0100007F:C923", "08") +
    line("0100007F:1F90", "01", "0100007F:C924") + // the client's own socket: its remote is the port
    line("00000000:0000", "0A", "00000000:1F91"); // another listener
  assert.deepEqual(
    [...socketStates(table, "1F90")],
    [["0100007F:C922", "01"], ["0100007F:C923", "08"]],
  );
});

Deno.test("a client whose end went to CLOSE_WAIT is reported once; one still connected is not", async () => {
  const tables = { tcp: HEADER + line("0100007F:C922", "01") + line("0100007F:C923", "01") };
  const f = await fixture(tables);
  try {
    let left = 0;
    let stayed = 0;
    f.peers.watch({ hostname: "127.0.0.1", port: 0xC922 }, () => left++);
    f.peers.watch({ hostname: "127.0.0.1", port: 0xC923 }, () => stayed++);
    f.advance(1_000);
    await waitFor(() => f.peers.reads >= 1, 2000, "a first read");
    tables.tcp = HEADER + line("0100007F:C922", "08") + line("0100007F:C923", "01");
    await waitFor(() => left === 1, 2000, "the report");
    const reads = f.peers.reads;
    await waitFor(() => f.peers.reads > reads + 2, 2000, "more reads");
    assert.deepEqual([left, stayed], [1, 0]);
  } finally {
    f.peers.close();
  }
});

Deno.test("a request answered within the minimum age costs no read of the tables", async () => {
  const f = await fixture({ tcp: HEADER + line("0100007F:C922", "08") });
  try {
    let gone = 0;
    const unwatch = f.peers.watch({ hostname: "127.0.0.1", port: 0xC922 }, () => gone++);
    f.advance(999);
    await sleep(30);
    unwatch();
    f.advance(10_000);
    await sleep(30);
    assert.deepEqual([f.peers.reads, f.read.length, gone], [0, 0, 0]);
  } finally {
    f.peers.close();
  }
});

Deno.test("a client gone from the table after being seen (a reset) is reported; one never seen is not", async () => {
  const tables = { tcp: HEADER + line("0100007F:C922", "01"), tcp6: HEADER };
  const f = await fixture(tables);
  try {
    let reset = 0;
    let unknown = 0;
    f.peers.watch({ hostname: "127.0.0.1", port: 0xC922 }, () => reset++);
    f.peers.watch({ hostname: "10.9.9.9", port: 1 }, () => unknown++);
    f.advance(1_000);
    await waitFor(() => f.peers.reads >= 2, 2000, "reads");
    tables.tcp = HEADER;
    await waitFor(() => reset === 1, 2000, "the reset reported");
    const reads = f.peers.reads;
    await waitFor(() => f.peers.reads > reads + 2, 2000, "more reads");
    assert.equal(unknown, 0, "a peer this reader never found is never reported");
  } finally {
    f.peers.close();
  }
});

Deno.test("a client missing from one read only (the table is not one snapshot) is not reported", async () => {
  const present = HEADER + line("0100007F:C922", "01");
  // The probe, then: seen, missing once, seen, missing once, seen...; never missing twice in a row.
  const sequence = [HEADER, present, HEADER, present, HEADER, present];
  let reads = 0;
  const peers = new PeerWatch({
    intervalMs: 1,
    minAgeMs: 0,
    readTable: (path) =>
      Promise.resolve(path.endsWith("tcp6") ? HEADER : sequence[Math.min(reads++, sequence.length - 1)]),
  });
  try {
    await peers.listening(8080);
    let gone = 0;
    peers.watch({ hostname: "127.0.0.1", port: 0xC922 }, () => gone++);
    await waitFor(() => reads >= sequence.length + 3, 2000, "the sequence read");
    assert.equal(gone, 0);
  } finally {
    peers.close();
  }
});

Deno.test("an IPv6 table that fails to read (not missing) skips the look-up: its clients are not reported", async () => {
  const mapped = line("0000000000000000FFFF00000100007F:C922", "01", "00000000000000000000000000000000:1F90");
  let failing = false;
  let reads = 0;
  const peers = new PeerWatch({
    intervalMs: 1,
    minAgeMs: 0,
    readTable: (path) => {
      if (path.endsWith("tcp6")) {
        reads++;
        return failing ? Promise.reject(new Error("Too many open files")) : Promise.resolve(HEADER + mapped);
      }
      return Promise.resolve(HEADER);
    },
  });
  try {
    await peers.listening(8080);
    let gone = 0;
    peers.watch({ hostname: "127.0.0.1", port: 0xC922 }, () => gone++);
    await waitFor(() => reads >= 2, 2000, "seen in the IPv6 table");
    failing = true;
    await waitFor(() => reads >= 6, 2000, "failed reads");
    assert.equal(gone, 0, "a failed read is not an empty table");
    assert.equal(peers.active, true);
  } finally {
    peers.close();
  }
});

Deno.test("socketStates finds the port's lines in a large table, first and last lines included", () => {
  const others = Array.from(
    { length: 20_000 },
    (_, i) => line(`0100007F:${(i + 1).toString(16).padStart(4, "0").toUpperCase()}`, "01", "0100007F:0050"),
  ).join("");
  const table = line("0100007F:AAAA", "08") + others + line("0100007F:BBBB", "01").trimEnd();
  assert.deepEqual([...socketStates(table, "1F90")], [["0100007F:AAAA", "08"], ["0100007F:BBBB", "01"]]);
});

Deno.test("an IPv4 client of a dual-stack listener is found in the IPv6 table; an IPv6 client too", async () => {
  const tables = {
    tcp: HEADER,
    tcp6: HEADER +
      line("0000000000000000FFFF00000100007F:C922", "08", "00000000000000000000000000000000:1F90") +
      line("00000000000000000000000001000000:C923", "08", "00000000000000000000000001000000:1F90"),
  };
  const f = await fixture(tables);
  try {
    const gone: string[] = [];
    f.peers.watch({ hostname: "127.0.0.1", port: 0xC922 }, () => gone.push("v4"));
    f.peers.watch({ hostname: "::1", port: 0xC923 }, () => gone.push("v6"));
    f.advance(1_000);
    await waitFor(() => gone.length === 2, 2000, "both reported");
    assert.deepEqual(gone.sort(), ["v4", "v6"]);
    assert.ok(f.read.includes("/proc/net/tcp6"));
  } finally {
    f.peers.close();
  }
});

Deno.test("tables that cannot be read make the watch idle for good, said once; other failures are retried", async () => {
  let fail: Error | null = null;
  let reads = 0;
  const said: string[] = [];
  const retried = new PeerWatch({
    intervalMs: 1,
    minAgeMs: 0,
    readTable: () => {
      reads++;
      return fail ? Promise.reject(fail) : Promise.resolve(HEADER);
    },
    onUnavailable: (e) => said.push(e.message),
  });
  try {
    assert.equal(await retried.listening(8080), true);
    fail = new Error("Too many open files");
    retried.watch({ hostname: "127.0.0.1", port: 1 }, () => {});
    await waitFor(() => reads >= 4, 2000, "retries");
    assert.equal(retried.active, true);
    fail = new Deno.errors.NotFound("no /proc");
    await waitFor(() => !retried.active, 2000, "idle");
    const after = reads;
    let gone = 0;
    assert.equal(typeof retried.watch({ hostname: "127.0.0.1", port: 2 }, () => gone++), "function");
    await sleep(30);
    assert.deepEqual([reads, gone, said], [after, 0, ["no /proc"]]);
  } finally {
    retried.close();
  }
});

Deno.test("where the first read fails the watch is never active, and says why", async () => {
  const said: string[] = [];
  const peers = new PeerWatch({
    readTable: () => Promise.reject(new Deno.errors.NotCapable('Requires all access to "/proc/net/tcp"')),
    onUnavailable: (e) => said.push(e.message),
  });
  assert.equal(await peers.listening(8080), false);
  assert.equal(peers.active, false);
  assert.deepEqual(said, ['Requires all access to "/proc/net/tcp"']);
});

Deno.test("Deno lets only --allow-all read the tables: with --allow-read the watch stays off", async () => {
  const script = `import { PeerWatch } from ${
    JSON.stringify(new URL("./peer_watch.ts", import.meta.url).href)
  };
    const said = [];
    const on = await new PeerWatch({ onUnavailable: (e) => said.push(e.name) }).listening(8080);
    console.log(JSON.stringify({ on, said }));`;
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, script);
    // Not `deno eval`, which has every permission: a file, run as the start task runs the proxy.
    const run = (flag: string) =>
      new Deno.Command(Deno.execPath(), { args: ["run", "--no-config", flag, file], stdout: "piped" })
        .output()
        .then((o) => JSON.parse(new TextDecoder().decode(o.stdout)));
    assert.deepEqual(await run("--allow-read"), { on: false, said: ["NotCapable"] });
    if (procReadable) assert.deepEqual(await run("--allow-all"), { on: true, said: [] });
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("a peer that is not an IP address is dropped at its first look-up, costing no read", async () => {
  const f = await fixture({ tcp: HEADER });
  try {
    let gone = 0;
    f.peers.watch({ hostname: "proxy.sock", port: 0 }, () => gone++);
    f.advance(1_000);
    await sleep(30);
    assert.deepEqual([f.peers.reads, gone], [0, 0]);
  } finally {
    f.peers.close();
  }
});

Deno.test("without a listening port nothing is watched", async () => {
  let reads = 0;
  const peers = new PeerWatch({
    intervalMs: 1,
    minAgeMs: 0,
    readTable: () => (reads++, Promise.resolve(HEADER)),
  });
  try {
    assert.equal(peers.active, false);
    peers.watch({ hostname: "127.0.0.1", port: 1 }, () => {});
    await sleep(30);
    assert.equal(reads, 0);
  } finally {
    peers.close();
  }
});

/**
 * A server whose requests, once their body is read, are watched by `peers` (told the port) and held until
 * `close`; `left` gets each client the watch reports gone, `signalled` counts Deno's own aborts.
 */
async function holdingServer(hostname: string, peers: PeerWatch) {
  const left: string[] = [];
  let signalled = 0;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const server = Deno.serve({ hostname, port: 0, onListen() {} }, async (req, info) => {
    await req.arrayBuffer();
    req.signal.addEventListener("abort", () => signalled++);
    const unwatch = peers.watch(info.remoteAddr, () => left.push(info.remoteAddr.hostname));
    await held;
    unwatch();
    return new Response("late");
  });
  assert.equal(await peers.listening(server.addr.port), true);
  return {
    port: server.addr.port,
    left,
    signalled: () => signalled,
    async close() {
      release();
      peers.close();
      await server.shutdown();
    },
  };
}

/** Connects to `hostname:port` and sends a request with a 70 KB body (Claude Code's size); the answer is not read. */
async function sendLargeRequest(hostname: string, port: number): Promise<Deno.Conn> {
  const body = "x".repeat(70_000);
  const bytes = new TextEncoder().encode(
    `POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
  );
  const conn = await Deno.connect({ hostname, port });
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
  return conn;
}

Deno.test({
  name: "over real sockets: a client that sends a 70 KB body and closes before the answer is reported",
  ignore: !procReadable,
  async fn() {
    const peers = new PeerWatch({ intervalMs: 50, minAgeMs: 0 });
    const server = await holdingServer("127.0.0.1", peers);
    try {
      const conn = await sendLargeRequest("127.0.0.1", server.port);
      await waitFor(() => peers.reads >= 2, 3000, "the watch to see the connection open");
      assert.equal(server.left.length, 0, "not reported while connected");
      conn.close();
      await waitFor(() => server.left.length === 1, 3000, "the report");
    } finally {
      await server.close();
    }
    // Why this exists: Deno's own signal stays silent for such a client (if this starts failing, Deno fixed it
    // and the watch could go).
    assert.equal(server.signalled(), 0, "Deno's signal did not fire before the answer");
  },
});

Deno.test({
  name: "over real sockets: a dual-stack listener's IPv4 and IPv6 clients are each reported when they leave",
  ignore: !procReadable || !ipv6Loopback,
  async fn() {
    const peers = new PeerWatch({ intervalMs: 50, minAgeMs: 0 });
    const server = await holdingServer("::", peers);
    try {
      const conns = [
        await sendLargeRequest("127.0.0.1", server.port),
        await sendLargeRequest("::1", server.port),
      ];
      await waitFor(() => peers.reads >= 3, 3000, "the watch to see both connections open");
      assert.deepEqual(server.left, [], "not reported while connected");
      for (const conn of conns) conn.close();
      await waitFor(() => server.left.length === 2, 3000, "both reported");
      assert.deepEqual(server.left.sort(), ["::1", "::ffff:127.0.0.1"]);
    } finally {
      await server.close();
    }
  },
});
