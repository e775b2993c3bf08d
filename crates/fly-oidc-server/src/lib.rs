//! # fly-oidc-server
//!
//! A loopback credential server for [Fly.io](https://fly.io) Machines. One process holds
//! federated credentials (from Fly OIDC tokens, through [`fly_oidc_aws`] and [`fly_oidc_gcp`])
//! and serves them in the two protocols every cloud SDK already speaks, so apps in any
//! language need no config file:
//!
//! - the **ECS container-credentials** endpoint for AWS (`AWS_CONTAINER_CREDENTIALS_FULL_URI`
//!   and `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, the plain `AWS_CONTAINER_AUTHORIZATION_TOKEN`
//!   only on request, `--aws-auth-token-env`): the default role at `/v1/aws/credentials`,
//!   and every role at `/v1/aws/roles/<role-name>`;
//! - the **GCE metadata server** for Google (`GCE_METADATA_HOST`, `GCE_METADATA_IP`);
//! - **token files**: a Fly OIDC token kept fresh in a file, for tools that read one.
//!
//! This is what `fly-oidc exec` and `fly-oidc serve` run (the `fly-oidc` command runs `exec`'s
//! child and writes `serve`'s env file; a [`FileRecord`] names the token files written here).
//!
//! ```no_run
//! use fly_oidc_server::Server;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let role = fly_oidc_aws::FlyOidcCredentialsProvider::builder()
//!     .role_arn("arn:aws:iam::123456789012:role/my-fly-app")
//!     .build()?;
//! let server = Server::builder()
//!     .aws_role(role)
//!     .listen("127.0.0.1:0".parse()?)
//!     .start()
//!     .await?;
//! println!("AWS_CONTAINER_CREDENTIALS_FULL_URI={}", server.aws_credentials_uri().unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! ## Endpoints
//!
//! | path | answer |
//! |---|---|
//! | `GET /v1/aws/credentials`, `/v1/aws/roles/<role-name>` | `{"AccessKeyId","SecretAccessKey","Token","Expiration","AccountId"}` with the exact `Authorization` token (compared in constant time); no token: 401, a wrong one: 403, both with `{"code","message"}` |
//! | `GET /` | 200, `Metadata-Flavor: Google`, whatever the request carries (SDKs probe it) |
//! | `/computeMetadata/v1/instance/service-accounts/{default,<email>}/token[?scopes=a,b]` | `{"access_token","expires_in","token_type":"Bearer"}` |
//! | `.../service-accounts/` (`?recursive=true`) | `default/` and the account's own name (as JSON, each described) |
//! | `.../service-accounts/default/?recursive=true` | `{"aliases":["default"],"email","scopes"}` |
//! | `.../service-accounts/default/email`, `/scopes`, `/aliases` | text |
//! | `/computeMetadata/v1/project/project-id` | the configured project id, else 404 |
//! | `/computeMetadata/v1/project/numeric-project-id` | the project number of the workload identity pool provider |
//! | `/computeMetadata/v1/universe/universe-domain` | `googleapis.com` |
//! | `.../service-accounts/default/identity?audience=A` | with a service account, its Google-signed ID token for `A` (IAM Credentials `generateIdToken` with the shared federated token; see *Client-chosen keys*); 404 without one |
//! | `GET /healthz` | `{"status":"ok"|"degraded","credentials":[{"kind","name","state","expires_at","last_success","last_error","fetches"}]}`: per-credential state, never a secret; without the credentials' names and errors to a request naming another host |
//!
//! Every `/computeMetadata/...` request needs `Metadata-Flavor: Google` (exactly so) and no
//! `X-Forwarded-For` or `Forwarded` (else 403), and every answer there carries
//! `Metadata-Flavor: Google`; unknown paths answer 404 and unknown query parameters are
//! ignored. `?scopes=` other than the configured scopes gets its own token through
//! [`Builder::gcp_scoped`] (400 without it).
//!
//! **Without a service account**, the token endpoint serves the federated token of Google's
//! STS itself, under an account name of its own,
//! `<provider-id>.<pool>@<project-number>.fly-oidc.invalid`: the federated principal has no
//! email, and gcloud lists accounts from `service-accounts/`, skipping `default`, so the listing,
//! `email` and `?recursive=true` name that account, whose `token` is served at that name and at
//! `default`; `identity` answers 404.
//!
//! ## Client-chosen keys and the upstream budget
//!
//! `?scopes=` sets and `identity?audience=` values get tokens of their own, fetched on first
//! request, in bounded caches (16 scope sets, 64 audiences): a new key always gets a place, an
//! entry with no valid token (failing, or waiting for its first) or else the least recently
//! used making room, and the configured token is never evicted. No lock is held across a fetch, so one key's slow fetch delays no other
//! answer. Each key is renewed in the background only while clients still ask for it. A
//! permanent refusal is answered with the upstream's own 4xx (IAM's 403 for a denied
//! permission, 400 for an invalid scope or audience) and `{"code","message"}`, kept as the
//! answer for 5 minutes, and never retried in the background; 503 is only for what is
//! transient. Every derived token reuses the Fly token and the federated token while valid
//! ([`fly_oidc_gcp::GcpTokenProvider::with_scopes`]), and the Machines API is asked at most
//! about once a second in all ([`fly_oidc::budget`]), renewals first. A key not held costs an
//! upstream call only with a turn in the budget of new keys ([`Builder::new_key_rate`]), so
//! junk keys cycled through the caches cost Google no more than that rate.

//! ## Security
//!
//! - `127.0.0.1` only: [`Builder::start`] refuses any other listen address, `[::1]` and other
//!   `127.x` included, since not every SDK accepts them in `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
//! - The AWS endpoints need the random authorization token (256 bits); requests for
//!   credentials, tokens or account data must carry a `Host` naming the listen address or
//!   `localhost` (DNS rebinding), and an absolute-form target (`GET http://host/...`) must
//!   name the same: else 403. `/` and `/healthz` answer any `Host` (`/healthz` without the
//!   credentials' names to another host). A request with more than one `Host` gets 400.
//! - Request heads are capped at 16 KiB and must arrive within 5 s; bodies are never read.
//! - Hostile local clients cannot lock others out: connections are capped (the idlest closed
//!   to make room for a new one), each has an idle, header, write and total-life limit, and
//!   idle ones hold no HTTP buffers ([`ConnectionLimits`]).
//! - No secret in logs, `/healthz` or error bodies.
//!
//! ## Refresh
//!
//! Each credential is fetched once at [`Builder::start`], then renewed in the background when
//! less than min(20 minutes, half its lifetime) remains, so what is handed out keeps more
//! than botocore's 15 minutes whenever the session allows. Requests are answered from memory
//! and never wait on STS; after a failed renewal the last good credentials are served while
//! valid (static stability), with jittered retries (1 s up to 30 s). Once they have expired,
//! requests get a JSON 503 at once (a permanent refusal: its 4xx), naming the last error. One
//! exchange serves every client.
#![warn(missing_docs)]

mod conn;
mod handler;
mod record;
mod routes;
mod server;
mod slot;

pub use conn::ConnectionLimits;
pub use fly_oidc::fs::FileOwner;
pub use record::FileRecord;
pub use server::{Builder, Error, ErrorKind, Server, check_listen};

/// Request routing and handling, exposed for the fuzz target. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::handler::fuzz_harness::{Answer, Harness};
}
