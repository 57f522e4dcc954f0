/**
 * A fake AWS KMS speaking the real JSON 1.1 protocol over HTTP, so the real `@aws-sdk/client-kms` runs
 * against it: `POST /` with `X-Amz-Target: TrentService.<Operation>`, `Content-Type:
 * application/x-amz-json-1.1`, SigV4 `Authorization` verified against known test credentials, and errors
 * shaped `{"__type": "...", "message": "..."}` with HTTP 400.
 *
 * Supports GenerateDataKey and Decrypt. Ciphertext blobs are the data key sealed with AES-256-GCM under a
 * per-key master key held only in this process, with the encryption context as additional authenticated
 * data, so Decrypt under another context fails with `InvalidCiphertextException` as real KMS does.
 *
 * @module
 */

import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";
import { base64Decode, base64Encode } from "../../lib/encoding.ts";

/** Credentials the fake accepts by default; give these to the SDK client under test. */
export const FAKE_KMS_CREDENTIALS: Readonly<{ accessKeyId: string; secretAccessKey: string }> = Object.freeze(
  {
    accessKeyId: "AKIDTEST",
    secretAccessKey: "test-secret",
  },
);

/** The key id the fake knows when no `keyIds` are given (AWS's documentation example id). */
export const FAKE_KMS_DEFAULT_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab";

/** The account id in the ARNs the fake reports. */
export const FAKE_KMS_ACCOUNT_ID = "111122223333";

/** One request the fake accepted (authenticated, well-formed JSON), in arrival order. */
export interface FakeKmsCall {
  /** The `X-Amz-Target` header, e.g. `TrentService.GenerateDataKey`. */
  target: string;
  /** The parsed JSON request body. */
  body: unknown;
}

/** Options of {@link startFakeKms}. */
export interface FakeKmsOptions {
  /** Key ids the fake holds; each also answers to its ARN. Defaults to `[FAKE_KMS_DEFAULT_KEY_ID]`. */
  keyIds?: string[];
  /** The region requests must be signed for and ARNs name; defaults to `us-east-1`. */
  region?: string;
  /** Accepted credentials; defaults to {@link FAKE_KMS_CREDENTIALS}. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** A running fake KMS. */
export interface FakeKms {
  /** Base URL to use as the SDK's `endpoint`. */
  url: string;
  /** Every accepted request, in order. */
  calls: FakeKmsCall[];
  /** The ARN the fake reports for `keyId`. */
  keyArn(keyId: string): string;
  /** Stops the server and waits for it to finish. */
  close(): Promise<void>;
}

const JSON_CONTENT_TYPE = "application/x-amz-json-1.1";
const TARGET_PREFIX = "TrentService.";
const BLOB_VERSION = 1;
const IV_BYTES = 12;
// Real KMS rejects signatures older or newer than this.
const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

/** A KMS error answer: HTTP status plus the `__type` the SDK turns into an exception class. */
class KmsFault extends Error {
  constructor(readonly type: string, message: string, readonly status = 400) {
    super(message);
  }
}

function fromBase64(text: unknown, field: string): Uint8Array<ArrayBuffer> {
  if (typeof text !== "string") throw new KmsFault("ValidationException", `${field} must be a base64 string`);
  try {
    return base64Decode(text);
  } catch {
    throw new KmsFault("SerializationException", `${field} is not valid base64`);
  }
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes))));
}

function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Validates an EncryptionContext and serialises it canonically (sorted keys), as KMS binds it order-free. */
function canonicalContext(context: unknown): Uint8Array<ArrayBuffer> {
  if (context === undefined || context === null) return new TextEncoder().encode("[]");
  if (typeof context !== "object" || Array.isArray(context)) {
    throw new KmsFault("ValidationException", "EncryptionContext must be a map of strings");
  }
  const entries = Object.entries(context as Record<string, unknown>);
  for (const [, v] of entries) {
    if (typeof v !== "string") {
      throw new KmsFault("ValidationException", "EncryptionContext values must be strings");
    }
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return new TextEncoder().encode(JSON.stringify(entries));
}

/** Parses `20240101T000000Z` (the x-amz-date format) to a Date, or null. */
function parseAmzDate(value: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number);
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s));
}

interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

function parseAuthorization(header: string | null): ParsedAuthorization {
  if (!header) throw new KmsFault("MissingAuthenticationTokenException", "Missing Authentication Token");
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/
      .exec(header);
  if (!m) {
    throw new KmsFault(
      "IncompleteSignatureException",
      "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' in AWS4-HMAC-SHA256 form",
    );
  }
  const [, accessKeyId, date, region, service, signedHeaders, signature] = m;
  return { accessKeyId, date, region, service, signedHeaders: signedHeaders.split(";"), signature };
}

