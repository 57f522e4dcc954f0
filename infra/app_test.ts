/** The CDK app's command line: context parsing, and a real synth with no AWS credentials. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { contextFromArgs, type ContextKey, DEFAULT_REGION, settingsFromContext } from "./context.ts";

const from = (ctx: Record<string, unknown>) => settingsFromContext((key: ContextKey) => ctx[key]);

Deno.test("with no context the app targets a dev stack in ap-northeast-2", () => {
  const { stackName, props } = from({});
  assert.equal(stackName, "ClaudeCodeProxy-dev");
  assert.equal(props.environment, "dev");
  assert.equal(props.env?.region, DEFAULT_REGION);
  assert.equal(props.env?.account, undefined, "account-agnostic: synth needs no credentials");
  assert.equal(props.desiredCount, undefined);
  assert.deepEqual(props.adminAllowedCidrs, []);
  assert.equal(props.terminationProtection, false);
});

Deno.test("context strings from the command line become typed stack props", () => {
  const { stackName, props } = from({
    environment: "prod",
    region: "us-west-2",
    desiredCount: "3",
    cpu: "2048",
    memoryMiB: "4096",
    dbInstanceClass: "db.r7g.large",
    certificateArn: "arn:aws:acm:us-west-2:123456789012:certificate/abc",
    adminAllowedCidrs: " 203.0.113.0/24, 198.51.100.7/32 ,",
    alarmEmail: "ops@example.com",
    bedrockUseDefaultCredentials: "true",
    logLevel: "DEBUG",
    timezone: "Asia/Seoul",
    bedrockRegion: "us-east-1",
  });
  assert.equal(stackName, "ClaudeCodeProxy-prod");
  assert.deepEqual([props.logLevel, props.timezone, props.bedrockRegion], [
    "debug",
    "Asia/Seoul",
    "us-east-1",
  ]);
  assert.equal(props.env?.region, "us-west-2");
  assert.equal(props.desiredCount, 3);
  assert.equal(props.cpu, 2048);
  assert.equal(props.memoryMiB, 4096);
  assert.equal(props.dbInstanceClass, "r7g.large");
  assert.deepEqual(props.adminAllowedCidrs, ["203.0.113.0/24", "198.51.100.7/32"]);
  assert.equal(props.bedrockUseDefaultCredentials, true);
  assert.equal(props.terminationProtection, true);
});

Deno.test("every invalid context value is reported in one error", () => {
  assert.throws(
    () =>
      from({
        environment: "staging",
        desiredCount: "1",
        cpu: "lots",
        adminAllowedCidrs: "10.0.0.0,10.0.0.0/8",
        certificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/abc",
        alarmEmail: "nobody",
        logLevel: "warn",
        timezone: "Mars/Base",
        bedrockRegion: "Seoul",
      }),
    (e: Error) => {
      for (
        const part of [
          /environment must be "dev" or "prod"/,
          /desiredCount must be at least 2/,
          /cpu must be a positive integer/,
          /not a CIDR: "10\.0\.0\.0"/,
          /same-region certificate/,
          /alarmEmail is not an e-mail address/,
          /logLevel must be info or debug/,
          /timezone must be an IANA time zone/,
          /bedrockRegion must be an AWS region/,
        ]
      ) assert.match(e.message, part);
      assert.doesNotMatch(e.message, /10\.0\.0\.0\/8/);
      return true;
    },
  );
});

Deno.test("-c key=value arguments are read as context", () => {
  assert.deepEqual(contextFromArgs(["-c", "environment=prod", "--context", "a=b=c", "--context=x=1"]), {
    environment: "prod",
    a: "b=c",
    x: "1",
  });
  assert.deepEqual(contextFromArgs([]), {});
  assert.throws(() => contextFromArgs(["environment=prod"]), /use -c key=value/);
  assert.throws(() => contextFromArgs(["-c"]), /expected key=value/);
});

Deno.test("the synth command writes a CloudFormation template with no AWS credentials", async () => {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const outdir = await Deno.makeTempDir({ prefix: "proxy-synth-test-" });
  try {
    const env: Record<string, string> = { CDK_OUTDIR: outdir, PATH: Deno.env.get("PATH") ?? "" };
    for (const name of ["HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
      const value = Deno.env.get(name);
      if (value !== undefined) env[name] = value;
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "infra/app.ts",
        "-c",
        "environment=prod",
        "-c",
        "adminAllowedCidrs=203.0.113.0/24",
        "-c",
        "certificateArn=arn:aws:acm:ap-northeast-2:123456789012:certificate/abc",
      ],
      cwd: root,
      env,
      clearEnv: true, // no AWS_* variables, no credentials
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const template = JSON.parse(await Deno.readTextFile(`${outdir}/ClaudeCodeProxy-prod.template.json`));
    assert.ok(Object.keys(template.Resources).length > 50);
    const manifest = JSON.parse(await Deno.readTextFile(`${outdir}/manifest.json`));
    assert.equal(
      manifest.artifacts["ClaudeCodeProxy-prod"].environment,
      "aws://unknown-account/ap-northeast-2",
    );
  } finally {
    await Deno.remove(outdir, { recursive: true });
  }
});

Deno.test("clientSocketWatch is a true/false switch, off unless given", () => {
  assert.equal(from({}).props.clientSocketWatch, undefined);
  assert.equal(from({ clientSocketWatch: "true" }).props.clientSocketWatch, true);
  assert.equal(from({ clientSocketWatch: "false" }).props.clientSocketWatch, false);
  assert.throws(() => from({ clientSocketWatch: "on" }), /clientSocketWatch must be true or false, got "on"/);
});

Deno.test("prod without a certificate is refused unless plain HTTP is asked for explicitly", () => {
  assert.throws(() => from({ environment: "prod" }), /environment=prod needs certificateArn/);
  assert.equal(from({ environment: "prod", allowPlainHttp: "true" }).props.environment, "prod");
  assert.equal(from({}).props.environment, "dev", "dev may run without one");
  assert.throws(
    () => from({ environment: "prod", allowPlainHttp: "yes" }),
    /allowPlainHttp must be true or false/,
  );
});

Deno.test("Fargate sizes, the region and misspelt keys are checked; the error has no stack trace", async () => {
  assert.throws(() => from({ cpu: "300" }), /cpu must be a Fargate size \(256, 512, .*\), got 300/);
  assert.throws(
    () => from({ cpu: "256", memoryMiB: "4096" }),
    /memoryMiB 4096 is not a Fargate size for cpu 256/,
  );
  assert.throws(
    () => from({ environment: "prod", memoryMiB: "1024", allowPlainHttp: "true" }),
    /for cpu 1024/,
  );
  assert.equal(from({ cpu: "2048", memoryMiB: "8192" }).props.cpu, 2048);
  assert.throws(
    () => from({ region: "mars" }),
    /region must be an AWS region such as ap-northeast-2, got "mars"/,
  );
  assert.throws(
    () => settingsFromContext(() => undefined, ["enviroment"]),
    /unknown context key "enviroment"; did you mean environment\?/,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./app.ts", import.meta.url).pathname, "-c", "enviroment=prod"],
    env: { CDK_OUTDIR: await Deno.makeTempDir({ prefix: "cdk-ctx-" }), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1);
  assert.match(
    text,
    /^Invalid CDK context:\n {2}- unknown context key "enviroment"; did you mean environment\?/,
  );
  assert.doesNotMatch(text, /^\s+at /m, "no stack trace");
});
