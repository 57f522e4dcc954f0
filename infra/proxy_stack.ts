/**
 * The AWS deployment of the proxy: VPC, RDS PostgreSQL, Secrets Manager + KMS, ECS Fargate behind an ALB,
 * CloudWatch alarms. `infra/app.ts` reads CDK context into {@link ProxyStackProps}; tests construct the stack
 * directly.
 */
import { fileURLToPath } from "node:url";
import {
  Annotations,
  CfnOutput,
  Duration,
  RemovalPolicy,
  SecretValue,
  Size,
  Stack,
  type StackProps,
  Tags,
} from "aws-cdk-lib";
import type { Construct } from "constructs";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cwActions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import { Platform } from "aws-cdk-lib/aws-ecr-assets";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as elbv2 from "aws-cdk-lib/aws-elasticloadbalancingv2";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as logs from "aws-cdk-lib/aws-logs";
import * as rds from "aws-cdk-lib/aws-rds";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";

export type DeployEnvironment = "dev" | "prod";

export interface ProxyStackProps extends StackProps {
  /** `dev` (cheap, destroyable) or `prod` (Multi-AZ database, deletion protection, retained data). */
  readonly environment: DeployEnvironment;
  /** Tasks to run; at least 2. Also the autoscaling minimum. Default 2. */
  readonly desiredCount?: number;
  /** Autoscaling maximum. Default 4 (dev) / 10 (prod). */
  readonly maxCount?: number;
  /** Fargate task CPU units. Default 512 (dev) / 1024 (prod). */
  readonly cpu?: number;
  /** Fargate task memory in MiB. Default 1024 (dev) / 2048 (prod). */
  readonly memoryMiB?: number;
  /** RDS instance class without the `db.` prefix. Default `t4g.micro` (dev) / `t4g.medium` (prod). */
  readonly dbInstanceClass?: string;
  /** Public host name that points (CNAME/alias) at the load balancer; used for the URL output. */
  readonly domainName?: string;
  /** ACM certificate ARN (same region) for HTTPS. Without it the load balancer serves plain HTTP. */
  readonly certificateArn?: string;
  /** CIDRs allowed to reach `/admin*` and `/api*`; others get 403. Empty: no restriction. */
  readonly adminAllowedCidrs?: readonly string[];
  /** E-mail address subscribed to an SNS topic that receives every alarm. */
  readonly alarmEmail?: string;
  /** PROXY_LOG_LEVEL. Default `info`. */
  readonly logLevel?: string;
  /** PROXY_TIMEZONE (IANA zone the console renders in). Default `UTC`. */
  readonly timezone?: string;
  /** PROXY_BEDROCK_REGION. Default: the stack's region. */
  readonly bedrockRegion?: string;
  /**
   * PROXY_BEDROCK_USE_DEFAULT_CREDENTIALS: let the app call Bedrock with the task role's own credentials (the
   * AWS default chain) where an access key has no Bedrock credentials of its own, billed to this account.
   * Default false (opt in). Only then may the task role invoke Bedrock: otherwise every call uses a key's own
   * credentials, and a task role that could would only serve whoever gets code running in a task.
   */
  readonly bedrockUseDefaultCredentials?: boolean;
  /**
   * Runs the app with `--allow-all` in place of its narrow permissions, so it may read /proc/net/tcp and notice
   * a client that leaves before its answer's headers (Deno 2.9 does not tell it; see lib/net/peer_watch.ts):
   * the upstream call is then cancelled instead of running on, perhaps on to Bedrock. It gives up Deno's
   * permission sandbox inside the container. Default false.
   */
  readonly clientSocketWatch?: boolean;
  /** Docker build context. Default: the repository root (the directory above `infra/`). */
  readonly imageDirectory?: string;
}

/** The app's SIGTERM drain deadline (PROXY_SHUTDOWN_DRAIN_SECONDS), also set in the Dockerfile. */
export const SHUTDOWN_DRAIN_SECONDS = 25;
/**
 * SIGTERM → SIGKILL: the drain, then up to 2 s ending streams, 5 s writing usage (spilling what cannot be
 * written), 3 s logging unrecorded rows, with room to spare. Fargate's maximum is 120.
 */
export const STOP_TIMEOUT_SECONDS = SHUTDOWN_DRAIN_SECONDS + 15;
/**
 * How long the ALB keeps serving in-flight requests (streams) of a deregistering task before ECS sends
 * SIGTERM. A stream still open after this is cut by the ALB, with no error event and no usage row; new requests
 * go to other tasks at once, and draining ends as soon as the last open request does, so a deployment waits only
 * as long as its longest stream. Claude Code's 32k-token answers take up to about 10 minutes.
 */
