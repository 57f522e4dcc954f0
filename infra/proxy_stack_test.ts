/**
 * What the CloudFormation the stack synthesises promises. Each variant is synthesised once and shared.
 */
import { FLUSH_FAILED_MESSAGE } from "../lib/usage/recorder.ts";
import assert from "node:assert/strict";
import { App } from "aws-cdk-lib";
import { Annotations, Match, Template } from "aws-cdk-lib/assertions";
import { loadConfig } from "../lib/config.ts";
import { verifyPassword } from "../lib/auth/password.ts";
import {
  ADMIN_PATH_PATTERNS,
  APP_COMMAND,
  APP_COMMAND_ALL_PERMISSIONS,
  DATA_DIR,
  DEREGISTRATION_DELAY_SECONDS,
  IDLE_TIMEOUT_SECONDS,
  PLACEHOLDER_ADMIN_PASSWORD_HASH,
  ProxyStack,
  type ProxyStackProps,
  SHUTDOWN_DRAIN_SECONDS,
  UPSTREAM_RESPONSE_TIMEOUT_MS,
} from "./proxy_stack.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const CERT = "arn:aws:acm:ap-northeast-2:123456789012:certificate/00000000-0000-0000-0000-000000000000";
const CIDRS = ["203.0.113.0/24", "198.51.100.7/32", "192.0.2.0/28", "2001:db8::/48"];

const outRoot = Deno.makeTempDirSync({ prefix: "proxy-stack-test-" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(outRoot, { recursive: true });
  } catch { /* already gone */ }
});

interface Synthesized {
  stack: ProxyStack;
  template: Template;
  json: Json;
  outdir: string;
  ms: number;
}

function synth(id: string, props: ProxyStackProps): Synthesized {
  const started = performance.now();
  const outdir = `${outRoot}/${id}`;
  const app = new App({ outdir });
  const stack = new ProxyStack(app, id, { env: { region: "ap-northeast-2" }, ...props });
  const template = Template.fromStack(stack);
  return { stack, template, json: template.toJSON(), outdir, ms: performance.now() - started };
}

const lazy = <T>(make: () => T): () => T => {
  let value: T | undefined;
  return () => (value ??= make());
};

/** dev defaults: no certificate, no allow-list, no alarm e-mail. */
const dev = lazy(() => synth("ProxyDev", { environment: "dev" }));
/** prod with everything switched on. */
const prod = lazy(() =>
  synth("ProxyProd", {
    environment: "prod",
    certificateArn: CERT,
    domainName: "proxy.example.com",
    adminAllowedCidrs: CIDRS,
    alarmEmail: "ops@example.com",
    desiredCount: 3,
    bedrockUseDefaultCredentials: true,
  })
);

function resources(s: Synthesized, type: string): Array<[string, Json]> {
  return Object.entries(s.json.Resources as Record<string, Json>).filter(([, r]) => r.Type === type);
}

function only(s: Synthesized, type: string): [string, Json] {
  const found = resources(s, type);
  assert.equal(found.length, 1, `expected exactly one ${type}, found ${found.length}`);
  return found[0];
}

/** The task's container named `name`: the app ("proxy"), or the one that migrates before it ("migrate"). */
function container(s: Synthesized, name = "proxy"): Json {
  const [, task] = only(s, "AWS::ECS::TaskDefinition");
  const defs = task.Properties.ContainerDefinitions as Json[];
  assert.deepEqual(defs.map((d) => d.Name).sort(), ["migrate", "proxy"]);
  return defs.find((d) => d.Name === name)!;
}

function envOf(s: Synthesized): Record<string, Json> {
  return Object.fromEntries(container(s).Environment.map((e: Json) => [e.Name, e.Value]));
}

function refId(value: Json): string {
  if (value?.Ref) return value.Ref;
  if (value?.["Fn::GetAtt"]) return value["Fn::GetAtt"][0];
  throw new Error(`not a Ref/GetAtt: ${JSON.stringify(value)}`);
}

function listeners(s: Synthesized): Json[] {
  return resources(s, "AWS::ElasticLoadBalancingV2::Listener").map(([, r]) => r.Properties);
}

function subnetTypeOf(s: Synthesized, subnetRef: Json): string {
  const subnet = s.json.Resources[refId(subnetRef)];
  const tag = subnet.Properties.Tags.find((t: Json) => t.Key === "aws-cdk:subnet-type");
  return tag.Value;
}

Deno.test("the database is not publicly accessible, is encrypted and sits in isolated subnets", () => {
  for (const s of [dev(), prod()]) {
    const [, db] = only(s, "AWS::RDS::DBInstance");
    assert.equal(db.Properties.PubliclyAccessible, false);
    assert.equal(db.Properties.StorageEncrypted, true);
    assert.equal(db.Properties.Engine, "postgres");
    assert.ok(Number(db.Properties.EngineVersion.split(".")[0]) >= 15, "PostgreSQL 15 or newer");
    assert.ok(db.Properties.BackupRetentionPeriod >= 1, "automated backups on");
    const [, subnetGroup] = only(s, "AWS::RDS::DBSubnetGroup");
    for (const subnet of subnetGroup.Properties.SubnetIds) assert.equal(subnetTypeOf(s, subnet), "Isolated");
  }
});

