//! An HTTPS client for the STS SDK client that is only built when a request is made.
//!
//! Building [`fly_oidc_aws::https_client`] reads the platform's root certificates (about 150
//! files on Debian): a few milliseconds that a cache hit, which never calls STS, should not
//! pay.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::sync::OnceLock;

/// Wraps [`fly_oidc_aws::https_client`], created on first use.
#[derive(Debug, Default)]
pub struct LazyHttpsClient {
    inner: OnceLock<SharedHttpClient>,
}

impl LazyHttpsClient {
    /// A shared client for `Builder::http_client`.
    pub fn shared() -> SharedHttpClient {
        SharedHttpClient::new(Self::default())
    }

    /// Whether the real client has been built (for tests).
    #[cfg(test)]
    fn is_built(&self) -> bool {
        self.inner.get().is_some()
    }
}

impl HttpClient for LazyHttpsClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.inner
            .get_or_init(fly_oidc_aws::https_client)
            .http_connector(settings, components)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_built_until_used() {
        let client = LazyHttpsClient::default();
        assert!(!client.is_built());
        // Building a provider with it does not build it either.
        let _provider = fly_oidc_aws::FlyOidcCredentialsProvider::builder()
            .env(fly_oidc::Env::from_slice(&[]))
            .role_arn("arn:aws:iam::123456789012:role/app")
            .http_client(LazyHttpsClient::shared())
            .build()
            .unwrap();
        assert!(!client.is_built());
    }
}
