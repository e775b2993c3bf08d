//! The flags of the commands that configure a provider or the credential server, declared
//! once as `clap::Args` and each mapped onto its library builder method here: `aws`
//! (credential-process, env), `gcp` (executable, credential-config, access-token) and `serve`
//! (serve, exec, and doctor's cloud flags).

pub mod aws;
pub mod gcp;
pub mod serve;

/// `set(builder, value)` when a value is given, else the builder as it is: how a flag or an
/// option field is mapped onto a builder method, one line each, so every mapping reads the same.
pub trait SetIf: Sized {
    /// `set(self, value)` when `value` is `Some`, else `self` unchanged.
    fn set_if<T>(self, value: Option<T>, set: impl FnOnce(Self, T) -> Self) -> Self {
        match value {
            Some(value) => set(self, value),
            None => self,
        }
    }
}

impl<B> SetIf for B {}

#[cfg(test)]
pub(crate) mod tests {
    use fly_oidc::{Env, ProviderConfig};

    /// `env`, and a Fly token client that is not on a Fly Machine: what the options' tests
    /// build with.
    pub(crate) fn config(env: &Env) -> ProviderConfig {
        ProviderConfig::default()
            .with_env(env.clone())
            .with_fly_client(fly_oidc_tests::not_on_fly_client())
    }
}