export const DEREGISTRATION_DELAY_SECONDS = 900;
/**
 * How long a non-streaming answer may stay silent, from either upstream (PROXY_UPSTREAM_RESPONSE_TIMEOUT_MS):
 * under the NAT gateway's 350 s idle timeout, past which the gateway drops the connection without a word, so the
 * proxy would wait out its own longer timeout for an answer that can no longer come (and may have been billed).
 * Streams are unaffected: their events (pings included) keep the connection busy.
 */
export const UPSTREAM_RESPONSE_TIMEOUT_MS = 330_000;
/**
 * ALB idle timeout: longer than the longest silence before the proxy's first byte, a non-streaming answer the
 * Anthropic API never gives (UPSTREAM_RESPONSE_TIMEOUT_MS) followed by Bedrock's (the same), so the ALB never
 * answers 504 to a fallback that is still coming (and billed). ALB allows up to 4000.
 */
export const IDLE_TIMEOUT_SECONDS = 1300;
export const CONTAINER_PORT = 8000;
/** PROXY_DATA_DIR in the image: the only place the app writes (the usage spool). */
export const DATA_DIR = "/app/.data";
/**
 * Initial PROXY_ADMIN_PASSWORD_HASH: the app's PBKDF2 format with a salt that says what to do and an all-zero
 * digest, which no password hashes to (finding one is a PBKDF2 preimage). Changing this text would make the
 * next deploy overwrite the operator's hash: keep it fixed.
 */
export const PLACEHOLDER_ADMIN_PASSWORD_HASH =
  "pbkdf2-sha256$600000$placeholder-run-deno-task-hash-password$" +
  "A".repeat(43);
export const DATABASE_NAME = "proxy";
/** The application's own database role (row access only), created by the migrate container. */
export const DATABASE_APP_USER = "proxy_app";
/** The image's command (its CMD), which the migrate container runs with `migrate` added. */
export const APP_COMMAND: readonly string[] = Object.freeze([
  "deno",
  "run",
  "--cached-only",
  "--allow-net",
  "--allow-env",
  "--allow-read=/app",
  "--allow-write=/app/.data",
  "--allow-sys",
  "main.ts",
]);

/** The app's command with every permission: what `clientSocketWatch` runs (Deno reads /proc with no less). */
export const APP_COMMAND_ALL_PERMISSIONS: readonly string[] = Object.freeze([
  "deno",
  "run",
  "--cached-only",
  "--allow-all",
  "main.ts",
]);

/** Paths kept out of the Docker build context (and so out of the asset hash and the staging copy). */
export const DOCKER_CONTEXT_EXCLUDES: readonly string[] = [
  ".git",
  ".github",
  ".ci",
  ".data",
  ".env",
  ".env.*",
  "cdk.out",
  "node_modules",
  "static/build",
  "test-artifacts",
  "tests",
  "infra",
  "**/*_test.ts",
  "**/*_test.tsx",
  "*.log",
  "*.md",
];

/** Paths the admin allow-list protects (ALB path patterns; `*` also covers `/admin` and `/api` themselves). */
export const ADMIN_PATH_PATTERNS: readonly string[] = ["/admin*", "/api*"];

export const ENV_DEFAULTS: Record<
  DeployEnvironment,
  { cpu: number; memoryMiB: number; dbInstanceClass: string; maxCount: number }
