//! The root certificates every fly-oidc HTTPS client trusts: the system's, else the Mozilla
//! roots bundled with fly-oidc.
//!
//! The Fly token client, the Google STS/IAM client (`fly-oidc-gcp`) and the AWS STS client
//! (`fly-oidc-aws`) all take their roots from [`RootCertificates::load`], so they trust the
//! same authorities.
//!
//! - **System roots** (the default): the files named by `SSL_CERT_FILE` and `SSL_CERT_DIR`
//!   (colon-separated directories) when either is set, else the platform's store (on Linux
//!   the usual OpenSSL paths such as `/etc/ssl/certs`, filled by the `ca-certificates`
//!   package), read with `rustls-native-certs`.
//! - **Bundled roots**: when no usable system root loads (a slim container image without
//!   `ca-certificates`, or an `SSL_CERT_FILE` that holds none), the Mozilla root program's
//!   certificates compiled into the binary (`webpki-root-certs`), with one `tracing` warning
//!   per process saying so and how to fix it.
//!
//! Loading reads about 150 files on Debian, so it happens once per process (per distinct
//! `SSL_CERT_FILE`/`SSL_CERT_DIR` pair) and only when a client that may speak TLS is built.

use crate::env::Env;
use crate::error::{Error, ErrorKind};
use base64::Engine as _;
use rustls::pki_types::CertificateDer;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// A PEM file of root certificates to trust instead of the platform's store (OpenSSL's
/// variable, honoured by `rustls-native-certs`).
const ENV_CERT_FILE: &str = "SSL_CERT_FILE";
/// Colon-separated directories of PEM root certificates to trust instead of the platform's
/// store (OpenSSL's variable).
const ENV_CERT_DIR: &str = "SSL_CERT_DIR";

/// Where a set of [`RootCertificates`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RootsSource {
    /// The system's store (or `SSL_CERT_FILE`/`SSL_CERT_DIR`).
    System,
    /// The Mozilla roots bundled with fly-oidc: no usable system root was found.
    Bundled,
}

/// The root certificates an HTTPS client trusts. See the [module docs](self).
///
/// Every certificate held here is one `rustls` accepts as a trust anchor.
pub struct RootCertificates {
    certs: Vec<CertificateDer<'static>>,
    source: RootsSource,
}

impl fmt::Debug for RootCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootCertificates")
            .field("source", &self.source)
            .field("len", &self.certs.len())
            .finish()
    }
}

/// `SSL_CERT_FILE` and `SSL_CERT_DIR` as read from an [`Env`]: the cache key.
type CertPaths = (Option<String>, Option<String>);

