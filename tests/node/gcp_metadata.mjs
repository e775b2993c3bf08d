// google-auth-library (v10) as a consumer of the metadata server of `fly-oidc exec`.
//
// Usage: node gcp_metadata.mjs
//
// `new GoogleAuth().getClient()` with no configuration file: it probes the metadata server
// at GCE_METADATA_HOST, picks the Compute client, and `getAccessToken()` fetches the token
// from `.../service-accounts/default/token`. Prints one JSON line:
// {"ok": true, "client", "token", "email", "project"} or {"ok": false, "name", "error"}
// (and exits 3).
import { GoogleAuth } from "google-auth-library";

const fail = (e) => {
  console.log(JSON.stringify({ ok: false, name: e?.name, error: String(e?.message ?? e) }));
  process.exit(3);
};
process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);

try {
  const auth = new GoogleAuth({ scopes: ["https://www.googleapis.com/auth/cloud-platform"] });
  const client = await auth.getClient();
  const { token } = await client.getAccessToken();
  const { client_email: email } = await auth.getCredentials();
  const project = await auth.getProjectId();
  console.log(JSON.stringify({ ok: true, client: client.constructor.name, token, email, project }));
} catch (e) {
  fail(e);
}