Deno.test("the database port is open to the proxy tasks' security group only", () => {
  const s = dev();
  const [, db] = only(s, "AWS::RDS::DBInstance");
  const dbGroup = refId(db.Properties.VPCSecurityGroups[0]);
  const [, service] = only(s, "AWS::ECS::Service");
  const serviceGroup = refId(service.Properties.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups[0]);
  const ingress = [
    ...resources(s, "AWS::EC2::SecurityGroupIngress").map(([, r]) => r.Properties)
      .filter((p) => refId(p.GroupId) === dbGroup),
    ...(s.json.Resources[dbGroup].Properties.SecurityGroupIngress ?? []),
  ];
  assert.equal(ingress.length, 1);
  assert.equal(refId(ingress[0].SourceSecurityGroupId), serviceGroup);
  assert.equal(ingress[0].CidrIp, undefined);
});

Deno.test("the README's list of stack outputs names every output the stack has", () => {
  const readme = Deno.readTextFileSync(new URL("../README.md", import.meta.url));
  const listed = /^Stack outputs: ([\s\S]*?)\n\n/m.exec(readme)?.[1];
  assert.ok(listed, "README.md has a paragraph starting `Stack outputs:`");
  // prod has every switch on, AlarmTopicArn's included.
  for (const name of Object.keys(prod().json.Outputs)) {
    assert.ok(listed.includes(`\`${name}\``), `README.md's stack outputs lack ${name}`);
  }
});

Deno.test("a metrics scraper has what it needs: the token secret and the tasks' security group as outputs", () => {
  const s = dev();
  const outputs = s.json.Outputs as Record<string, { Value: unknown }>;
  const [, service] = only(s, "AWS::ECS::Service");
  const serviceGroup = refId(service.Properties.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups[0]);
  assert.equal(refId(outputs.ServiceSecurityGroupId.Value), serviceGroup);
  const metricsSecret = resources(s, "AWS::SecretsManager::Secret")
    .find(([, r]) => /PROXY_METRICS_TOKEN/.test(String(r.Properties.Description)))!;
  assert.equal(refId(outputs.MetricsTokenSecretArn.Value), metricsSecret[0]);
});

Deno.test("tasks run in private subnets without public IPs; only the load balancer is internet-facing", () => {
  const s = dev();
  const [, service] = only(s, "AWS::ECS::Service");
  const net = service.Properties.NetworkConfiguration.AwsvpcConfiguration;
  assert.equal(net.AssignPublicIp, "DISABLED");
  for (const subnet of net.Subnets) assert.equal(subnetTypeOf(s, subnet), "Private");
  const [, alb] = only(s, "AWS::ElasticLoadBalancingV2::LoadBalancer");
  assert.equal(alb.Properties.Scheme, "internet-facing");
  for (const subnet of alb.Properties.Subnets) assert.equal(subnetTypeOf(s, subnet), "Public");
  assert.equal(new Set(net.Subnets.map(refId)).size, 2, "two AZs");
});

Deno.test("tasks may go out on HTTPS and to the database's port only", () => {
  const s = prod();
  const serviceGroup = refId(s.json.Outputs.ServiceSecurityGroupId.Value);
  const inline: Json[] = s.json.Resources[serviceGroup].Properties.SecurityGroupEgress ?? [];
  const separate = resources(s, "AWS::EC2::SecurityGroupEgress")
    .filter(([, r]) => refId(r.Properties.GroupId) === serviceGroup)
    .map(([, r]) => r.Properties);
  const rules = [...inline, ...separate];
  assert.ok(rules.length >= 2, JSON.stringify(rules));
  for (const rule of rules) {
    assert.equal(rule.IpProtocol, "tcp", JSON.stringify(rule));
    if (rule.CidrIp === "0.0.0.0/0") assert.deepEqual([rule.FromPort, rule.ToPort], [443, 443]);
    else assert.ok(rule.DestinationSecurityGroupId, `only the database otherwise: ${JSON.stringify(rule)}`);
  }
  assert.ok(rules.some((r) => r.CidrIp === "0.0.0.0/0"), "HTTPS out");
  assert.ok(rules.some((r) => r.DestinationSecurityGroupId), "PostgreSQL to the database");
});

Deno.test("with a certificate the listener is HTTPS on 443 and port 80 redirects to it", () => {
  const s = prod();
  const all = listeners(s);
  assert.equal(all.length, 2);
  const https = all.find((l) => l.Port === 443);
  assert.ok(https);
  assert.equal(https.Protocol, "HTTPS");
  assert.deepEqual(https.Certificates, [{ CertificateArn: CERT }]);
  assert.equal(
    https.SslPolicy,
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "no TLS 1.2 suite without forward secrecy",
  );
  const http = all.find((l) => l.Port === 80);
  assert.ok(http);
  assert.equal(http.DefaultActions[0].Type, "redirect");
  assert.equal(http.DefaultActions[0].RedirectConfig.Protocol, "HTTPS");
  assert.equal(http.DefaultActions[0].RedirectConfig.Port, "443");
  assert.equal(
    Annotations.fromStack(s.stack).findWarning("*", Match.stringLikeRegexp("certificateArn")).length,
    0,
  );
});

