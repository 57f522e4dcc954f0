/**
 * `deno task fakes`: the test suite's fake Anthropic API and fake Bedrock, started on their own, so the proxy can
 * be tried end to end (Claude Code included) on a machine with no access to either. Prints the settings to start
 * the proxy against them and the Bedrock credentials to give an access key. Ctrl-C stops both.
 *
 * ```sh
 * deno task fakes                 # both fakes on free ports
 * deno task fakes --overloaded    # the fake Anthropic API answers every request 529: each one falls back
 * ```
 */
import { startFakeAnthropic } from "../tests/fakes/fake_anthropic.ts";
import { startFakeBedrock } from "../tests/fakes/fake_bedrock.ts";

/** The Bedrock API key the fake takes (any key of this form would do for the real one). */
export const FAKE_BEDROCK_API_KEY = "ABSKZmFrZS1iZWRyb2NrLWFwaS1rZXktZm9yLXRyeWluZw==";

/** How many answers `--overloaded` scripts: more than anyone trying it by hand will send. */
const OVERLOADED_ANSWERS = 100_000;

if (import.meta.main) {
  const overloaded = Deno.args.includes("--overloaded");
  const anthropic = await startFakeAnthropic({ record: false, latencyMs: 200, eventDelayMs: 30 });
  if (overloaded) {
    const step = {
      kind: "error" as const,
      status: 529,
      type: "overloaded_error",
      message: "Overloaded (deno task fakes --overloaded)",
    };
    // One at a time: a spread of this many arguments would overflow the stack.
    for (let i = 0; i < OVERLOADED_ANSWERS; i++) anthropic.script(step);
  }
  const bedrock = await startFakeBedrock({
    apiKeys: [FAKE_BEDROCK_API_KEY],
    reply: { text: ["Hello ", "from ", "the fake ", "Bedrock."] },
  });
  console.log(
    `fake Anthropic API: ${anthropic.url}${overloaded ? " (answers 529: every request falls back)" : ""}
fake Bedrock:       ${bedrock.url}

Start the proxy against them (another terminal):
  PROXY_PLAN_API_URL=${anthropic.url} PROXY_BEDROCK_ENDPOINT=${bedrock.url} PROXY_PLAN_API_KEY=sk-ant-fake deno task dev

Give an access key these Bedrock credentials (console: the key's page; API: PUT /api/access-keys/<id>/bedrock-key):
  {"bedrock_api_key":"${FAKE_BEDROCK_API_KEY}","region":"us-east-1"}

Then: ANTHROPIC_BASE_URL=http://localhost:8000/ak/<access key> ANTHROPIC_API_KEY=sk-ant-fake claude -p "say hi"
Ctrl-C stops both fakes.`,
  );
  const stop = async () => {
    await Promise.allSettled([anthropic.close(), bedrock.close()]);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
