//! The flags of the commands that configure a provider or the credential server, declared
//! once as `clap::Args` and each mapped onto its library builder method here: `aws`
//! (credential-process, env), `gcp` (executable, credential-config, access-token) and `serve`
//! (serve, exec, and doctor's cloud flags).

pub mod aws;
pub mod gcp;
pub mod serve;