Deno.test("with a certificate, a proxy request on port 80 is refused, not redirected: its keys went in clear", () => {
  const s = prod();
  const refusals = listenerRules(s).filter((r) => pathsOf(r).includes("/ak/*"));
  assert.equal(refusals.length, 1);
  const http = resources(s, "AWS::ElasticLoadBalancingV2::Listener").find(([, l]) =>
    l.Properties.Port === 80
  )!;
  assert.equal(refusals[0].ListenerArn.Ref, http[0]);
  const action = refusals[0].Actions[0];
  assert.equal(action.Type, "fixed-response");
  assert.equal(action.FixedResponseConfig.StatusCode, "400");
  const body = JSON.parse(action.FixedResponseConfig.MessageBody);
  assert.equal(body.error.type, "invalid_request_error");
  assert.match(body.error.message, /HTTPS only.*unencrypted; rotate both/);
  assert.ok(action.FixedResponseConfig.MessageBody.length <= 1024, "ALB's limit");
  assert.equal(listenerRules(dev()).filter((r) => pathsOf(r).includes("/ak/*")).length, 0, "no TLS, no rule");
});

Deno.test("with a certificate, the admin API and console posts on port 80 are refused too; console pages redirect", () => {
  const s = prod();
  const http = resources(s, "AWS::ElasticLoadBalancingV2::Listener").find(([, l]) =>
    l.Properties.Port === 80
  )!;
  const onPlain = listenerRules(s).filter((r) => r.ListenerArn.Ref === http[0]);
  const api = onPlain.find((r) => pathsOf(r).includes("/api/*"))!;
  assert.equal(api.Actions[0].FixedResponseConfig.StatusCode, "400");
  assert.equal(api.Conditions.length, 1, "every method: a GET carries its bearer token too");
  const posts = onPlain.find((r) => pathsOf(r).includes("/admin/*"))!;
  assert.equal(posts.Actions[0].FixedResponseConfig.StatusCode, "400");
  const methods = posts.Conditions.find((c: Json) => c.Field === "http-request-method");
  assert.deepEqual(methods.HttpRequestMethodConfig.Values, ["POST", "PUT", "PATCH", "DELETE"]);
  for (const rule of [api, posts]) {
    assert.match(JSON.parse(rule.Actions[0].FixedResponseConfig.MessageBody).error.message, /HTTPS only/);
  }
});

Deno.test("a prod stack without an alarm e-mail warns that its alarms notify no one", () => {
  const quiet = synth("ProxyProdQuiet", { environment: "prod", certificateArn: CERT });
  Annotations.fromStack(quiet.stack).hasWarning("*", Match.stringLikeRegexp("No alarmEmail given"));
  assert.equal(
    Annotations.fromStack(prod().stack).findWarning("*", Match.stringLikeRegexp("alarmEmail")).length,
    0,
  );
  assert.equal(
    Annotations.fromStack(dev().stack).findWarning("*", Match.stringLikeRegexp("alarmEmail")).length,
    0,
    "dev alarms are optional",
  );
});

Deno.test("without a certificate the listener is plain HTTP on 80 and synth warns", () => {
  const s = dev();
  const all = listeners(s);
  assert.equal(all.length, 1);
  assert.equal(all[0].Port, 80);
  assert.equal(all[0].Protocol, "HTTP");
  assert.equal(all[0].DefaultActions[0].Type, "forward");
  Annotations.fromStack(s.stack).hasWarning(
    "*",
    Match.stringLikeRegexp("No certificateArn given.*plain HTTP"),
  );
});

Deno.test("the load balancer outwaits the longest silence before the first byte, and health-checks /health", () => {
  for (const s of [dev(), prod()]) {
    const [, alb] = only(s, "AWS::ElasticLoadBalancingV2::LoadBalancer");
    const idle = alb.Properties.LoadBalancerAttributes.find((a: Json) =>
      a.Key === "idle_timeout.timeout_seconds"
    );
    assert.equal(Number(idle.Value), IDLE_TIMEOUT_SECONDS); // checked against the app's timeouts below
    assert.ok(IDLE_TIMEOUT_SECONDS <= 4000, "ALB's maximum");
    const [, tg] = only(s, "AWS::ElasticLoadBalancingV2::TargetGroup");
    assert.equal(tg.Properties.HealthCheckPath, "/health");
    assert.equal(tg.Properties.Port, 8000);
    assert.equal(tg.Properties.TargetType, "ip");
  }
});

Deno.test("shutdown: the ALB drains streams first, then the stop timeout leaves room for the app's drain", () => {
  const s = dev();
  const [, tg] = only(s, "AWS::ElasticLoadBalancingV2::TargetGroup");
  const delay = tg.Properties.TargetGroupAttributes.find((a: Json) =>
    a.Key === "deregistration_delay.timeout_seconds"
  );
  assert.equal(Number(delay.Value), DEREGISTRATION_DELAY_SECONDS);
  // Long enough for a long Claude Code answer (32k tokens, about 10 minutes); ALB's maximum is 3600.
  assert.ok(DEREGISTRATION_DELAY_SECONDS >= 600 && DEREGISTRATION_DELAY_SECONDS <= 3600);
  const c = container(s);
  const drain = Number(envOf(s).PROXY_SHUTDOWN_DRAIN_SECONDS);
  assert.equal(drain, SHUTDOWN_DRAIN_SECONDS);
  // After the drain: 2 s ending streams, 5 s writing usage, 3 s logging what could not be written, and slack.
  assert.ok(
    c.StopTimeout >= drain + 2 + 5 + 3 + 3,
    `stopTimeout ${c.StopTimeout} leaves too little after ${drain}`,
  );
  assert.ok(c.StopTimeout <= 120, "Fargate allows at most 120 s");
});

