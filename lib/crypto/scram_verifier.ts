/**
 * A PostgreSQL SCRAM-SHA-256 password verifier (RFC 5802/7677, the form `pg_authid.rolpassword` stores), made
 * on the client so that `CREATE ROLE … PASSWORD` carries no password: a statement that reaches the server's log
 * (`log_statement = ddl`, or an error) then shows only what the server would store anyway. psql's `\password`
 * does the same.
 *
 * @example
 * ```ts
 * await scramVerifier("s3cret"); // "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"
 * ```
 */
export async function scramVerifier(
  password: string,
  opts: { salt?: Uint8Array; iterations?: number } = {},
): Promise<string> {
  // PostgreSQL runs the password through SASLprep, which leaves printable ASCII as it is; anything else would
  // need a full SASLprep to give the verifier the server expects.
  if (!/^[\x20-\x7e]+$/.test(password)) {
    throw new Error("the database password must be printable ASCII (got other characters, or none)");
  }
  const salt = opts.salt ?? crypto.getRandomValues(new Uint8Array(16));
  const iterations = opts.iterations ?? 4096;
  const encoder = new TextEncoder();
  const pbkdf2Key = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const salted = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: salt as Uint8Array<ArrayBuffer>, iterations },
      pbkdf2Key,
      256,
    ),
  );
  const hmacKey = await crypto.subtle.importKey("raw", salted, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const clientKey = new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, encoder.encode("Client Key")));
  const serverKey = new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, encoder.encode("Server Key")));
  const storedKey = new Uint8Array(await crypto.subtle.digest("SHA-256", clientKey));
  const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
  return `SCRAM-SHA-256$${iterations}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`;
}
