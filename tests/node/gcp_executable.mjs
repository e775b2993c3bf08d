// google-auth-library (v10) as a consumer of `fly-oidc gcp executable`.
//
// Usage: node gcp_executable.mjs [SCOPE...]
//
// Finds the credential configuration the way applications do (GOOGLE_APPLICATION_CREDENTIALS,
// an executable-sourced external_account file from `fly-oidc gcp credential-config`), runs
// its command (GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 must be set), exchanges the Fly
// token at the configured token_url and, if configured, impersonates the service account.
// Prints one JSON line: {"ok": true, "client", "token"} or {"ok": false, "name", "error"}
// (and exits 3).
import { GoogleAuth } from "google-auth-library";

// Errors raised outside the awaited calls (a failed spawn) are reported the same way.
const fail = (e) => {
  console.log(JSON.stringify({ ok: false, name: e?.name, error: String(e?.message ?? e) }));
  process.exit(3);
};
process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);

const scopes = process.argv.slice(2);
try {
  const auth = new GoogleAuth({
    scopes: scopes.length > 0 ? scopes : ["https://www.googleapis.com/auth/cloud-platform"],
  });
  const client = await auth.getClient();
  const { token } = await client.getAccessToken();
  console.log(JSON.stringify({ ok: true, client: client.constructor.name, token }));
} catch (e) {
  fail(e);
}