Deno.test("the task role's policies allow the envelope key, and Bedrock invoke and counting only when opted in", () => {
  for (const s of [dev(), prod()]) {
    const optedIn = s === prod();
    const [, task] = only(s, "AWS::ECS::TaskDefinition");
    const taskRoleId = refId(task.Properties.TaskRoleArn);
    const role = s.json.Resources[taskRoleId];
    assert.equal(role.Properties.ManagedPolicyArns, undefined, "no managed policies");
    assert.equal(role.Properties.Policies, undefined, "no inline policies");
    const statements: Json[] = [];
    for (const type of ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"]) {
      for (const [, policy] of resources(s, type)) {
        const roles = (policy.Properties.Roles ?? []).map(refId);
        if (roles.includes(taskRoleId)) statements.push(...policy.Properties.PolicyDocument.Statement);
      }
    }
    const actions = new Set(statements.flatMap((st) => [st.Action].flat()));
    assert.deepEqual(
      actions,
      new Set([
        ...(optedIn
          ? ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream", "bedrock:CountTokens"]
          : []),
        "kms:GenerateDataKey",
        "kms:Decrypt",
      ]),
    );
    for (const st of statements) {
      assert.equal(st.Effect, "Allow");
      assert.notEqual(st.Resource, "*");
      const isKms = [st.Action].flat().every((a: string) => a.startsWith("kms:"));
      if (isKms) {
        const [keyId] = only(s, "AWS::KMS::Key");
        assert.deepEqual(st.Resource, { "Fn::GetAtt": [keyId, "Arn"] }, "the envelope key only");
        assert.deepEqual(st.Condition, {
          "ForAllValues:StringEquals": { "kms:EncryptionContextKeys": ["access_key_id"] },
          Null: { "kms:EncryptionContextKeys": "false" },
        }, "only with the context the app binds each data key to");
      } else {
        const text = JSON.stringify(st.Resource);
        assert.ok(text.includes(":bedrock:*::foundation-model/anthropic.*"), `Claude models only: ${text}`);
        assert.ok(!text.includes("foundation-model/*"), "not every model on Bedrock");
        assert.ok(
          text.includes('"Ref":"AWS::Partition"') && !text.includes("arn:aws:"),
          "the stack's partition",
        );
        // Invocation goes through inference profiles too (Claude's, and admins' application profiles, named as
        // they like); CountTokens takes foundation models only.
        const counts = [st.Action].flat().every((a: string) => a === "bedrock:CountTokens");
        assert.equal(text.includes(":inference-profile/*anthropic.*"), !counts);
        assert.equal(text.includes(":application-inference-profile/*"), !counts);
      }
    }
  }
});

Deno.test("secrets reach the container as ECS Secrets, never as plain environment values", () => {
  for (const s of [dev(), prod()]) {
    const c = container(s);
    const plain = c.Environment.map((e: Json) => e.Name as string);
    const leaked = plain.filter((name: string) => /SECRET|PASSWORD|HASH/.test(name));
    assert.deepEqual(leaked, []);
    for (const e of c.Environment) {
      assert.doesNotMatch(JSON.stringify(e.Value), /resolve:secretsmanager/, `${e.Name} resolves a secret`);
    }
    const secretNames = c.Secrets.map((x: Json) => x.Name).sort();
    assert.deepEqual(secretNames, [
      "PROXY_ADMIN_PASSWORD_HASH",
      "PROXY_ADMIN_USERNAME",
      "PROXY_DB_HOST",
      "PROXY_DB_PASSWORD",
      "PROXY_DB_PORT",
      "PROXY_DB_USER",
      "PROXY_JWT_SECRET",
      "PROXY_KEY_HASHER_SECRET",
      "PROXY_METRICS_TOKEN",
    ]);
    assert.equal(
      envOf(s).PROXY_DB_SSLMODE,
      "verify-full",
      "the database's certificate and host name checked",
    );
    assert.equal(
      envOf(s).PROXY_DB_SSLROOTCERT,
      "rds",
      "against Amazon RDS's CAs, which no public bundle holds",
    );
    assert.equal(envOf(s).PROXY_ENV, "production");
    assert.equal(envOf(s).PROXY_DATABASE_URL, undefined, "the URL is built from the parts");
  }
});

