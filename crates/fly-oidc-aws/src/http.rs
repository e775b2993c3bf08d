//! The HTTP client for STS: rustls on the `ring` crypto provider, built on first use.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use fly_oidc::Env;
use std::sync::{Arc, OnceLock};

/// An HTTPS client for the AWS SDK with rustls on the `ring` crypto provider (no aws-lc),
/// trusting the system's root certificates, else the Mozilla roots bundled with fly-oidc
/// (with one warning; see [`fly_oidc::tls`]), as the Fly token and Google clients do. Plain
/// `http://` works too (for emulators on loopback).
///
/// Build it once and share it: every client built from it shares one connection pool. Pass
/// it to [`Builder::http_client`](crate::Builder::http_client), and to
/// `aws_config::defaults(..).http_client(..)` so the whole SDK uses the same TLS stack.
pub fn https_client() -> SharedHttpClient {
    https_client_with_env(&Env::real())
}

/// [`https_client`] reading `SSL_CERT_FILE`/`SSL_CERT_DIR` from `env`.
pub(crate) fn https_client_with_env(env: &Env) -> SharedHttpClient {
    let roots = fly_oidc::tls::RootCertificates::load(env);
    // The same roots as the reqwest clients, as PEM; the SDK's own loading of the system's
    // store (and its empty-store warning) is switched off.
    let trust_store = aws_smithy_http_client::tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(roots.to_pem());
    let builder = aws_smithy_http_client::Builder::new().tls_provider(
        aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ),
    );
    match aws_smithy_http_client::tls::TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
    {
        Ok(context) => builder.tls_context(context).build_https(),
        // Building a context never fails in aws-smithy-http-client 1.5; keep its default
        // (the system's store) if a later version starts to.
        Err(error) => {
            tracing::warn!(%error, "could not set the TLS trust store; using the AWS SDK's default");
            builder.build_https()
        }
    }
}

/// [`https_client`], built when the first request is made: building it reads the platform's
/// root certificates (about 150 files on Debian), a few milliseconds that a caller who never
/// calls STS (a `credential_process` cache hit) should not pay. Clones share it. The provider
/// uses one unless [`Builder::http_client`](crate::Builder::http_client) says otherwise
/// (reading `SSL_CERT_FILE`/`SSL_CERT_DIR` from the provider's [`Env`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct LazyHttpsClient {
    inner: Arc<OnceLock<SharedHttpClient>>,
    env: Env,
}

impl LazyHttpsClient {
    /// A shared client reading `SSL_CERT_FILE`/`SSL_CERT_DIR` from `env`.
    pub(crate) fn shared_with_env(env: Env) -> SharedHttpClient {
        SharedHttpClient::new(Self {
            inner: Arc::default(),
            env,
        })
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
            .get_or_init(|| https_client_with_env(&self.env))
            .http_connector(settings, components)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fly_oidc_testkit::FakeFlyApi;
    use fly_oidc_testkit::aws_sts::FakeSts;

    #[test]
    fn built_on_the_first_request_only() {
        let fly = FakeFlyApi::builder().start_blocking().unwrap();
        let sts = FakeSts::builder().start_blocking().unwrap();
        let lazy = LazyHttpsClient::default();
        let fly_client = fly_oidc::FlyOidcClient::builder()
            .configure(
                &fly_oidc::ProviderConfig::default().with_env(fly_oidc::Env::from_slice(&[])),
            )
            .socket(fly.socket_path())
            .build()
            .unwrap();
        let provider = crate::FlyOidcCredentialsProvider::builder()
            .configure(
                &fly_oidc::ProviderConfig::default()
                    .with_env(fly_oidc::Env::from_slice(&[]))
                    .with_fly_client(fly_client),
            )
            .role_arn("arn:aws:iam::123456789012:role/app")
            .endpoint_url(sts.url())
            .http_client(SharedHttpClient::new(lazy.clone()))
            .disable_cache()
            .build()
            .unwrap();
        // Building the provider (what a cache hit does) leaves it unbuilt.
        assert!(!lazy.is_built());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let assumed = runtime.block_on(provider.assume_role()).unwrap();
        assert!(assumed.account_id.is_some());
        assert!(lazy.is_built());
        assert_eq!(sts.request_count(), 1);
    }
}
