//! Errors: this crate uses the error pattern of [`fly_oidc`] ([`BuildError`](fly_oidc::BuildError) when building,
//! [`Error`] with an [`ErrorKind`] at run time); here, their mapping onto the AWS SDK's
//! [`CredentialsError`], chosen so that a `CredentialsProviderChain` does the right thing.

use aws_credential_types::provider::error::CredentialsError;
use fly_oidc::{Error, ErrorKind};

/// The SDK's error for a failure of this provider. (A function, not a `From` impl: both
/// types belong to other crates.)
///
/// | [`ErrorKind`] | `CredentialsError` |
/// |---|---|
/// | `NotOnFly`, `NotConfigured` | `CredentialsNotLoaded`: a chain moves on |
/// | `InvalidConfiguration` | `InvalidConfiguration` |
/// | `InvalidResponse` | `Unhandled` |
/// | any other | `ProviderError`: the provider applies but failed, so a chain stops |
pub fn credentials_error(err: Error) -> CredentialsError {
    match err.kind() {
        ErrorKind::NotOnFly | ErrorKind::NotConfigured => CredentialsError::not_loaded(err),
        ErrorKind::InvalidConfiguration => CredentialsError::invalid_configuration(err),
        ErrorKind::InvalidResponse => CredentialsError::unhandled(err),
        _ => CredentialsError::provider_error(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_move_on_only_when_the_provider_does_not_apply() {
        let variant = |kind| match credentials_error(Error::new(kind, "x")) {
            CredentialsError::CredentialsNotLoaded(_) => "not loaded",
            CredentialsError::InvalidConfiguration(_) => "invalid configuration",
            CredentialsError::Unhandled(_) => "unhandled",
            CredentialsError::ProviderError(_) => "provider error",
            _ => "other",
        };
        assert_eq!(variant(ErrorKind::NotOnFly), "not loaded");
        assert_eq!(variant(ErrorKind::NotConfigured), "not loaded");
        assert_eq!(
            variant(ErrorKind::InvalidConfiguration),
            "invalid configuration"
        );
        assert_eq!(variant(ErrorKind::InvalidResponse), "unhandled");
        for kind in [
            ErrorKind::TrustRejected,
            ErrorKind::Rejected,
            ErrorKind::Transient,
            ErrorKind::FlyApi,
            ErrorKind::PermissionDenied,
            ErrorKind::MalformedToken,
            ErrorKind::StaleToken,
        ] {
            assert_eq!(variant(kind), "provider error", "{kind:?}");
        }
    }
}