Deno.test("the app connects as its own row-only role; only the migrate container, run first, holds the owner's", () => {
  for (const s of [dev(), prod()]) {
    const app = container(s);
    const migrate = container(s, "migrate");
    const valueOf = (c: Json, name: string) => c.Secrets.find((x: Json) => x.Name === name)?.ValueFrom;
    const secretOf = (c: Json, name: string) => s.json.Resources[refId(valueOf(c, name)["Fn::Join"][1][0])];
    // The owner's credentials live in the RDS secret (reached through its attachment); the app's in its own.
    const owner = secretOf(migrate, "PROXY_DB_PASSWORD");
    const appRole = secretOf(app, "PROXY_DB_PASSWORD");
    assert.equal(owner.Type, "AWS::SecretsManager::SecretTargetAttachment");
    assert.equal(appRole.Type, "AWS::SecretsManager::Secret");
    assert.equal(
      JSON.parse(appRole.Properties.GenerateSecretString.SecretStringTemplate).username,
      "proxy_app",
    );
    assert.deepEqual(valueOf(app, "PROXY_DB_USER"), valueOf(migrate, "PROXY_DB_APP_USER"));
    assert.deepEqual(valueOf(app, "PROXY_DB_PASSWORD"), valueOf(migrate, "PROXY_DB_APP_PASSWORD"));
    assert.equal(valueOf(app, "PROXY_DB_APP_PASSWORD"), undefined, "the app never gets migrate's settings");

    assert.equal(migrate.Essential, false, "it exits when done");
    assert.deepEqual(migrate.Command.slice(-2), ["main.ts", "migrate"]);
    assert.deepEqual(
      migrate.Secrets.map((x: Json) => x.Name).sort(),
      [
        "PROXY_DB_APP_PASSWORD",
        "PROXY_DB_APP_USER",
        "PROXY_DB_HOST",
        "PROXY_DB_PASSWORD",
        "PROXY_DB_PORT",
        "PROXY_DB_USER",
      ],
      "the database's secrets only: not the JWT, key-hasher, metrics or admin ones",
    );
    assert.deepEqual(app.DependsOn, [{ ContainerName: "migrate", Condition: "SUCCESS" }]);
    assert.equal(migrate.ReadonlyRootFilesystem, true);
    assert.deepEqual(migrate.Environment, app.Environment, "the same configuration, checked the same way");
  }
});

/** A value shaped like what Secrets Manager will hold for `valueFrom`. */
function fabricateSecret(s: Synthesized, valueFrom: Json): string {
  let secretRef: Json = valueFrom;
  let field: string | undefined;
  if (valueFrom["Fn::Join"]) {
    const [ref, suffix] = valueFrom["Fn::Join"][1];
    secretRef = ref;
    field = /^:([^:]+)::$/.exec(suffix)?.[1];
    assert.ok(field, `unexpected valueFrom suffix ${suffix}`);
  }
  let resource = s.json.Resources[refId(secretRef)];
  if (resource.Type === "AWS::SecretsManager::SecretTargetAttachment") {
    if (field === "host") return "proxy.abcdefghijkl.ap-northeast-2.rds.amazonaws.com";
    if (field === "port") return "5432";
    resource = s.json.Resources[refId(resource.Properties.SecretId)];
  }
  assert.equal(resource.Type, "AWS::SecretsManager::Secret");
  const p = resource.Properties;
  let value: Json;
  if (typeof p.SecretString === "string") {
    value = field ? JSON.parse(p.SecretString) : p.SecretString;
  } else {
    const g = p.GenerateSecretString;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const generated = Array.from({ length: g.PasswordLength ?? 32 }, (_, i) => alphabet[(i * 7) % 62]).join(
      "",
    );
    if (g.GenerateStringKey) {
      value = { ...JSON.parse(g.SecretStringTemplate), [g.GenerateStringKey]: generated };
    } else value = generated;
  }
  if (field === undefined) return value;
  assert.ok(field in value, `secret has no field ${field}`);
  return String(value[field]);
}

Deno.test("the task's environment and secrets pass the app's production configuration check", async () => {
  for (const [s, name] of [dev(), prod()].flatMap((s) => [[s, "proxy"], [s, "migrate"]] as const)) {
    const c = container(s, name);
    const env: Record<string, string> = {};
    for (const e of c.Environment) env[e.Name] = typeof e.Value === "string" ? e.Value : "arn:aws:kms:key";
    for (const x of c.Secrets) env[x.Name] = fabricateSecret(s, x.ValueFrom);
    const noIo = {
      readSecrets: () => Promise.reject(new Error("production never reads dev secrets")),
      writeSecrets: () => Promise.reject(new Error("production never writes dev secrets")),
      hashPassword: () => Promise.reject(new Error("production never hashes")),
    };
    // As main.ts loads it: migrate needs only the database.
    const config = await loadConfig(env, noIo, { databaseOnly: name === "migrate" });
    assert.equal(config.env, "production");
    // The app as its own role; migrate as the owner, setting that role up.
    const user = name === "proxy" ? "proxy_app" : "proxy";
    assert.match(
      config.databaseUrl,
      new RegExp(`^postgres://${user}:[^@]+@proxy\\.[^/]+:5432/proxy\\?sslmode=verify-full&sslrootcert=rds$`),
    );
    assert.equal(config.databaseAppRole?.user, name === "migrate" ? "proxy_app" : undefined);
    assert.equal(config.adminPasswordHash, name === "proxy" ? PLACEHOLDER_ADMIN_PASSWORD_HASH : "");
    assert.equal(config.shutdownDrainSeconds, SHUTDOWN_DRAIN_SECONDS);
    // The longest silence before the first byte: no non-streaming answer from the Anthropic API within its
    // response timeout, then Bedrock's taking as long (a stream: the first-byte timeout, then Bedrock's). The ALB
    // must not answer 504 to a fallback still coming.
    const silenceSeconds = Math.max(
      2 * config.upstreamResponseTimeoutMs,
      config.upstreamFirstByteTimeoutMs + config.upstreamResponseTimeoutMs,
    ) / 1000;
    assert.ok(
      IDLE_TIMEOUT_SECONDS > silenceSeconds,
      `idle ${IDLE_TIMEOUT_SECONDS} s, silence ${silenceSeconds} s`,
    );
    // The NAT gateway drops a connection silent for 350 s without a word: a non-streaming answer is given up
    // on before that, rather than awaited on a connection already gone.
    assert.equal(config.upstreamResponseTimeoutMs, UPSTREAM_RESPONSE_TIMEOUT_MS);
    assert.ok(config.upstreamResponseTimeoutMs < 350_000);
    assert.ok(config.upstreamFirstByteTimeoutMs < 350_000);
  }
});

