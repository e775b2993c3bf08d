// The AWS SDK for JavaScript v3's default credential chain as a consumer of `fly-oidc exec`.
//
// Usage: node aws_default_chain.mjs ENDPOINT BUCKET
//
// Credentials come from `fromNodeProviderChain()` with no options, as every client's default:
// under `fly-oidc exec` its container provider reads AWS_CONTAINER_CREDENTIALS_FULL_URI and
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE. The S3 client is built without `credentials`, so it
// resolves them through the same default chain. With them it calls STS GetCallerIdentity, then
// S3 CreateBucket and ListBuckets at ENDPOINT (moto_server). Prints one JSON line:
// {"ok": true, "arn", "account", "buckets", "expiration"} or {"ok": false, "name", "error"}
// (and exits 3).
import { fromNodeProviderChain } from "@aws-sdk/credential-providers";
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { S3Client, CreateBucketCommand, ListBucketsCommand } from "@aws-sdk/client-s3";

const fail = (e) => {
  console.log(JSON.stringify({ ok: false, name: e?.name, error: String(e?.message ?? e) }));
  process.exit(3);
};
process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);

const [endpoint, bucket] = process.argv.slice(2);
try {
  const region = "us-east-1";
  const sts = new STSClient({ region, endpoint, credentials: fromNodeProviderChain() });
  const identity = await sts.send(new GetCallerIdentityCommand({}));
  const s3 = new S3Client({ region, endpoint, forcePathStyle: true });
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
