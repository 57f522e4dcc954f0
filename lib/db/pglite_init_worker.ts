/**
 * Creates an embedded database in its own worker (see `openPglite`): posted a data directory, it runs PGlite's
 * initdb there, closes it, and answers "done" or the error message.
 */
import { PGlite } from "@electric-sql/pglite";

declare const self: Worker;

self.onmessage = async (e: MessageEvent<string>) => {
  try {
    const pg = await PGlite.create(e.data);
    await pg.close();
    self.postMessage("done");
  } catch (err) {
    self.postMessage(err instanceof Error ? err.message : String(err));
  }
};