Deno.test("until the operator sets it, the admin password hash matches no password", async () => {
  for (const guess of ["", "admin", "password", "placeholder-run-deno-task-hash-password"]) {
    assert.equal(await verifyPassword(guess, PLACEHOLDER_ADMIN_PASSWORD_HASH), false);
  }
});

Deno.test("generated application secrets are long random strings kept in Secrets Manager", () => {
  const s = dev();
  const env = container(s).Secrets;
  for (const name of ["PROXY_KEY_HASHER_SECRET", "PROXY_JWT_SECRET", "PROXY_METRICS_TOKEN"]) {
    const ref = env.find((x: Json) => x.Name === name).ValueFrom;
    const secret = s.json.Resources[refId(ref)];
    assert.equal(secret.Type, "AWS::SecretsManager::Secret");
    assert.ok(secret.Properties.GenerateSecretString.PasswordLength >= 32);
    assert.equal(secret.Properties.SecretString, undefined);
  }
  const [, db] = only(s, "AWS::RDS::DBInstance");
  assert.match(JSON.stringify(db.Properties.MasterUserPassword), /resolve:secretsmanager/);
});

Deno.test("one KMS key with automatic rotation is the key the app is given", () => {
  const s = dev();
  const [keyId, key] = only(s, "AWS::KMS::Key");
  assert.equal(key.Properties.EnableKeyRotation, true);
  assert.deepEqual(envOf(s).PROXY_KMS_KEY_ID, { "Fn::GetAtt": [keyId, "Arn"] });
});

Deno.test("the service runs at least two tasks and autoscales on CPU and requests per target from two", () => {
  for (const s of [dev(), prod()]) {
    const [, service] = only(s, "AWS::ECS::Service");
    // Absent, so a deployment never resets a scaled-out service to it; the autoscaling minimum is the floor.
    assert.equal(service.Properties.DesiredCount, undefined);
    assert.equal(service.Properties.LaunchType, "FARGATE");
    const [, target] = only(s, "AWS::ApplicationAutoScaling::ScalableTarget");
    assert.ok(target.Properties.MinCapacity >= 2);
    assert.ok(target.Properties.MaxCapacity >= target.Properties.MinCapacity);
    const metrics = resources(s, "AWS::ApplicationAutoScaling::ScalingPolicy").map(([, p]) =>
      p.Properties.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType
    ).sort();
    assert.deepEqual(metrics, ["ALBRequestCountPerTarget", "ECSServiceAverageCPUUtilization"]);
  }
  const [, prodTarget] = only(prod(), "AWS::ApplicationAutoScaling::ScalableTarget");
  assert.equal(prodTarget.Properties.MinCapacity, 3);
});

/** The target of the CPU scaling policy. */
function cpuTarget(s: Synthesized): number {
  const policy = resources(s, "AWS::ApplicationAutoScaling::ScalingPolicy").map(([, p]) =>
    p.Properties.TargetTrackingScalingPolicyConfiguration
  ).find((c) => c.PredefinedMetricSpecification.PredefinedMetricType === "ECSServiceAverageCPUUtilization");
  return policy.TargetValue;
}

Deno.test("a task over one vCPU gets a CPU target its one event loop can reach, and synth says why", () => {
  assert.equal(cpuTarget(dev()), 60);
  assert.equal(cpuTarget(prod()), 60);
  assert.equal(
    Annotations.fromStack(prod().stack).findWarning("*", Match.stringLikeRegexp("event loop")).length,
    0,
  );
  const big = synth("ProxyBig", { environment: "prod", certificateArn: CERT, cpu: 2048, memoryMiB: 4096 });
  assert.equal(cpuTarget(big), 30, "60 % of the one vCPU the process can use, out of two");
  Annotations.fromStack(big.stack).hasWarning(
    "*",
    Match.stringLikeRegexp("cpu 2048: the proxy runs one event loop"),
  );
});

Deno.test("the load balancer's health check gives a busy task a minute before replacing it", () => {
  const [, group] = only(dev(), "AWS::ElasticLoadBalancingV2::TargetGroup");
  const p = group.Properties;
  assert.equal(p.HealthCheckPath, "/health");
  assert.ok(p.HealthCheckTimeoutSeconds >= 10);
  assert.ok(p.HealthCheckIntervalSeconds * p.UnhealthyThresholdCount >= 60);
});

Deno.test("a failing deployment rolls back (circuit breaker) and never drops below the running tasks", () => {
  const [, service] = only(dev(), "AWS::ECS::Service");
  const deployment = service.Properties.DeploymentConfiguration;
  assert.deepEqual(deployment.DeploymentCircuitBreaker, { Enable: true, Rollback: true });
  assert.equal(deployment.MinimumHealthyPercent, 100);
});

