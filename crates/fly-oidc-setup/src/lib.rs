//! # fly-oidc-setup
//!
//! Set-up and diagnosis for [fly-oidc](https://crates.io/crates/fly-oidc): what the `fly-oidc`
//! binary's `token --verify`, `aws setup`, `aws check-trust-policy`, `gcp setup`,
//! `gcp check-condition` and `doctor` do, as a library. It lives apart from the provider
//! crates so that their users never compile the CEL interpreter it needs.
//!
//! - [`verify`]: a token's signature against its issuer's JWKS (OpenID Connect Discovery
//!   from `iss`, or a JWKS URL), and its time claims.
//! - [`subject`]: the org and app the cloud side trusts, from flags or saved claims.
//! - [`aws_setup`] and [`trust_policy`]: the IAM OIDC provider and role; would a trust policy
//!   accept a token?
//! - [`check`]: what stands in for a live token, the set-up's org and app, and the
//!   `check-*` commands up to their report.
//! - [`doctor`]: the steps of `fly-oidc doctor` and their report (text and JSON).
//! - [`gcp_setup`] and [`condition`]: the workload identity pool and provider; would an
//!   attribute condition accept a token?
//!
//! With the `clap` feature, the options of the set-up and the checks
//! ([`aws_setup::AwsSetupOptions`], [`gcp_setup::GcpSetupOptions`],
//! [`check::TrustPolicyCheck`], [`check::ConditionCheck`], [`check::StandIn`]) derive
//! `clap::Args`: they are the flags of the binary's commands.
#![warn(missing_docs)]

pub mod aws_setup;
pub mod check;
pub mod condition;
pub mod doctor;
pub mod gcp_setup;
pub mod subject;
pub mod trust_policy;
pub mod verify;