/** Starts a fake KMS on an ephemeral loopback port. Close it in `finally`. */
export async function startFakeKms(opts: FakeKmsOptions = {}): Promise<FakeKms> {
  const region = opts.region ?? "us-east-1";
  const credentials = opts.credentials ?? FAKE_KMS_CREDENTIALS;
  const keyArn = (keyId: string) => `arn:aws:kms:${region}:${FAKE_KMS_ACCOUNT_ID}:key/${keyId}`;
  const masterKeys = new Map<string, CryptoKey>();
  for (const keyId of opts.keyIds ?? [FAKE_KMS_DEFAULT_KEY_ID]) {
    masterKeys.set(
      keyId,
      await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]),
    );
  }
  const calls: FakeKmsCall[] = [];
  const signer = new SignatureV4({
    credentials,
    region,
    service: "kms",
    sha256: Sha256,
    applyChecksum: false,
  });

  /** Resolves a KeyId (bare id or key ARN) to the bare id, as KMS accepts either. */
  function resolveKey(keyId: unknown): string {
    if (typeof keyId !== "string" || keyId === "") {
      throw new KmsFault("ValidationException", "KeyId is required");
    }
    for (const id of masterKeys.keys()) {
      if (keyId === id || keyId === keyArn(id)) return id;
    }
    throw new KmsFault("NotFoundException", `Key '${keyId}' does not exist`);
  }

  /** Blob layout: version byte, key id length (u16 BE), key id, IV, AES-GCM output. */
  async function seal(keyId: string, plaintext: Uint8Array<ArrayBuffer>, context: Uint8Array<ArrayBuffer>) {
    const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: context },
        masterKeys.get(keyId)!,
        plaintext,
      ),
    );
    const id = new TextEncoder().encode(keyId);
    const blob = new Uint8Array(3 + id.length + IV_BYTES + sealed.length);
    blob[0] = BLOB_VERSION;
    new DataView(blob.buffer).setUint16(1, id.length);
    blob.set(id, 3);
    blob.set(iv, 3 + id.length);
    blob.set(sealed, 3 + id.length + IV_BYTES);
    return blob;
  }

  async function unseal(blob: Uint8Array<ArrayBuffer>, context: Uint8Array<ArrayBuffer>) {
    const invalid = () =>
      new KmsFault(
        "InvalidCiphertextException",
        "The ciphertext is invalid or was not made for this encryption context",
      );
    if (blob.length < 3 || blob[0] !== BLOB_VERSION) throw invalid();
    const idLength = new DataView(blob.buffer, blob.byteOffset).getUint16(1);
    if (blob.length < 3 + idLength + IV_BYTES + 16) throw invalid();
    let keyId: string;
    try {
      keyId = new TextDecoder("utf-8", { fatal: true }).decode(blob.subarray(3, 3 + idLength));
    } catch {
      throw invalid();
    }
    const masterKey = masterKeys.get(keyId);
    if (!masterKey) throw invalid();
    const iv = blob.slice(3 + idLength, 3 + idLength + IV_BYTES);
    try {
      const plaintext = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv, additionalData: context },
        masterKey,
        blob.slice(3 + idLength + IV_BYTES),
      );
      return { keyId, plaintext: new Uint8Array(plaintext) };
    } catch {
      throw invalid();
    }
  }

  async function generateDataKey(body: Record<string, unknown>) {
    const keyId = resolveKey(body.KeyId);
    let length: number;
    if (body.KeySpec !== undefined && body.NumberOfBytes !== undefined) {
      throw new KmsFault("ValidationException", "Specify either KeySpec or NumberOfBytes, not both");
    } else if (body.KeySpec === "AES_256") length = 32;
    else if (body.KeySpec === "AES_128") length = 16;
    else if (
      typeof body.NumberOfBytes === "number" && Number.isInteger(body.NumberOfBytes) &&
      body.NumberOfBytes >= 1 &&
      body.NumberOfBytes <= 1024
    ) length = body.NumberOfBytes;
    else {throw new KmsFault(
        "ValidationException",
        "KeySpec must be AES_256 or AES_128, or NumberOfBytes 1-1024",
      );}
    const context = canonicalContext(body.EncryptionContext);
    const plaintext = crypto.getRandomValues(new Uint8Array(length));
    const blob = await seal(keyId, plaintext, context);
    return { CiphertextBlob: base64Encode(blob), Plaintext: base64Encode(plaintext), KeyId: keyArn(keyId) };
  }

  async function decrypt(body: Record<string, unknown>) {
    const blob = fromBase64(body.CiphertextBlob, "CiphertextBlob");
    const requested = body.KeyId === undefined ? null : resolveKey(body.KeyId);
    const context = canonicalContext(body.EncryptionContext);
    const { keyId, plaintext } = await unseal(blob, context);
    if (requested !== null && requested !== keyId) {
      throw new KmsFault(
        "IncorrectKeyException",
        "The key ID in the request does not identify a KMS key that can perform this operation",
      );
    }
    return {
      Plaintext: base64Encode(plaintext),
      KeyId: keyArn(keyId),
      EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
    };
  }

  /** Recomputes the SigV4 signature over the signed headers and the exact body bytes received. */
  async function authenticate(req: Request, bodyBytes: Uint8Array) {
    const auth = parseAuthorization(req.headers.get("authorization"));
    if (auth.accessKeyId !== credentials.accessKeyId) {
      throw new KmsFault(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    if (auth.service !== "kms") {
      throw new KmsFault(
        "InvalidSignatureException",
        `Credential should be scoped to correct service: 'kms'.`,
      );
    }
    if (auth.region !== region) {
      throw new KmsFault(
        "InvalidSignatureException",
        `Credential should be scoped to a valid region: '${region}'.`,
      );
    }
    if (!auth.signedHeaders.includes("host") || !auth.signedHeaders.includes("x-amz-date")) {
      throw new KmsFault("IncompleteSignatureException", "SignedHeaders must include host and x-amz-date");
    }
    const amzDate = req.headers.get("x-amz-date") ?? "";
    const signingDate = parseAmzDate(amzDate);
    if (!signingDate || !amzDate.startsWith(auth.date)) {
      throw new KmsFault(
        "IncompleteSignatureException",
        "X-Amz-Date is missing or does not match the credential",
      );
    }
    if (Math.abs(Date.now() - signingDate.getTime()) > MAX_CLOCK_SKEW_MS) {
      throw new KmsFault("InvalidSignatureException", "Signature expired");
    }
    const headers: Record<string, string> = {};
    for (const name of auth.signedHeaders) {
      const value = req.headers.get(name);
      if (value === null) {
        throw new KmsFault(
          "IncompleteSignatureException",
          `Signed header '${name}' is missing from the request`,
        );
      }
      headers[name] = value;
    }
    // The signer trusts a present x-amz-content-sha256 as the payload hash, so check it against the body here.
    const declaredHash = headers["x-amz-content-sha256"];
    if (declaredHash !== undefined && declaredHash !== await sha256Hex(bodyBytes)) {
      throw new KmsFault("InvalidSignatureException", "x-amz-content-sha256 does not match the request body");
    }
    const url = new URL(req.url);
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const expected = await signer.sign(
      {
        method: req.method,
        protocol: url.protocol,
        hostname: url.hostname,
        port: url.port ? Number(url.port) : undefined,
        path: url.pathname,
        query,
        headers,
        body: bodyBytes,
      },
      { signingDate, signingRegion: auth.region, signingService: auth.service },
    );
    const expectedSignature = /Signature=([0-9a-f]{64})$/.exec(expected.headers.authorization)?.[1] ?? "";
    if (!timingSafeEqual(expectedSignature, auth.signature)) {
      throw new KmsFault(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided.",
      );
    }
  }

  async function handle(req: Request): Promise<Response> {
    const requestId = crypto.randomUUID();
    const reply = (status: number, body: unknown) =>
      new Response(JSON.stringify(body), {
        status,
        headers: { "content-type": JSON_CONTENT_TYPE, "x-amzn-requestid": requestId },
      });
    try {
      if (req.method !== "POST" || new URL(req.url).pathname !== "/") {
        throw new KmsFault("UnknownOperationException", "KMS accepts only POST /", 404);
      }
      const bodyBytes = new Uint8Array(await req.arrayBuffer());
      await authenticate(req, bodyBytes);
      const contentType = req.headers.get("content-type") ?? "";
      if (contentType.split(";")[0].trim().toLowerCase() !== JSON_CONTENT_TYPE) {
        throw new KmsFault("SerializationException", `Content-Type must be ${JSON_CONTENT_TYPE}`);
      }
      const target = req.headers.get("x-amz-target") ?? "";
      let body: unknown;
      try {
        body = JSON.parse(new TextDecoder().decode(bodyBytes));
      } catch {
        throw new KmsFault("SerializationException", "Request body is not valid JSON");
      }
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        throw new KmsFault("SerializationException", "Request body must be a JSON object");
      }
      calls.push({ target, body });
      const fields = body as Record<string, unknown>;
      switch (target) {
        case `${TARGET_PREFIX}GenerateDataKey`:
          return reply(200, await generateDataKey(fields));
        case `${TARGET_PREFIX}Decrypt`:
          return reply(200, await decrypt(fields));
        default:
          throw new KmsFault("UnknownOperationException", `Unsupported X-Amz-Target '${target}'`);
      }
    } catch (err) {
      if (err instanceof KmsFault) return reply(err.status, { __type: err.type, message: err.message });
      return reply(500, { __type: "KMSInternalException", message: "fake KMS failed: " + String(err) });
    }
  }

  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, handle);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    calls,
    keyArn,
    async close() {
      await server.shutdown();
    },
  };
}