> = {
  dev: { cpu: 512, memoryMiB: 1024, dbInstanceClass: "t4g.micro", maxCount: 4 },
  prod: { cpu: 1024, memoryMiB: 2048, dbInstanceClass: "t4g.medium", maxCount: 10 },
};

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Validates an IPv4 or IPv6 CIDR such as `203.0.113.0/24`. */
export function isCidr(value: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
  if (v4) {
    return v4.slice(1, 5).every((octet) => Number(octet) <= 255) && Number(v4[5]) <= 32;
  }
  const v6 = /^([0-9a-fA-F:]+)\/(\d{1,3})$/.exec(value);
  return v6 !== null && v6[1].includes(":") && Number(v6[2]) <= 128;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class ProxyStack extends Stack {
  readonly vpc: ec2.Vpc;
  readonly database: rds.DatabaseInstance;
  readonly service: ecs.FargateService;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly targetGroup: elbv2.ApplicationTargetGroup;
  readonly envelopeKey: kms.Key;
  readonly logGroup: logs.LogGroup;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: ProxyStackProps) {
    super(scope, id, props);
    const env = props.environment;
    if (env !== "dev" && env !== "prod") {
      throw new Error(`environment must be "dev" or "prod", got ${JSON.stringify(env)}`);
    }
    const prod = env === "prod";
    // On every resource that takes tags, for cost reports and ownership (and propagated to tasks).
    Tags.of(this).add("application", "claude-code-proxy");
    Tags.of(this).add("environment", env);
    const defaults = ENV_DEFAULTS[env];
    const desiredCount = props.desiredCount ?? 2;
    if (!Number.isInteger(desiredCount) || desiredCount < 2) {
      throw new Error(`desiredCount must be an integer of at least 2, got ${desiredCount}`);
    }
    const maxCount = Math.max(props.maxCount ?? defaults.maxCount, desiredCount);
    const cidrs = [...(props.adminAllowedCidrs ?? [])];
    const badCidrs = cidrs.filter((c) => !isCidr(c));
    if (badCidrs.length > 0) throw new Error(`adminAllowedCidrs: not a CIDR: ${badCidrs.join(", ")}`);
    const removalPolicy = prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    // ---------------------------------------------------------------- network
    this.vpc = new ec2.Vpc(this, "Vpc", {
      maxAzs: 2,
      natGateways: prod ? 2 : 1,
      subnetConfiguration: [
        { name: "public", subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: "app", subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        { name: "db", subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      // Free: keeps ECR image layer pulls (S3) off the NAT gateway.
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    });

    // ---------------------------------------------------------------- secrets and keys
    const keyHasherSecret = new secretsmanager.Secret(this, "KeyHasherSecret", {
      description:
        "PROXY_KEY_HASHER_SECRET: HMAC key for access keys. Rotating it invalidates every access key.",
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy,
    });
    const jwtSecret = new secretsmanager.Secret(this, "JwtSecret", {
      description: "PROXY_JWT_SECRET: signs admin sessions. Rotating it signs every admin out.",
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy,
    });
    const metricsSecret = new secretsmanager.Secret(this, "MetricsToken", {
      description:
        "PROXY_METRICS_TOKEN: the bearer token a Prometheus scraper sends to GET /metrics on a task.",
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
      removalPolicy,
    });
    const adminSecret = new secretsmanager.Secret(this, "AdminSecret", {
      description: "Admin console login: username and password_hash. Set password_hash to the output of " +
        "`deno task hash-password`, then force a new ECS deployment (README.md, section Deploying to AWS).",
      // Not secret: a well-formed hash that no password produces, so the first deploy starts (the app rejects a
      // missing or malformed hash in production) with the console locked until the operator sets a real one.
      // CloudFormation never rewrites it while this text is unchanged, so the operator's value survives deploys.
      secretStringValue: SecretValue.unsafePlainText(
        JSON.stringify({ username: "admin", password_hash: PLACEHOLDER_ADMIN_PASSWORD_HASH }),
      ),
      removalPolicy,
    });
    this.envelopeKey = new kms.Key(this, "EnvelopeKey", {
      description: "Claude Code proxy: envelope encryption of per-key Bedrock credentials",
      enableKeyRotation: true,
      removalPolicy,
      pendingWindow: prod ? Duration.days(30) : Duration.days(7),
    });

    // ---------------------------------------------------------------- database
    const dbSecurityGroup = new ec2.SecurityGroup(this, "DatabaseSecurityGroup", {
      vpc: this.vpc,
      description: "PostgreSQL: reachable from the proxy tasks only",
      allowAllOutbound: false,
    });
    // Generated master credentials; the attachment adds host, port and dbname for the task's secrets.
    const dbCredentials = new rds.DatabaseSecret(this, "DatabaseSecret", {
      username: "proxy",
      // Letters, digits, - and _ only: the app builds a connection URL from the parts.
      excludeCharacters: " !\"#$%&'()*+,./:;<=>?@[\\]^`{|}~",
    });
    dbCredentials.applyRemovalPolicy(removalPolicy);
    this.database = new rds.DatabaseInstance(this, "Database", {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 }),
      instanceType: new ec2.InstanceType(props.dbInstanceClass ?? defaults.dbInstanceClass),
      vpc: this.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [dbSecurityGroup],
      publiclyAccessible: false,
      multiAz: prod,
      databaseName: DATABASE_NAME,
      credentials: rds.Credentials.fromSecret(dbCredentials),
      storageEncrypted: true,
      storageType: rds.StorageType.GP3,
      allocatedStorage: 20,
      maxAllocatedStorage: prod ? 200 : 50,
      backupRetention: Duration.days(prod ? 14 : 1),
      deletionProtection: prod,
      removalPolicy,
      autoMinorVersionUpgrade: true,
      // RDS for PostgreSQL 15+ already defaults rds.force_ssl to 1; the app connects with sslmode=verify-full
      // against Amazon RDS's CAs (bundled with the app), so its certificate and host name are checked.
    });
    const dbSecret = this.database.secret!;
    // The app's own role: rows only. The owner's credentials above go to the migrate container alone, so the
    // process that faces the internet cannot change the schema, create roles or rewrite the audit log.
    const dbAppSecret = new secretsmanager.Secret(this, "DatabaseAppSecret", {
      description:
        "Claude Code proxy: the application's PostgreSQL role (row access only; migrate creates it)",
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ username: DATABASE_APP_USER }),
        generateStringKey: "password",
        passwordLength: 40,
        // Letters, digits, - and _ only, as for the owner's: the app builds a connection URL from the parts.
        excludeCharacters: " !\"#$%&'()*+,./:;<=>?@[\\]^`{|}~",
      },
    });
    dbAppSecret.applyRemovalPolicy(removalPolicy);

    // ---------------------------------------------------------------- ECS
    const cluster = new ecs.Cluster(this, "Cluster", {
      vpc: this.vpc,
      containerInsightsV2: prod ? ecs.ContainerInsights.ENABLED : ecs.ContainerInsights.DISABLED,
    });
    this.logGroup = new logs.LogGroup(this, "Logs", {
      retention: prod ? logs.RetentionDays.THREE_MONTHS : logs.RetentionDays.TWO_WEEKS,
      removalPolicy,
    });

    // Task role: what the app itself may call. Execution role (CDK-made): image pull, logs, secrets.
    const taskRole = new iam.Role(this, "TaskRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description:
        "Claude Code proxy tasks: the envelope key (and Bedrock invoke when opted in), nothing else",
    });
    if (props.bedrockUseDefaultCredentials) {
      // Claude only: the proxy speaks Anthropic's Messages format, which no other model on Bedrock takes. The
      // region is a wildcard because inference profiles route across regions (a global profile's models have
      // an empty one), and the partition is the stack's, for GovCloud and China.
      const claude = `arn:${this.partition}:bedrock:*::foundation-model/anthropic.*`;
      taskRole.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: "InvokeBedrockModels",
          actions: ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
          resources: [
            claude,
            // System profiles (`global.anthropic.…`, `us.anthropic.…`), and the application profiles an admin
            // may map a model to in PROXY_BEDROCK_MODEL_MAP, whose names are the admin's own.
            `arn:${this.partition}:bedrock:*:${this.account}:inference-profile/*anthropic.*`,
            `arn:${this.partition}:bedrock:*:${this.account}:application-inference-profile/*`,
          ],
        }),
      );
      taskRole.addToPrincipalPolicy(
        new iam.PolicyStatement({
          // count_tokens answered on Bedrock; CountTokens takes foundation models only, and is free.
          sid: "CountBedrockTokens",
          actions: ["bedrock:CountTokens"],
          resources: [claude],
        }),
      );
    }
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: "EnvelopeKey",
        actions: ["kms:GenerateDataKey", "kms:Decrypt"],
        resources: [this.envelopeKey.keyArn],
        // The app binds every data key to the access key it seals ({access_key_id}); a call without that
        // context (anything but the app's own use) is refused.
        conditions: {
          "ForAllValues:StringEquals": { "kms:EncryptionContextKeys": ["access_key_id"] },
          Null: { "kms:EncryptionContextKeys": "false" },
        },
      }),
    );

    const cpu = props.cpu ?? defaults.cpu;
    const memoryMiB = props.memoryMiB ?? defaults.memoryMiB;
    this.taskDefinition = new ecs.FargateTaskDefinition(this, "Task", {
      cpu,
      memoryLimitMiB: memoryMiB,
      taskRole,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });

    const environment: Record<string, string> = {
      PROXY_ENV: "production",
      PROXY_HOST: "0.0.0.0",
      PROXY_PORT: String(CONTAINER_PORT),
      PROXY_DB_NAME: DATABASE_NAME,
      PROXY_DB_SSLMODE: "verify-full",
      PROXY_DB_SSLROOTCERT: "rds",
      PROXY_KMS_KEY_ID: this.envelopeKey.keyArn,
      PROXY_BEDROCK_REGION: props.bedrockRegion ?? this.region,
      PROXY_BEDROCK_USE_DEFAULT_CREDENTIALS: String(props.bedrockUseDefaultCredentials ?? false),
      PROXY_LOG_LEVEL: props.logLevel ?? "info",
      PROXY_TIMEZONE: props.timezone ?? "UTC",
      PROXY_SHUTDOWN_DRAIN_SECONDS: String(SHUTDOWN_DRAIN_SECONDS),
      PROXY_UPSTREAM_RESPONSE_TIMEOUT_MS: String(UPSTREAM_RESPONSE_TIMEOUT_MS),
      // Behind the ALB the client address is the last X-Forwarded-For hop (login and key-guess throttles).
      PROXY_TRUST_FORWARDED_FOR: "true",
      // The app enforces the allow-list too: the load balancer's rules match the raw path, and a
      // percent-encoded one (`/%61dmin`) would slip past them to a router that decodes it.
      ...(cidrs.length > 0 ? { PROXY_ADMIN_ALLOWED_CIDRS: cidrs.join(",") } : {}),
    };

    const image = ecs.ContainerImage.fromAsset(props.imageDirectory ?? REPO_ROOT, {
      exclude: [...DOCKER_CONTEXT_EXCLUDES],
      platform: Platform.LINUX_AMD64,
    });
    // Where the database is (not secret, but kept with the credentials by the secret attachment).
    const dbLocation = {
      PROXY_DB_HOST: ecs.Secret.fromSecretsManager(dbSecret, "host"),
      PROXY_DB_PORT: ecs.Secret.fromSecretsManager(dbSecret, "port"),
    };
    const appSecrets = {
      PROXY_KEY_HASHER_SECRET: ecs.Secret.fromSecretsManager(keyHasherSecret),
      PROXY_JWT_SECRET: ecs.Secret.fromSecretsManager(jwtSecret),
      PROXY_METRICS_TOKEN: ecs.Secret.fromSecretsManager(metricsSecret),
      PROXY_ADMIN_USERNAME: ecs.Secret.fromSecretsManager(adminSecret, "username"),
      PROXY_ADMIN_PASSWORD_HASH: ecs.Secret.fromSecretsManager(adminSecret, "password_hash"),
      ...dbLocation,
    };
    // The task's ephemeral storage; the image declares the directory a VOLUME so the app's user owns it.
    this.taskDefinition.addVolume({ name: "data" });

    // Runs to completion before the app starts in every task: applies pending migrations as the database owner
    // (under an advisory lock, so tasks starting together apply each once), then creates the app's role or
    // resets its password and grants it the current tables.
    const migrateContainer = this.taskDefinition.addContainer("migrate", {
      image,
      essential: false,
      command: [...APP_COMMAND, "migrate"],
      environment,
      // The database's only: `main.ts migrate` needs no other (see loadConfig's databaseOnly), and the
      // container that holds the owner's password should hold nothing more.
      secrets: {
        ...dbLocation,
        PROXY_DB_USER: ecs.Secret.fromSecretsManager(dbSecret, "username"),
        PROXY_DB_PASSWORD: ecs.Secret.fromSecretsManager(dbSecret, "password"),
        PROXY_DB_APP_USER: ecs.Secret.fromSecretsManager(dbAppSecret, "username"),
        PROXY_DB_APP_PASSWORD: ecs.Secret.fromSecretsManager(dbAppSecret, "password"),
      },
      readonlyRootFilesystem: true,
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: "migrate" }),
    });
    migrateContainer.addMountPoints({ containerPath: DATA_DIR, sourceVolume: "data", readOnly: false });

    const container = this.taskDefinition.addContainer("proxy", {
      image,
      ...(props.clientSocketWatch ? { command: [...APP_COMMAND_ALL_PERMISSIONS] } : {}),
      essential: true,
      environment,
      secrets: {
        ...appSecrets,
        PROXY_DB_USER: ecs.Secret.fromSecretsManager(dbAppSecret, "username"),
        PROXY_DB_PASSWORD: ecs.Secret.fromSecretsManager(dbAppSecret, "password"),
      },
      // Nothing but the data dir (the usage spool) is written, and the app may write nowhere else anyway.
      readonlyRootFilesystem: true,
      portMappings: [{ containerPort: CONTAINER_PORT, protocol: ecs.Protocol.TCP }],
      stopTimeout: Duration.seconds(STOP_TIMEOUT_SECONDS),
      logging: ecs.LogDrivers.awsLogs({
        logGroup: this.logGroup,
        streamPrefix: "proxy",
        // A slow CloudWatch must never stall stdout writes on the request path. The buffer holds the burst of
        // `usage row not recorded` lines written at exit (up to 50,000 of ~0.5 KB): the driver drops what does
        // not fit, and with the task's disk gone they are the only copy. It counts against task memory.
        mode: ecs.AwsLogDriverMode.NON_BLOCKING,
        maxBufferSize: Size.mebibytes(32),
      }),
    });
    container.addContainerDependencies({
      container: migrateContainer,
      condition: ecs.ContainerDependencyCondition.SUCCESS,
    });
    container.addMountPoints({ containerPath: DATA_DIR, sourceVolume: "data", readOnly: false });

    const serviceSecurityGroup = new ec2.SecurityGroup(this, "ServiceSecurityGroup", {
      vpc: this.vpc,
      description: "Proxy tasks: inbound from the load balancer only",
      // Out: HTTPS only (Anthropic API, Bedrock, KMS, Secrets Manager, ECR, CloudWatch Logs), and PostgreSQL to
      // the database (added with its ingress below). A compromised task gets no other port out.
      allowAllOutbound: false,
    });
    serviceSecurityGroup.addEgressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.tcp(443),
      "HTTPS: Anthropic API, Bedrock, KMS, Secrets Manager, ECR, CloudWatch Logs",
    );
    this.service = new ecs.FargateService(this, "Service", {
      cluster,
      taskDefinition: this.taskDefinition,
      // No desiredCount in the template: CloudFormation would re-apply it on every deployment, scaling a busy
      // service back down to it (cutting streams). Autoscaling's minCapacity keeps the floor instead: a new
      // service starts with one task (CloudFormation's default) and the scalable target raises it to the floor.
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      assignPublicIp: false,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [serviceSecurityGroup],
      // Migrations run at start under an advisory lock; later tasks wait for the first.
      healthCheckGracePeriod: Duration.seconds(120),
      propagateTags: ecs.PropagatedTagSource.SERVICE,
    });
    this.database.connections.allowDefaultPortFrom(serviceSecurityGroup, "proxy tasks to PostgreSQL");

    // ---------------------------------------------------------------- load balancer
    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, "LoadBalancer", {
      vpc: this.vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      idleTimeout: Duration.seconds(IDLE_TIMEOUT_SECONDS),
      dropInvalidHeaderFields: true,
      deletionProtection: prod,
    });
    this.targetGroup = new elbv2.ApplicationTargetGroup(this, "TargetGroup", {
      vpc: this.vpc,
      port: CONTAINER_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targetType: elbv2.TargetType.IP,
      deregistrationDelay: Duration.seconds(DEREGISTRATION_DELAY_SECONDS),
      healthCheck: {
        path: "/health",
        healthyHttpCodes: "200",
        interval: Duration.seconds(15),
        // A task whose event loop is busy with a burst answers late: give it 10 s and 4 tries (a minute) before
        // it is replaced along with its open streams.
        timeout: Duration.seconds(10),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 4,
      },
      targets: [this.service.loadBalancerTarget({ containerName: container.containerName })],
    });

    let listener: elbv2.ApplicationListener;
    if (props.certificateArn) {
      listener = this.loadBalancer.addListener("Https", {
        port: 443,
        protocol: elbv2.ApplicationProtocol.HTTPS,
        certificates: [elbv2.ListenerCertificate.fromArn(props.certificateArn)],
        // TLS 1.3, and 1.2 with forward-secret suites only.
        sslPolicy: elbv2.SslPolicy.TLS13_RES,
        open: true,
        defaultTargetGroups: [this.targetGroup],
      });
      const plain = this.loadBalancer.addRedirect({ sourcePort: 80, targetPort: 443 });
      // A client configured with http://…/ak/<key> has already sent its access key and API key in the clear; a
      // redirect would hide that (and turn its POST into a GET). Refuse it, saying what happened.
      new elbv2.ApplicationListenerRule(this, "PlainHttpProxyRefusal", {
        listener: plain,
        priority: 1,
        conditions: [elbv2.ListenerCondition.pathPatterns(["/ak/*"])],
        action: elbv2.ListenerAction.fixedResponse(400, {
          contentType: "application/json",
          messageBody: JSON.stringify({
            type: "error",
            error: {
              type: "invalid_request_error",
              message:
                "this proxy is served over HTTPS only: use https:// in ANTHROPIC_BASE_URL. This request " +
                "sent its access key and API key unencrypted; rotate both.",
            },
          }),
        }),
      });
      // The same for the admin API (a bearer token, or the password of a sign-in) and for a console form post
      // (the session cookie is Secure and stays behind, but a sign-in's password does not). A console page
      // opened over http still redirects.
      const plainRefusal = (what: string) =>
        elbv2.ListenerAction.fixedResponse(400, {
          contentType: "application/json",
          messageBody: JSON.stringify({
            error: {
              type: "invalid_request_error",
              message: `the admin ${what} is served over HTTPS only: use https://. This request went ` +
                "unencrypted; if it carried a password or token, change it.",
            },
          }),
        });
      new elbv2.ApplicationListenerRule(this, "PlainHttpApiRefusal", {
        listener: plain,
        priority: 2,
        conditions: [elbv2.ListenerCondition.pathPatterns(["/api", "/api/*"])],
        action: plainRefusal("API"),
      });
      new elbv2.ApplicationListenerRule(this, "PlainHttpConsolePostRefusal", {
        listener: plain,
        priority: 3,
        conditions: [
          elbv2.ListenerCondition.pathPatterns(["/admin", "/admin/*"]),
          elbv2.ListenerCondition.httpRequestMethods(["POST", "PUT", "PATCH", "DELETE"]),
        ],
        action: plainRefusal("console"),
      });
    } else {
      listener = this.loadBalancer.addListener("Http", {
        port: 80,
        protocol: elbv2.ApplicationProtocol.HTTP,
        open: true,
        defaultTargetGroups: [this.targetGroup],
      });
      Annotations.of(this).addWarningV2(
        "claude-code-proxy:no-certificate",
        "No certificateArn given: the load balancer serves plain HTTP on port 80, so access keys, API keys " +
          "and admin passwords cross the internet unencrypted. Pass -c certificateArn=arn:aws:acm:... for HTTPS.",
      );
    }

    // Metrics are scraped from the tasks inside the VPC, never through the public load balancer.
    new elbv2.ApplicationListenerRule(this, "MetricsDeny", {
      listener,
      priority: 5,
      conditions: [elbv2.ListenerCondition.pathPatterns(["/metrics", "/metrics/*"])],
      action: elbv2.ListenerAction.fixedResponse(404, {
        contentType: "application/json",
        messageBody: JSON.stringify({ error: { type: "not_found_error", message: "not found" } }),
      }),
    });

    if (cidrs.length > 0) {
      // A rule holds at most 5 condition values (3 per condition): 2 path patterns + up to 3 CIDRs.
      chunk(cidrs, 3).forEach((group, i) => {
        new elbv2.ApplicationListenerRule(this, `AdminAllow${i}`, {
          listener,
          priority: 10 + i,
          conditions: [
            elbv2.ListenerCondition.pathPatterns([...ADMIN_PATH_PATTERNS]),
            elbv2.ListenerCondition.sourceIps(group),
          ],
          targetGroups: [this.targetGroup],
        });
      });
      new elbv2.ApplicationListenerRule(this, "AdminDeny", {
        listener,
        priority: 1000,
        conditions: [elbv2.ListenerCondition.pathPatterns([...ADMIN_PATH_PATTERNS])],
        action: elbv2.ListenerAction.fixedResponse(403, {
          contentType: "application/json",
          messageBody: JSON.stringify({
            error: { type: "forbidden", message: "not allowed from this address" },
          }),
        }),
      });
    }

    // ---------------------------------------------------------------- autoscaling
    const scaling = this.service.autoScaleTaskCount({ minCapacity: desiredCount, maxCapacity: maxCount });
    // The app is one event loop: it keeps about one vCPU (1024 units) busy however many the task has. Past
    // 1024 the target is scaled down so that it is still reached (60 % of one vCPU), and synth says so.
    const cpuTarget = cpu > 1024 ? Math.max(5, Math.floor((60 * 1024) / cpu)) : 60;
    if (cpu > 1024) {
      Annotations.of(this).addWarningV2(
        "claude-code-proxy:cpu-over-one-vcpu",
        `cpu ${cpu}: the proxy runs one event loop and uses about 1024 units of it, so the CPU scaling target ` +
          `is ${cpuTarget} % (60 % of one vCPU). More tasks of 1024 serve more than fewer larger ones.`,
      );
    }
    scaling.scaleOnCpuUtilization("Cpu", {
      targetUtilizationPercent: cpuTarget,
      scaleInCooldown: Duration.minutes(5),
      scaleOutCooldown: Duration.minutes(1),
    });
    scaling.scaleOnRequestCount("Requests", {
      requestsPerTarget: 600, // per task per minute
      targetGroup: this.targetGroup,
      scaleInCooldown: Duration.minutes(5),
      scaleOutCooldown: Duration.minutes(1),
    });

    // ---------------------------------------------------------------- alarms
    const period = Duration.minutes(5);
    const namespace = `ClaudeCodeProxy/${env}`;
    new logs.MetricFilter(this, "RequestsMetricFilter", {
      logGroup: this.logGroup,
      filterPattern: logs.FilterPattern.literal('{ $.msg = "request" }'),
      metricNamespace: namespace,
      metricName: "Requests",
      metricValue: "1",
    });
    new logs.MetricFilter(this, "FallbackMetricFilter", {
      logGroup: this.logGroup,
      filterPattern: logs.FilterPattern.literal('{ $.msg = "request" && $.is_fallback IS TRUE }'),
      metricNamespace: namespace,
      metricName: "FallbackRequests",
      metricValue: "1",
    });
    // The recorder logs this when a usage flush fails (rows kept, retried); sustained, usage is piling up in
    // memory and the spool instead of reaching the database.
    new logs.MetricFilter(this, "UsageFlushFailedMetricFilter", {
      logGroup: this.logGroup,
      filterPattern: logs.FilterPattern.literal('{ $.msg = "usage flush failed; rows kept and retried" }'),
      metricNamespace: namespace,
      metricName: "UsageFlushFailures",
      metricValue: "1",
    });
    const metric = (metricName: string) =>
      new cloudwatch.Metric({ namespace, metricName, statistic: "Sum", period });

    const alarm = (id: string, props: cloudwatch.AlarmProps) => {
      const a = new cloudwatch.Alarm(this, id, props);
      this.alarms.push(a);
      return a;
    };
    alarm("Alb5xxRateAlarm", {
      alarmDescription: "More than 5% of requests answered 5xx (load balancer or tasks) for 15 minutes",
      metric: new cloudwatch.MathExpression({
        expression: "IF(requests > 0, 100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / requests, 0)",
        usingMetrics: {
          requests: this.loadBalancer.metrics.requestCount({ period }),
          elb5xx: this.loadBalancer.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, { period }),
          target5xx: this.loadBalancer.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
            period,
          }),
        },
        label: "5xx %",
        period,
      }),
      threshold: 5,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm("FallbackRateAlarm", {
      alarmDescription:
        "More than 25% of proxied requests were answered by Bedrock (fallback) for 15 minutes",
      metric: new cloudwatch.MathExpression({
        expression: "IF(requests > 0, 100 * FILL(fallback, 0) / requests, 0)",
        usingMetrics: { requests: metric("Requests"), fallback: metric("FallbackRequests") },
        label: "fallback %",
        period,
      }),
      threshold: 25,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm("TargetResponseTimeAlarm", {
      alarmDescription: "p90 time to response headers above 30 s for 15 minutes",
      metric: this.targetGroup.metrics.targetResponseTime({ statistic: "p90", period }),
      threshold: 30,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm("DatabaseCpuAlarm", {
      alarmDescription: "Database CPU above 80% for 15 minutes",
      metric: this.database.metricCPUUtilization({ period }),
      threshold: 80,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    alarm("DatabaseFreeStorageAlarm", {
      alarmDescription: "Database free storage below 2 GiB",
      metric: this.database.metricFreeStorageSpace({ period }),
      threshold: 2 * 1024 ** 3,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    });
    alarm("UnhealthyTasksAlarm", {
      alarmDescription: "A task has failed its /health check for 15 minutes",
      metric: this.targetGroup.metrics.unhealthyHostCount({ statistic: "Maximum", period }),
      threshold: 1,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    alarm("NoHealthyTasksAlarm", {
      alarmDescription:
        "No task has passed its /health check for 15 minutes (crash-looping tasks never register as unhealthy)",
      metric: this.targetGroup.metrics.healthyHostCount({ statistic: "Minimum", period }),
      threshold: 1,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      // No data is what a target group without any registered task reports.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });

    alarm("UsageFlushFailingAlarm", {
      alarmDescription:
        "Usage records have failed to reach the database for 15 minutes (kept in memory and spool)",
      metric: metric("UsageFlushFailures"),
      threshold: 1,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm("TaskMemoryAlarm", {
      alarmDescription: "Task memory above 80% of its limit for 15 minutes (memory grows with open streams)",
      metric: this.service.metricMemoryUtilization({ statistic: "Maximum", period }),
      threshold: 80,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });

    if (!props.alarmEmail && prod) {
      Annotations.of(this).addWarningV2(
        "claude-code-proxy:no-alarm-email",
        "No alarmEmail given: the alarms (failing usage flushes, 5xx, unhealthy tasks, memory) notify no one. " +
          "Pass -c alarmEmail=ops@example.com, or subscribe to them yourself.",
      );
    }
    if (props.alarmEmail) {
      const topic = new sns.Topic(this, "AlarmTopic", { displayName: `Claude Code proxy (${env}) alarms` });
      topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
      const action = new cwActions.SnsAction(topic);
      for (const a of this.alarms) {
        a.addAlarmAction(action);
        a.addOkAction(action);
      }
      new CfnOutput(this, "AlarmTopicArn", { value: topic.topicArn });
    }

    // ---------------------------------------------------------------- outputs
    const scheme = props.certificateArn ? "https" : "http";
    new CfnOutput(this, "ServiceUrl", {
      value: `${scheme}://${props.domainName ?? this.loadBalancer.loadBalancerDnsName}`,
      description: "Base URL; Claude Code uses ANTHROPIC_BASE_URL=<this>/ak/<access key>",
    });
    new CfnOutput(this, "LoadBalancerDnsName", {
      value: this.loadBalancer.loadBalancerDnsName,
      description: props.domainName
        ? `Point ${props.domainName} at this name (CNAME, or a Route 53 alias record)`
        : "Public DNS name of the load balancer",
    });
    new CfnOutput(this, "AdminSecretArn", {
      value: adminSecret.secretArn,
      description: "Set password_hash here (see README.md, section Deploying to AWS)",
    });
    new CfnOutput(this, "KeyHasherSecretArn", { value: keyHasherSecret.secretArn });
    new CfnOutput(this, "JwtSecretArn", { value: jwtSecret.secretArn });
    new CfnOutput(this, "MetricsTokenSecretArn", {
      value: metricsSecret.secretArn,
      description: "The bearer token a Prometheus scraper sends to GET /metrics on a task",
    });
    new CfnOutput(this, "ServiceSecurityGroupId", {
      value: serviceSecurityGroup.securityGroupId,
      description: "The tasks' security group: allow your scraper's group on TCP 8000 here to read /metrics",
    });
    new CfnOutput(this, "DatabaseSecretArn", { value: dbSecret.secretArn });
    new CfnOutput(this, "DatabaseAppSecretArn", { value: dbAppSecret.secretArn });
    new CfnOutput(this, "EnvelopeKeyArn", { value: this.envelopeKey.keyArn });
    new CfnOutput(this, "ClusterName", { value: cluster.clusterName });
    new CfnOutput(this, "ServiceName", { value: this.service.serviceName });
    new CfnOutput(this, "LogGroupName", { value: this.logGroup.logGroupName });
  }
}