impl RootCertificates {
    /// The roots to trust under `env`: the system's, else the bundled Mozilla roots (with
    /// one warning logged through `tracing`). Loaded once per process for each distinct
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR` pair of `env`, then shared.
    ///
    /// When `env` sets neither variable, the platform's store is read (on Linux,
    /// `rustls-native-certs` then also looks at the real process's variables).
    pub fn load(env: &Env) -> Arc<RootCertificates> {
        static LOADED: OnceLock<Mutex<HashMap<CertPaths, Arc<RootCertificates>>>> = OnceLock::new();
        let key = (env.get(ENV_CERT_FILE), env.get(ENV_CERT_DIR));
        let mut loaded = LOADED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        loaded
            .entry(key)
            .or_insert_with_key(|(file, dirs)| Arc::new(Self::load_uncached(file, dirs)))
            .clone()
    }

    fn load_uncached(file: &Option<String>, dirs: &Option<String>) -> RootCertificates {
        let (found, errors) = load_system(file.as_deref(), dirs.as_deref());
        let found_count = found.len();
        let certs = usable(found);
        if !certs.is_empty() {
            tracing::debug!(count = certs.len(), "loaded the system's root certificates");
            return RootCertificates {
                certs,
                source: RootsSource::System,
            };
        }
        let from = match (file, dirs) {
            (None, None) => "the system's store".to_owned(),
            (Some(file), None) => format!("{ENV_CERT_FILE}={file}"),
            (None, Some(dirs)) => format!("{ENV_CERT_DIR}={dirs}"),
            (Some(file), Some(dirs)) => format!("{ENV_CERT_FILE}={file} and {ENV_CERT_DIR}={dirs}"),
        };
        let found = match found_count {
            0 => String::new(),
            n => format!(" ({n} found, none usable)"),
        };
        tracing::warn!(
            "no CA certificates could be loaded from {from}{found}; trusting the Mozilla root \
             certificates bundled with fly-oidc instead. To use the system's, install the \
             ca-certificates package (Debian/Ubuntu: apt-get install ca-certificates) or point \
             {ENV_CERT_FILE} at a PEM bundle"
        );
        for error in &errors {
            tracing::debug!(%error, "while loading the system's root certificates");
        }
        RootCertificates {
            certs: usable(webpki_root_certs::TLS_SERVER_ROOT_CERTS.to_vec()),
            source: RootsSource::Bundled,
        }
    }

    /// A `rustls` root store holding these certificates.
    pub(crate) fn root_store(&self) -> rustls::RootCertStore {
        let mut store = rustls::RootCertStore::empty();
        // Every certificate was accepted by `RootCertStore::add` when loaded.
        store.add_parsable_certificates(self.certs.iter().cloned());
        store
    }

    /// A `rustls` client configuration trusting these roots, on the `ring` crypto provider
    /// with rustls's safe default protocol versions (for
    /// `reqwest::ClientBuilder::tls_backend_preconfigured`).
    ///
    /// Fails (with [`ErrorKind::InvalidConfiguration`]) only if `ring` supports none of
    /// those versions.
    pub(crate) fn client_config(&self) -> Result<rustls::ClientConfig, Error> {
        config_trusting(self.root_store())
    }

    /// The certificates as one PEM bundle (`-----BEGIN CERTIFICATE-----` blocks), for TLS
    /// stacks that take PEM (the AWS SDK's trust store).
    pub fn to_pem(&self) -> String {
        let engine = base64::engine::general_purpose::STANDARD;
        let mut pem = String::new();
        for cert in &self.certs {
            pem.push_str("-----BEGIN CERTIFICATE-----\n");
            let encoded = engine.encode(cert.as_ref());
            for line in encoded.as_bytes().chunks(64) {
                // Base64 output is ASCII.
                pem.push_str(&String::from_utf8_lossy(line));
                pem.push('\n');
            }
            pem.push_str("-----END CERTIFICATE-----\n");
        }
        pem
    }
}

/// A `rustls` client configuration on `ring` trusting `roots` (empty for plain-HTTP clients).
pub(crate) fn config_trusting(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidConfiguration,
                format!("could not set up TLS: {e}"),
            )
            .with_source(e)
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The system's certificates and the errors met while reading them.
fn load_system(
    file: Option<&str>,
    dirs: Option<&str>,
) -> (Vec<CertificateDer<'static>>, Vec<String>) {
    if file.is_none() && dirs.is_none() {
        let result = rustls_native_certs::load_native_certs();
        let errors = result.errors.iter().map(ToString::to_string).collect();
        return (result.certs, errors);
    }
    let mut certs = Vec::new();
    let mut errors = Vec::new();
    let dirs: Vec<PathBuf> = dirs
        .map(|d| {
            std::env::split_paths(d)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    let file = file.map(Path::new);
    if file.is_some() || dirs.is_empty() {
        let result = rustls_native_certs::load_certs_from_paths(file, None);
        certs.extend(result.certs);
        errors.extend(result.errors.iter().map(ToString::to_string));
    }
    for dir in &dirs {
        let result = rustls_native_certs::load_certs_from_paths(None, Some(dir));
        certs.extend(result.certs);
        errors.extend(result.errors.iter().map(ToString::to_string));
    }
    (certs, errors)
}

/// The certificates `rustls` accepts as trust anchors (others are dropped, so a TLS stack
/// that insists on every one parsing never sees a bad one).
fn usable(certs: Vec<CertificateDer<'static>>) -> Vec<CertificateDer<'static>> {
    let mut store = rustls::RootCertStore::empty();
    certs
        .into_iter()
        .filter(|cert| store.add(cert.clone()).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn empty_cert_env() -> (tempfile::TempDir, Env) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("empty.pem");
        std::fs::File::create(&file).unwrap().flush().unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        let env = Env::from_map(
            [
                (ENV_CERT_FILE.to_owned(), file.display().to_string()),
                (ENV_CERT_DIR.to_owned(), certs.display().to_string()),
            ]
            .into(),
        );
        (dir, env)
    }

    #[test]
    fn empty_system_store_falls_back_to_bundled_roots_with_one_warning() {
        let (dir, env) = empty_cert_env();
        // The warnings, written unbuffered to a file the test reads back.
        let log = dir.path().join("warnings.log");
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(std::fs::File::create(&log).unwrap())
            .with_ansi(false)
            .finish();
        let (first, second) = tracing::subscriber::with_default(subscriber, || {
            // Another test thread may have registered the warning's callsite with no
            // subscriber at all (interest "never", cached): ask again with this one in place.
            tracing::callsite::rebuild_interest_cache();
            (RootCertificates::load(&env), RootCertificates::load(&env))
        });
        assert_eq!(first.source, RootsSource::Bundled);
        assert!(Arc::ptr_eq(&first, &second), "loaded once");
        // The Mozilla program holds well over 100 roots.
        assert!(first.certs.len() > 100, "{first:?}");
        assert_eq!(first.root_store().len(), first.certs.len());
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            text.matches("no CA certificates could be loaded").count(),
            1,
            "{text}"
        );
        assert!(text.contains("ca-certificates"), "{text}");
        // A TLS configuration builds from it.
        first.client_config().unwrap();
    }

    #[test]
    fn certificates_in_ssl_cert_file_are_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        // Three of the bundled roots, written as PEM: exactly those are trusted.
        let three = RootCertificates {
            certs: webpki_root_certs::TLS_SERVER_ROOT_CERTS[..3].to_vec(),
            source: RootsSource::Bundled,
        };
        let file = dir.path().join("bundle.pem");
        std::fs::write(&file, three.to_pem()).unwrap();
        let env = Env::from_slice(&[(ENV_CERT_FILE, &file.display().to_string())]);
        let roots = RootCertificates::load(&env);
        assert_eq!(roots.source, RootsSource::System);
        // The same three (rustls-native-certs may reorder them).
        let mut got: Vec<&[u8]> = roots.certs.iter().map(|c| c.as_ref()).collect();
        let mut want: Vec<&[u8]> = three.certs.iter().map(|c| c.as_ref()).collect();
        got.sort_unstable();
        want.sort_unstable();
        assert!(got == want, "got {} certificates", got.len());
    }

    #[test]
    fn pem_round_trips_through_rustls() {
        use rustls::pki_types::pem::PemObject as _;
        let (_dir, env) = empty_cert_env();
        let roots = RootCertificates::load(&env);
        let pem = roots.to_pem();
        let parsed: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(parsed, roots.certs);
        assert!(pem.lines().all(|l| l.len() <= 64));
    }
}
