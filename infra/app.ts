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

const app = new App({ context: contextFromArgs(Deno.args) });
const { stackName, props } = settingsFromContext((key) => app.node.tryGetContext(key));
new ProxyStack(app, stackName, props);
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
