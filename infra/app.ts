/**
 * CDK app entry point.
 *
 *   deno task synth -c environment=prod -c certificateArn=arn:aws:acm:...   (no AWS credentials needed)
 *   deno task deploy -c environment=prod -c certificateArn=arn:aws:acm:...  (CDK CLI, Docker, credentials)
 *
 * Run by the CDK CLI, context arrives in CDK_CONTEXT_JSON; run directly, `-c key=value` arguments are read
 * here. The output directory is CDK_OUTDIR (set by the CLI, or by the synth task).
 */
import { App } from "aws-cdk-lib";
import { contextFromArgs, settingsFromContext } from "./context.ts";
import { ProxyStack } from "./proxy_stack.ts";

let app: App;
let settings: ReturnType<typeof settingsFromContext>;
try {
  const args = contextFromArgs(Deno.args);
  app = new App({ context: args });
  // Keys set by the user (-c here, or through the CDK CLI). The CLI's own, lookups and feature flags have a ':',
  // '/' or '@'; `cdk acknowledge` keeps its list in the context too.
  const given = [...Object.keys(args), ...Object.keys(JSON.parse(Deno.env.get("CDK_CONTEXT_JSON") ?? "{}"))]
    .filter((k) => !/[:/@]/.test(k) && k !== "acknowledged-issue-numbers");
  settings = settingsFromContext((key) => app.node.tryGetContext(key), given);
} catch (e) {
  // What was wrong and what was expected, without a stack trace.
  console.error((e as Error).message);
  Deno.exit(1);
}
new ProxyStack(app, settings.stackName, settings.props);
const assembly = app.synth();

// The CDK CLI prints warnings itself; run directly (`deno task synth`), say what happened here.
if (Deno.env.get("CDK_CLI_VERSION") === undefined) {
  for (const stack of assembly.stacks) {
    for (const m of stack.messages) {
      if (m.level !== "info") console.error(`${m.level.toUpperCase()} ${m.id}: ${m.entry.data}`);
    }
    console.error(`${stack.stackName}: ${assembly.directory}/${stack.templateFile}`);
  }
}
