//! One rule for every endpoint URL a user gives us (the Machines API, AWS STS, Google STS and
//! IAM Credentials): `https`, or plain `http` only to loopback (and, for the Machines API,
//! Fly's private `_api.internal`) unless `FLY_OIDC_ALLOW_INSECURE_HTTP` says otherwise; a
//! host; no credentials in the URL. Error messages show the URL without its credentials.

use crate::env::Env;
use crate::error::{BuildError, Setting, truncate};

/// Set to `1`, `true`, `yes` or `on` (any case) to allow plain HTTP to any host; `0`,
/// `false`, `no` or `off` (or unset) to refuse it.
pub(crate) const ENV_ALLOW_INSECURE_HTTP: &str = "FLY_OIDC_ALLOW_INSECURE_HTTP";

/// The setting `allow_insecure_http` of every builder, also set by
/// `FLY_OIDC_ALLOW_INSECURE_HTTP`.
const ALLOW_INSECURE_HTTP: Setting =
    Setting::new("allow_insecure_http", Some(ENV_ALLOW_INSECURE_HTTP));

/// Whether plain HTTP to any host is allowed: the builder's value when given, else
/// `FLY_OIDC_ALLOW_INSECURE_HTTP` (read with [`Env::flag`]), else no.
///
/// ```
/// use fly_oidc::{Env, endpoint::allow_insecure_http};
/// let env = |v| Env::from_slice(&[("FLY_OIDC_ALLOW_INSECURE_HTTP", v)]);
/// assert!(allow_insecure_http(None, &env("True")).unwrap());
/// assert!(!allow_insecure_http(None, &env("0")).unwrap());
/// assert!(!allow_insecure_http(Some(false), &env("1")).unwrap());
/// assert!(!allow_insecure_http(None, &Env::from_slice(&[])).unwrap());
/// assert!(allow_insecure_http(None, &env("sometimes")).is_err());
/// ```
pub fn allow_insecure_http(builder: Option<bool>, env: &Env) -> Result<bool, BuildError> {
    match builder {
        Some(allow) => Ok(allow),
        None => Ok(env.flag(ALLOW_INSECURE_HTTP)?.unwrap_or(false)),
    }
}

/// Which hosts may be reached over plain HTTP without the opt-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlainHttp {
    /// Loopback only (`localhost`, `127.0.0.0/8`, `[::1]`): the STS endpoints.
    Loopback,
    /// Loopback and `_api.internal`, the Machines API on Fly's WireGuard-encrypted private
    /// network.
    LoopbackAndFlyPrivate,
}

/// Whether `host` is a loopback name or address.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether plain HTTP to `host` is acceptable for the Machines API without an explicit
/// opt-in: loopback, and Fly's private-network API host `_api.internal`.
pub fn is_trusted_plain_http_host(host: &str) -> bool {
    is_loopback_host(host) || host.eq_ignore_ascii_case("_api.internal")
}

/// Check an endpoint URL and return it without a trailing slash. The error is a short
/// reason (it never quotes the URL); show the URL with [`display_url`].
///
/// ```
/// use fly_oidc::endpoint::{PlainHttp, check_endpoint_url};
/// assert_eq!(check_endpoint_url("https://sts.example.com/", false, PlainHttp::Loopback).unwrap(), "https://sts.example.com");
/// assert!(check_endpoint_url("http://127.0.0.1:5000", false, PlainHttp::Loopback).is_ok());
/// assert!(check_endpoint_url("http://_api.internal:4280", false, PlainHttp::Loopback).is_err());
/// assert!(check_endpoint_url("http://_api.internal:4280", false, PlainHttp::LoopbackAndFlyPrivate).is_ok());
/// assert!(check_endpoint_url("https://user:pw@example.com", true, PlainHttp::Loopback).is_err());
/// // A host without a scheme: say what a URL looks like, not "relative URL without a base".
/// assert_eq!(
///     check_endpoint_url("sts.amazonaws.com", false, PlainHttp::Loopback).unwrap_err(),
///     "it is not an absolute URL (scheme://host[:port][/path])"
/// );
/// // A path is not a host (`https:///x` would otherwise be read as `https://x`).
/// assert!(check_endpoint_url("https:///relative", false, PlainHttp::Loopback).is_err());
/// ```
pub fn check_endpoint_url(
    raw: &str,
    allow_insecure: bool,
    plain: PlainHttp,
) -> Result<String, String> {
    const SHAPE: &str = "scheme://host[:port][/path]";
    let raw = raw.trim();
    let Some((_, rest)) = raw.split_once("://") else {
        return Err(format!("it is not an absolute URL ({SHAPE})"));
    };
    // `https:///path` would parse as `https://path/`: a path is not a host.
    if rest.is_empty() || rest.starts_with(['/', '\\', '?', '#']) {
        return Err(format!("it has no host; expected {SHAPE}"));
    }
    let url = reqwest::Url::parse(raw).map_err(|e| format!("{e}; expected {SHAPE}"))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("it has no host; expected {SHAPE}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed".into());
    }
    let trusted = match plain {
        PlainHttp::Loopback => is_loopback_host(host),
        PlainHttp::LoopbackAndFlyPrivate => is_trusted_plain_http_host(host),
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure || trusted => {}
        "http" => {
            let hosts = match plain {
                PlainHttp::Loopback => "loopback addresses",
                PlainHttp::LoopbackAndFlyPrivate => "loopback and _api.internal",
            };
            return Err(format!(
                "plain http is only used for {hosts}; use https, or set {ENV_ALLOW_INSECURE_HTTP}=1"
            ));
        }
        other => return Err(format!("unsupported scheme {other:?} (https only)")),
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// `raw` as it may be shown in a message: any `user:password@` removed, at most 200
/// characters.
///
/// ```
/// assert_eq!(fly_oidc::endpoint::display_url("https://me:hunter2@example.com/x"), "https://example.com/x");
/// ```
pub fn display_url(raw: &str) -> String {
    let raw = raw.trim();
    let shown = match raw.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{tail}")
        }
        None => raw.rsplit_once('@').map_or(raw, |(_, h)| h).to_owned(),
    };
    truncate(&shown, 200)
}