Deno.test("prod keeps its data: deletion protection and Retain on the database, secrets and key", () => {
  const s = prod();
  const [, db] = only(s, "AWS::RDS::DBInstance");
  assert.equal(db.Properties.DeletionProtection, true);
  assert.equal(db.DeletionPolicy, "Retain");
  assert.equal(db.UpdateReplacePolicy, "Retain");
  assert.equal(db.Properties.MultiAZ, true);
  for (const type of ["AWS::SecretsManager::Secret", "AWS::KMS::Key", "AWS::Logs::LogGroup"]) {
    for (const [id, r] of resources(s, type)) assert.equal(r.DeletionPolicy, "Retain", `${type} ${id}`);
  }
});

Deno.test("dev can be torn down: no deletion protection, resources deleted with the stack", () => {
  const s = dev();
  const [, db] = only(s, "AWS::RDS::DBInstance");
  assert.equal(db.Properties.DeletionProtection, false);
  assert.equal(db.DeletionPolicy, "Delete");
  assert.equal(db.Properties.MultiAZ, false);
  for (const type of ["AWS::SecretsManager::Secret", "AWS::KMS::Key", "AWS::Logs::LogGroup"]) {
    for (const [id, r] of resources(s, type)) assert.equal(r.DeletionPolicy, "Delete", `${type} ${id}`);
  }
});

Deno.test("the admin allow-list lets listed CIDRs reach /admin and /api and answers 403 to everyone else", () => {
  const s = prod();
  const rules = adminRules(s);
  const [httpsId] = resources(s, "AWS::ElasticLoadBalancingV2::Listener")
    .find(([, l]) => l.Properties.Port === 443)!;
  const allowed: string[] = [];
  for (const rule of rules) {
    assert.equal(refId(rule.ListenerArn), httpsId, "rules sit on the HTTPS listener");
    const values = rule.Conditions.flatMap((c: Json) =>
      c.PathPatternConfig?.Values ?? c.SourceIpConfig?.Values ?? c.Values ?? []
    );
    assert.ok(values.length <= 5, "an ALB rule holds at most 5 condition values");
  }
  const deny = rules.at(-1);
  assert.equal(deny.Actions[0].Type, "fixed-response");
  assert.equal(deny.Actions[0].FixedResponseConfig.StatusCode, "403");
  assert.equal(deny.Conditions.length, 1, "the deny rule matches every source");
  for (const rule of rules.slice(0, -1)) {
    assert.equal(rule.Actions[0].Type, "forward");
    allowed.push(...rule.Conditions.find((c: Json) => c.Field === "source-ip").SourceIpConfig.Values);
  }
  assert.deepEqual(allowed.sort(), [...CIDRS].sort());
  assert.equal(adminRules(dev()).length, 0, "no list, no rules");
  // The same list reaches the app, which also sees percent-encoded paths the rules cannot match.
  assert.equal(envOf(s).PROXY_ADMIN_ALLOWED_CIDRS, CIDRS.join(","));
  assert.equal(envOf(dev()).PROXY_ADMIN_ALLOWED_CIDRS, undefined);
});

Deno.test("/metrics is not served through the load balancer, and the tasks require a token for it", () => {
  for (const s of [dev(), prod()]) {
    const rules = listenerRules(s).filter((r) => pathsOf(r).includes("/metrics"));
    assert.equal(rules.length, 1);
    assert.equal(rules[0].Actions[0].Type, "fixed-response");
    assert.equal(rules[0].Actions[0].FixedResponseConfig.StatusCode, "404");
    assert.ok(
      listenerRules(s).every((r) =>
        r === rules[0] || r.ListenerArn.Ref !== rules[0].ListenerArn.Ref || r.Priority > rules[0].Priority
      ),
      "no rule before it forwards /metrics",
    );
    assert.ok(container(s).Secrets.some((x: Json) => x.Name === "PROXY_METRICS_TOKEN"));
  }
});

function listenerRules(s: Synthesized): Json[] {
  return resources(s, "AWS::ElasticLoadBalancingV2::ListenerRule").map(([, r]) => r.Properties)
    .sort((a, b) => a.Priority - b.Priority);
}

function pathsOf(rule: Json): string[] {
  return rule.Conditions.find((c: Json) => c.Field === "path-pattern")?.PathPatternConfig.Values ?? [];
}

/** The allow-list's rules, in priority order. */
function adminRules(s: Synthesized): Json[] {
  return listenerRules(s).filter((r) => JSON.stringify(pathsOf(r)) === JSON.stringify(ADMIN_PATH_PATTERNS));
}

