//! More real consumers through `fly-oidc exec`, with no config file and no code change: each
//! finds the server through the variables `exec` sets, and the server's own log (`--verbose`:
//! one `answered` line per request, with path, query and status) shows that it asked there.
//! - Node.js: the AWS SDK v3's default chain (its container provider) against moto;
//!   google-auth-library v10's `GoogleAuth` finding the metadata server (`GCE_METADATA_HOST`).
//! - Rust: `object_store`'s `AmazonS3Builder::from_env()` (moto's S3) and
//!   `GoogleCloudStorageBuilder::from_env()` (`gcp-storage-emulator`), and google-cloud-rust's
//!   metadata-server credentials, in the `object_store_everywhere` example.
//!
//! Needs the built binary and examples, `moto_server`, `aws`, node with `tests/node/node_modules`
//! and `gcp-storage-emulator` (a missing tool skips the test locally and fails it in CI).
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::node_consumers::{answer, node_dir};
use crate::server_exec::{example, exec_aws, exec_google, gcp_flags, google_setup, script};
use crate::support::{
    ROLE, SA, Sandbox, assert_success, describe, last_json, lists_bucket, stderr,
};
use fly_oidc_testkit::google::Endpoint;
use fly_oidc_tests::Secrets;
use fly_oidc_tests::aws::{Moto, bucket_name};
use fly_oidc_tests::gcp::StorageEmulator;
use fly_oidc_tests::gcp::service_account_of;
use serde_json::Value;
use std::process::Output;

const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

/// The server's `answered` log lines (stderr of `fly-oidc --verbose exec`) for `path` with
/// status 200 whose query contains `query`.
fn served(out: &Output, path: &str, query: &str) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("answered") && l.contains("status=200"))
        .filter(|l| l.contains(&format!("path={path} ")) || l.contains(&format!("path=\"{path}\"")))
        .filter(|l| l.contains(query))
        .map(str::to_owned)
        .collect()
}

#[test]
fn node_aws_sdk_default_chain_gets_credentials_from_the_container_endpoint() {
    let Some(dir) = node_dir() else { return };
    let Some(moto) = Moto::start() else { return };
    let fly = crate::support::acme_web();
    let sandbox = Sandbox::new(&fly, moto.endpoint());
    let bucket = bucket_name("exec-node");
    let script = dir.join("aws_process.mjs");
    let out = exec_aws(
        &sandbox,
        &[
            "node",
            script.to_str().unwrap(),
            "--default-chain",
            moto.endpoint(),
            &bucket,
        ],
    );
    let result = answer(&out);
    assert!(out.status.success(), "{result}: {}", describe(&out));
    assert_eq!(result["ok"], true, "{result}");
    let arn = result["arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:sts::123456789012:assumed-role/fly-app/"),
        "{arn}"
    );
    assert!(lists_bucket(&result, &bucket), "{result}");
    assert!(
        result["expiration"].as_str().unwrap().ends_with('Z'),
        "the container endpoint's Expiration: {result}"
    );
    // The SDK (two clients, one default chain each) asked our container endpoint; one Fly
    // token and one STS exchange served them.
    assert!(
        !served(&out, "/v1/aws/credentials", "").is_empty(),
        "{}",
        describe(&out)
    );
    assert_eq!(fly.request_count(), 1);
    Secrets::of_fly(&fly).assert_absent("stderr", &stderr(&out));
}

#[test]
fn node_google_auth_library_finds_the_metadata_server() {
    let Some(dir) = node_dir() else { return };
    let (fly, google) = google_setup(Some(SA));
    let script = dir.join("gcp_metadata.mjs");
    let out = exec_google(
        &fly,
        &google,
        &["--gcp-project", "my-project", "--gcp-service-account", SA],
        &["node", script.to_str().unwrap()],
    );
    let result = answer(&out);
    assert!(out.status.success(), "{result}: {}", describe(&out));
    assert_eq!(result["ok"], true, "{result}");
    // The Compute client: GoogleAuth detected "on GCE" by probing GCE_METADATA_HOST.
    assert_eq!(result["client"], "Compute", "{result}");
    assert_eq!(result["email"], SA, "{result}");
    assert_eq!(result["project"], "my-project", "{result}");
    let token = result["token"].as_str().unwrap();
    assert_eq!(service_account_of(&google, token).as_deref(), Some(SA));
    assert!(
        !served(&out, TOKEN_PATH, "").is_empty(),
        "{}",
        describe(&out)
    );
    assert_eq!(google.request_count(), 1, "one exchange at start");
    Secrets::of_fly(&fly)
        .with("the token it served", token)
        .assert_absent("stderr", &stderr(&out));
}

