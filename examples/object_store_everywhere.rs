//! The same code writes and reads an object on Amazon S3 and on Google Cloud Storage with
//! [`object_store`], the crate under polars, delta-rs and DataFusion, taking credentials from
//! the environment only: run under `fly-oidc exec`, S3 gets them from the ECS container
//! endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`)
//! and GCS from the metadata server (`GCE_METADATA_HOST`). Then, for a `gs://` URL,
//! google-cloud-rust's metadata-server credentials (`google_cloud_auth::credentials::mds`)
//! fetch an access token the same way.
//!
//! Usage: `object_store_everywhere URL...`, each URL `s3://bucket/key` or `gs://bucket/key`
//! (the bucket must exist). Prints one JSON line per URL:
//! `{"url","put_bytes","got_bytes","same"}`, plus for `gs://` `"google_cloud_auth_token_suffix"`
//! (the last 8 characters of the token google-cloud-auth got, to match against the issuer's
//! records without printing the secret).
//!
//! Other settings come from the variables each library reads: `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`, `AWS_DEFAULT_REGION` (`AmazonS3Builder::from_env`), and
//! `STORAGE_EMULATOR_HOST` (a Cloud Storage emulator such as `gcp-storage-emulator`, given to
//! `GoogleCloudStorageBuilder::with_base_url`; credentials still come from the metadata server).
//!
//! ```text
//! fly-oidc exec --aws-role-arn arn:aws:iam::123456789012:role/app \
//!   --gcp-provider projects/123/locations/global/workloadIdentityPools/fly/providers/acme -- \
//!   object_store_everywhere s3://my-bucket/hello.txt gs://my-bucket/hello.txt
//! ```

use object_store::aws::AmazonS3Builder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload};
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str = "usage: object_store_everywhere s3://bucket/key|gs://bucket/key...";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    fly_oidc_examples::exit_code("object_store_everywhere", run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // object_store's reqwest transport is built with rustls and no bundled provider (one TLS
    // stack in the workspace): install ring's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        return Err(USAGE.into());
    }
    for url in urls {
        let (scheme, rest) = url.split_once("://").ok_or(USAGE)?;
        let (_, key) = rest.split_once('/').ok_or(USAGE)?;
        let store = store(scheme, &url)?;
        let payload = format!("written by object_store_everywhere to {url}\n");
        let path = Path::from(key);
        store
            .put(&path, PutPayload::from(payload.clone().into_bytes()))
            .await?;
        let got = store.get(&path).await?.bytes().await?;
        let mut report = serde_json::json!({
            "url": url,
            "put_bytes": payload.len(),
            "got_bytes": got.len(),
            "same": got.as_ref() == payload.as_bytes(),
        });
        if scheme == "gs" {
            report["google_cloud_auth_token_suffix"] =
                google_cloud_auth_token_suffix().await?.into();
        }
        println!("{report}");
    }
    Ok(())
}

/// The store for `url`: the builders' `from_env` and nothing else, but the emulator's address.
fn store(scheme: &str, url: &str) -> Result<Arc<dyn ObjectStore>, Box<dyn std::error::Error>> {
    Ok(match scheme {
        "s3" => Arc::new(AmazonS3Builder::from_env().with_url(url).build()?),
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env().with_url(url);
            #[allow(clippy::disallowed_methods)] // an example reads its real environment
            if let Ok(emulator) = std::env::var("STORAGE_EMULATOR_HOST") {
                builder = builder
                    .with_base_url(&emulator)
                    .with_client_options(ClientOptions::new().with_allow_http(true));
            }
            Arc::new(builder.build()?)
        }
        _ => return Err(USAGE.into()),
    })
}

/// An access token from google-cloud-rust's metadata-server credentials (they find the server
/// through `GCE_METADATA_HOST`): its last 8 characters.
async fn google_cloud_auth_token_suffix() -> Result<String, Box<dyn std::error::Error>> {
    let credentials =
        google_cloud_auth::credentials::mds::Builder::default().build_access_token_credentials()?;
    let token = credentials.access_token().await?.token;
    let start = token.len().saturating_sub(8);
    Ok(token.get(start..).unwrap_or_default().to_owned())
}
