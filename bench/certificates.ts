/**
 * Throw-away TLS certificates for local HTTPS servers (the bench's `--tls` upstream, the HTTP/2 tests): a CA and
 * a certificate for 127.0.0.1 it signed (a self-signed leaf is refused by rustls as a CA used as an end entity).
 *
 * @example
 * ```ts
 * const { ca, cert, key } = await makeCertificates(await Deno.makeTempDir());
 * const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(ca)] });
 * ```
 */
const decoder = new TextDecoder();

/**
 * A throw-away CA and a certificate signed by it, made with openssl: for 127.0.0.1 and localhost unless `names`
 * (openssl's subjectAltName syntax) says otherwise.
 */
export async function makeCertificates(
  dir: string,
  names = "IP:127.0.0.1,DNS:localhost",
): Promise<{ ca: string; cert: string; key: string }> {
  const run = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
      .output()
      .catch(() => {
        throw new Error("making test certificates needs the openssl command (apt-get install -y openssl)");
      });
    if (!out.success) throw new Error(`openssl ${args[0]}: ${decoder.decode(out.stderr)}`);
  };
  await run(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=bench CA",
  );
  await run(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "key.pem",
    "-out",
    "leaf.csr",
    "-subj",
    "/CN=127.0.0.1",
  );
  await Deno.writeTextFile(
    `${dir}/leaf.ext`,
    `subjectAltName=${names}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  await run(
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "cert.pem",
    "-days",
    "2",
    "-extfile",
    "leaf.ext",
  );
  return { ca: `${dir}/ca.pem`, cert: `${dir}/cert.pem`, key: `${dir}/key.pem` };
}