Deno.test("alarms watch 5xx rate, fallback rate, response time, database CPU and storage, usage flushes, task memory and health, and notify by e-mail; resources are tagged", () => {
  for (const s of [dev(), prod()]) {
    const filters = resources(s, "AWS::Logs::MetricFilter").map(([, f]) => f.Properties.FilterPattern);
    assert.ok(filters.includes('{ $.msg = "request" && $.is_fallback IS TRUE }'));
    assert.ok(filters.includes('{ $.msg = "request" }'));
    assert.ok(filters.includes(`{ $.msg = "${FLUSH_FAILED_MESSAGE}" }`), "the recorder's own message");
    const alarms = resources(s, "AWS::CloudWatch::Alarm").map(([, a]) => a.Properties);
    const watched = alarms.map((a) =>
      a.MetricName ??
        a.Metrics.filter((m: Json) => m.MetricStat).map((m: Json) => m.MetricStat.Metric.MetricName).sort()
          .join("+")
    );
    for (
      const expected of [
        "HTTPCode_ELB_5XX_Count+HTTPCode_Target_5XX_Count+RequestCount",
        "FallbackRequests+Requests",
        "TargetResponseTime",
        "CPUUtilization",
        "FreeStorageSpace",
        "UsageFlushFailures",
        "MemoryUtilization",
        "UnHealthyHostCount",
        "HealthyHostCount",
      ]
    ) assert.ok(watched.includes(expected), `an alarm on ${expected}; have ${watched.join(", ")}`);
    // Tasks that crash before registering leave no data at all: that is an alarm too.
    const noHealthy = alarms.find((a) => a.MetricName === "HealthyHostCount")!;
    assert.equal(noHealthy.TreatMissingData, "breaching");
  }
  for (const [, r] of resources(prod(), "AWS::ECS::Service")) {
    assert.deepEqual(
      r.Properties.Tags.filter((t: Json) => ["application", "environment"].includes(t.Key)),
      [{ Key: "application", Value: "claude-code-proxy" }, { Key: "environment", Value: "prod" }],
    );
  }
  assert.equal(resources(dev(), "AWS::SNS::Topic").length, 0);
  const [topicId] = only(prod(), "AWS::SNS::Topic");
  const [, sub] = only(prod(), "AWS::SNS::Subscription");
  assert.equal(sub.Properties.Protocol, "email");
  assert.equal(sub.Properties.Endpoint, "ops@example.com");
  for (const [, a] of resources(prod(), "AWS::CloudWatch::Alarm")) {
    assert.deepEqual(a.Properties.AlarmActions, [{ Ref: topicId }]);
  }
});

Deno.test("the root filesystem is read-only; the data dir is a task volume the app writes its spool to", () => {
  for (const s of [dev(), prod()]) {
    const c = container(s);
    assert.equal(c.ReadonlyRootFilesystem, true);
    assert.deepEqual(c.MountPoints, [{ ContainerPath: DATA_DIR, SourceVolume: "data", ReadOnly: false }]);
    const [, task] = only(s, "AWS::ECS::TaskDefinition");
    assert.deepEqual(task.Properties.Volumes, [{ Name: "data" }]);
  }
});

Deno.test("container logs go to CloudWatch with a retention, without blocking the app", () => {
  const s = dev();
  const [logGroupId, logGroup] = only(s, "AWS::Logs::LogGroup");
  assert.ok(logGroup.Properties.RetentionInDays > 0);
  const logConfig = container(s).LogConfiguration;
  assert.equal(logConfig.LogDriver, "awslogs");
  assert.deepEqual(logConfig.Options["awslogs-group"], { Ref: logGroupId });
  assert.equal(logConfig.Options.mode, "non-blocking");
  // Room for the unrecorded usage lines logged at exit, which the driver would otherwise drop.
  assert.equal(logConfig.Options["max-buffer-size"], "33554432b");
});

Deno.test("the image is staged from the repository root without node_modules, .git, .data or cdk.out", () => {
  const s = dev();
  const assets = [...Deno.readDirSync(s.outdir)].filter((e) => e.isDirectory && e.name.startsWith("asset."));
  assert.equal(assets.length, 1);
  const dir = `${s.outdir}/${assets[0].name}`;
  const top = new Set([...Deno.readDirSync(dir)].map((e) => e.name));
  assert.ok(top.has("Dockerfile"));
  assert.ok(top.has("deno.json") && top.has("deno.lock"));
  for (const excluded of ["node_modules", ".git", ".data", "cdk.out", "tests", "infra"]) {
    assert.equal(top.has(excluded), false, `${excluded} must not be in the image context`);
  }
  assert.ok(s.ms < 20_000, `synth took ${Math.round(s.ms)} ms`);
});

Deno.test("invalid props are refused before anything is synthesised", () => {
  const app = new App({ outdir: `${outRoot}/invalid` });
  assert.throws(() => new ProxyStack(app, "One", { environment: "dev", desiredCount: 1 }), /at least 2/);
  assert.throws(
    () => new ProxyStack(app, "Cidr", { environment: "dev", adminAllowedCidrs: ["10.0.0.0"] }),
    /not a CIDR: 10\.0\.0\.0/,
  );
  assert.throws(
    () => new ProxyStack(app, "Env", { environment: "staging" as "dev" }),
    /environment must be "dev" or "prod"/,
  );
});

Deno.test("the app keeps the image's narrow permissions unless clientSocketWatch asks for every one", () => {
  for (const s of [dev(), prod()]) {
    assert.equal(container(s).Command, undefined, "the image's command: narrow permissions");
  }
  const watching = synth("ProxyWatching", { environment: "dev", clientSocketWatch: true });
  assert.deepEqual(container(watching).Command, [...APP_COMMAND_ALL_PERMISSIONS]);
  assert.deepEqual(
    container(watching, "migrate").Command,
    [...APP_COMMAND, "migrate"],
    "migrate needs no more",
  );
});
