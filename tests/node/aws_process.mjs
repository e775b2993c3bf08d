// The AWS SDK for JavaScript v3 as a consumer of `fly-oidc aws credential-process`.
//
// Usage: node aws_process.mjs PROFILE ENDPOINT BUCKET
//
// Credentials come from `fromProcess({ profile })`, which reads the profile's
// `credential_process` line from ~/.aws/config (HOME, or AWS_CONFIG_FILE) and runs it; with
// PROFILE `--default-chain`, from the default chain as every client has it with no options
// (`fromNodeProviderChain()`; the S3 client gets no `credentials`): under `fly-oidc exec`
// its container provider reads AWS_CONTAINER_CREDENTIALS_FULL_URI and
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE. With them it calls STS GetCallerIdentity, then S3 CreateBucket and ListBuckets, at
// ENDPOINT (moto_server). Prints one JSON line: {"ok": true, "arn", "account", "buckets",
// "expiration"} or {"ok": false, "name", "error"} (and exits 3).
import { fromNodeProviderChain, fromProcess } from "@aws-sdk/credential-providers";
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { S3Client, CreateBucketCommand, ListBucketsCommand } from "@aws-sdk/client-s3";

// Errors raised outside the awaited calls (a failed spawn) are reported the same way.
const fail = (e) => {
  console.log(JSON.stringify({ ok: false, name: e?.name, error: String(e?.message ?? e) }));
  process.exit(3);
};
process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);

const [profile, endpoint, bucket] = process.argv.slice(2);
try {
  const defaultChain = profile === "--default-chain";
  const credentials = defaultChain ? fromNodeProviderChain() : fromProcess({ profile });
  const region = "us-east-1";
  const sts = new STSClient({ region, endpoint, credentials });
  const identity = await sts.send(new GetCallerIdentityCommand({}));
  const s3 = defaultChain
    ? new S3Client({ region, endpoint, forcePathStyle: true })
    : new S3Client({ region, endpoint, credentials, forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const listed = await s3.send(new ListBucketsCommand({}));
  const resolved = await s3.config.credentials();
  console.log(
    JSON.stringify({
      ok: true,
      arn: identity.Arn,
      account: identity.Account,
      buckets: (listed.Buckets ?? []).map((b) => b.Name),
      expiration: resolved.expiration ? resolved.expiration.toISOString() : null,
    }),
  );
} catch (e) {
  fail(e);
}