/// object_store's S3 and GCS stores and google-cloud-auth's metadata credentials, in one
/// process under one `exec` serving both clouds.
#[test]
fn object_store_and_google_cloud_auth_put_and_get_on_s3_and_gcs() {
    if !fly_oidc_tests::require_tool("aws") {
        return;
    }
    let Some(moto) = Moto::start() else { return };
    let bucket = bucket_name("exec-object-store");
    let home = tempfile::tempdir().unwrap();
    // Letters only: object_store percent-encodes `-`, `_` and `.` in the path, which
    // the emulator's routes do not decode.
    let gcs_bucket = "execobjectstore";
    let Some(emulator) = StorageEmulator::start(home.path(), gcs_bucket) else {
        return;
    };
    // No service account: the federated token itself is served.
    let (fly, google) = google_setup(None);
    let mut sandbox = Sandbox::new(&fly, moto.endpoint());
    sandbox.set("AWS_ALLOW_HTTP", "true");
    sandbox.set("STORAGE_EMULATOR_HOST", &emulator.url());
    let bin = example("object_store_everywhere");
    // The bucket on moto comes from the AWS CLI (object_store creates no buckets), itself
    // through the container endpoint.
    let script = format!(
        "aws s3api create-bucket --bucket {bucket} >/dev/null && exec {} s3://{bucket}/dir/hello.txt gs://{gcs_bucket}/dir/hello.txt",
        bin.display()
    );
    let (sts, iam) = (google.sts_url(), google.iam_url());
    let mut args = vec!["--verbose", "exec", "--aws-role-arn", ROLE];
    args.extend(gcp_flags(&google, &sts, &iam));
    args.extend(["--", "sh", "-c", &script]);
    let out = sandbox.fly_oidc(&args);
    assert_success(&out, "object_store_everywhere under exec");
    let reports: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 2, "{}", describe(&out));
    for report in &reports {
        assert_eq!(report["same"], true, "read back what was written: {report}");
        assert!(report["got_bytes"].as_u64().unwrap() > 0, "{report}");
    }
    assert_eq!(
        reports[0]["url"],
        format!("s3://{bucket}/dir/hello.txt"),
        "{reports:?}"
    );

    // S3: object_store's container provider read the token file and asked our endpoint.
    assert!(
        !served(&out, "/v1/aws/credentials", "").is_empty(),
        "{}",
        describe(&out)
    );
    // GCS: the emulator ignores Authorization, so the proof is on our side: object_store
    // asked the token endpoint (its request carries `?audience=`), google-cloud-auth asked it
    // too (no query), and both got the one token the fake Google issued at start.
    let object_store_asks = served(&out, TOKEN_PATH, "audience=https");
    assert_eq!(object_store_asks.len(), 1, "{}", describe(&out));
    let all_asks = served(&out, TOKEN_PATH, "");
    assert_eq!(all_asks.len(), 2, "{all_asks:?}");
    assert_eq!(
        google.request_count(),
        1,
        "one exchange served both clients"
    );
    let suffix = reports[1]["google_cloud_auth_token_suffix"]
        .as_str()
        .unwrap();
    assert_eq!(suffix.len(), 8, "{reports:?}");
    let issued = google.issued_tokens();
    assert!(
        issued.len() == 1 && issued[0].ends_with(suffix),
        "google-cloud-auth got the token fly-oidc serves"
    );
    Secrets::of_fly(&fly)
        .with("the token it served", &issued[0])
        .assert_absent("stderr", &stderr(&out));
}

/// python google-auth's two ways to an ID token on Google Cloud, both answered by our
/// `identity?audience=` endpoint with one `generateIdToken` call; without a service account
/// the endpoint says what is missing.
#[test]
fn python_google_auth_gets_id_tokens_from_the_identity_endpoint() {
    if fly_oidc_tests::python_with(&["google.auth", "requests"], "google-auth requests").is_none() {
        return;
    }
    let audience = "https://my-service.example.com";
    let (fly, google) = google_setup(Some(SA));
    let script = script("google_id_token.py");
    let out = exec_google(
        &fly,
        &google,
        &["--gcp-service-account", SA],
        &["python3", script.to_str().unwrap(), audience],
    );
    assert_success(&out, "google-auth ID tokens under exec");
    let value = last_json(&out);
    let token = value["fetched"].as_str().unwrap();
    assert_eq!(value["credentials"], token, "one cached token per audience");
    assert_eq!(value["second"], token);
    let claims = fly_oidc_testkit::verify_rs256(token, &google.id_token_jwks()).unwrap();
    assert_eq!(claims["aud"], audience);
    assert_eq!(claims["email"], SA);
    let id_calls = google
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::GenerateIdToken)
        .count();
    assert_eq!(id_calls, 1, "three requests, one generateIdToken");
    let identity = "/computeMetadata/v1/instance/service-accounts/default/identity";
    assert_eq!(
        served(&out, identity, "audience=").len(),
        3,
        "{}",
        describe(&out)
    );
    Secrets::of_fly(&fly)
        .with("the token it served", token)
        .assert_absent("stderr", &stderr(&out));

    let (fly, google) = google_setup(None);
    let probe = "import os, urllib.request as u, urllib.error as e\n\
                 r = u.Request('http://' + os.environ['GCE_METADATA_HOST'] + '/computeMetadata/v1/instance/service-accounts/default/identity?audience=x', headers={'Metadata-Flavor': 'Google'})\n\
                 try:\n    u.urlopen(r)\nexcept e.HTTPError as x:\n    print(x.code, x.read().decode())";
    let out = exec_google(&fly, &google, &[], &["python3", "-c", probe]);
    assert_success(&out, "probing identity without a service account");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("404 "), "{stdout}");
    assert!(stdout.contains("--gcp-service-account"), "{stdout}");
}
