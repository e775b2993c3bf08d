//! List the objects of a Cloud Storage bucket with a Google access token obtained from the
//! Fly Machine's OIDC token (Workload Identity Federation), one `name<TAB>size` per line.
//!
//! Configured by the environment:
//! - `FLY_OIDC_GCP_PROVIDER`: the workload identity pool provider,
//!   `projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id>`;
//! - `FLY_OIDC_GCP_SERVICE_ACCOUNT` (optional): a service account to impersonate;
//! - `STORAGE_EMULATOR_HOST` (optional): a Cloud Storage emulator such as `gcp-storage-emulator`
//!   (`http://127.0.0.1:9023`), instead of `https://storage.googleapis.com`;
//! - `FLY_OIDC_GCP_STS_URL` / `FLY_OIDC_GCP_IAM_URL` (optional, for tests): other Google endpoints;
//! - the Fly token source (on a Fly Machine: nothing; elsewhere `FLY_API_HOSTNAME` +
//!   `FLY_API_TOKEN`, or `FLY_OIDC_TOKEN_FILE`).
//!
//! ```text
//! FLY_OIDC_GCP_PROVIDER=projects/123456789/locations/global/workloadIdentityPools/fly/providers/acme \
//!   cargo run -p fly-oidc-examples --example gcs_list_objects -- my-bucket [prefix]
//! ```

use fly_oidc::Env;
use fly_oidc_gcp::GcpTokenProvider;
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: gcs_list_objects <bucket> [prefix]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    fly_oidc_examples::exit_code("gcs_list_objects", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bucket = args.next().ok_or(USAGE)?;
    let prefix = args.next();
    let env = Env::real();

    // 1. Fly token -> Google STS (-> service account): an access token, cached and refreshed.
    let mut builder = GcpTokenProvider::builder()
        .configure(&fly_oidc::ProviderConfig::default().with_env(env.clone()));
    if let Some(url) = env.get("FLY_OIDC_GCP_STS_URL") {
        builder = builder.sts_url(url);
    }
    if let Some(url) = env.get("FLY_OIDC_GCP_IAM_URL") {
        builder = builder.iam_url(url);
    }
    let provider = builder
        .scope("https://www.googleapis.com/auth/devstorage.read_only")
        .build()?;

    // 2. The Cloud Storage JSON API: objects.list, page by page.
    let base = storage_base(env.get("STORAGE_EMULATOR_HOST"))?;
    let http = fly_oidc::https_client(&env, Duration::from_secs(5), Duration::from_secs(30))?;
    let mut page_token: Option<String> = None;
    loop {
        let mut url = reqwest::Url::parse(&format!("{base}/storage/v1/b/{bucket}/o"))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("fields", "items(name,size),nextPageToken");
            if let Some(prefix) = &prefix {
                query.append_pair("prefix", prefix);
            }
            if let Some(token) = &page_token {
                query.append_pair("pageToken", token);
            }
        }
        let token = provider.access_token().await?;
        let response = http
            .get(url)
            .bearer_auth(token.expose_secret())
            .send()
            .await?;
        let status = response.status();
        let body: Value = serde_json::from_slice(&response.bytes().await?).map_err(|e| {
            format!("Cloud Storage answered {status} with a body that is not JSON ({e})")
        })?;
        if !status.is_success() {
            let message = body["error"]["message"].as_str().unwrap_or("no message");
            return Err(format!("Cloud Storage answered {status}: {message}").into());
        }
        for item in body["items"].as_array().into_iter().flatten() {
            let name = item["name"].as_str().unwrap_or_default();
            // The JSON API writes sizes as strings.
            let size = match &item["size"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("{name}\t{size}");
        }
        match body["nextPageToken"].as_str() {
            Some(next) if !next.is_empty() => page_token = Some(next.to_owned()),
            _ => return Ok(()),
        }
    }
}

/// `https://storage.googleapis.com`, or the emulator (`STORAGE_EMULATOR_HOST`, plain http only
/// on loopback).
fn storage_base(emulator: Option<String>) -> Result<String, String> {
    let Some(host) = emulator else {
        return Ok("https://storage.googleapis.com".to_owned());
    };
    let with_scheme = if host.contains("://") {
        host.clone()
    } else {
        format!("http://{host}")
    };
    let url = reqwest::Url::parse(&with_scheme)
        .map_err(|e| format!("STORAGE_EMULATOR_HOST {host:?}: {e}"))?;
    let loopback = url
        .host_str()
        .is_some_and(fly_oidc::endpoint::is_trusted_plain_http_host);
    if url.scheme() == "http" && !loopback {
        return Err(format!(
            "STORAGE_EMULATOR_HOST {host:?}: plain http is only used for loopback; the access token must not travel unencrypted"
        ));
    }
    Ok(with_scheme.trim_end_matches('/').to_owned())
}
