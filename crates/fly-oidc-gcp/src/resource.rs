//! Workload identity pool provider names.

use crate::settings::PROVIDER;
use fly_oidc::{BuildError, Origin, truncate};
use std::fmt;

const IAM_PREFIXES: [&str; 2] = ["//iam.googleapis.com/", "https://iam.googleapis.com/"];

/// A workload identity pool provider:
/// `projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id>`.
///
/// ```
/// use fly_oidc_gcp::WorkloadIdentityProvider;
/// let p = WorkloadIdentityProvider::parse(
///     "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/fly/providers/acme",
/// )?;
/// assert_eq!(p.name(), "projects/123/locations/global/workloadIdentityPools/fly/providers/acme");
/// assert_eq!(p.sts_audience(), "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/fly/providers/acme");
/// assert_eq!(p.token_audience(), "https://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/fly/providers/acme");
/// assert_eq!((p.project_number(), p.pool(), p.provider_id()), ("123", "fly", "acme"));
/// # Ok::<(), fly_oidc::BuildError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkloadIdentityProvider {
    name: String,
    project: String,
    pool: String,
    id: String,
}

impl WorkloadIdentityProvider {
    /// Parse a provider name, with or without a `//iam.googleapis.com/` or
    /// `https://iam.googleapis.com/` prefix. The error names the builder's `provider`
    /// setting as the value's origin.
    pub fn parse(raw: &str) -> Result<Self, BuildError> {
        Self::parse_from(raw, Origin::Builder)
    }

    /// The provider `id` of `pool` in the project numbered `project_number`, checked as
    /// [`parse`](Self::parse) checks a name.
    pub fn new(project_number: &str, pool: &str, id: &str) -> Result<Self, BuildError> {
        Self::parse(&format!(
            "projects/{project_number}/locations/global/workloadIdentityPools/{pool}/providers/{id}"
        ))
    }

    /// [`parse`](Self::parse) a value that came from `origin`.
    pub(crate) fn parse_from(raw: &str, origin: Origin) -> Result<Self, BuildError> {
        let trimmed = raw.trim();
        let name = IAM_PREFIXES
            .iter()
            .find_map(|p| trimmed.strip_prefix(p))
            .unwrap_or(trimmed)
            .trim_end_matches('/');
        let bad = |why: &str| {
            BuildError::invalid(
                PROVIDER,
                origin.clone(),
                format!(
                    "invalid workload identity pool provider {:?}: {why}; expected \
                 projects/<project-number>/locations/global/workloadIdentityPools/<pool>/providers/<provider> \
                 (see `gcloud iam workload-identity-pools providers describe <provider> \
                 --workload-identity-pool=<pool> --location=global --format='value(name)'`)",
                    truncate(raw, 200)
                ),
            )
        };
        let parts: Vec<&str> = name.split('/').collect();
        let [
            "projects",
            project,
            "locations",
            "global",
            "workloadIdentityPools",
            pool,
            "providers",
            id,
        ] = parts.as_slice()
        else {
            return Err(bad("it does not have that shape"));
        };
        if !is_project_number(project) {
            return Err(bad(
                "Google wants the project *number* here, not the project id (`gcloud projects describe <id> --format='value(projectNumber)'`)",
            ));
        }
        let valid_id = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !valid_id(pool) || !valid_id(id) {
            return Err(bad(
                "pool and provider ids are lowercase letters, digits and dashes",
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            project: (*project).to_owned(),
            pool: (*pool).to_owned(),
            id: (*id).to_owned(),
        })
    }

    /// `projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The project number.
    pub fn project_number(&self) -> &str {
        &self.project
    }

    /// The pool id.
    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// The provider id.
    pub fn provider_id(&self) -> &str {
        &self.id
    }

    /// The STS `audience` parameter: `//iam.googleapis.com/<name>`.
    pub fn sts_audience(&self) -> String {
        format!("//iam.googleapis.com/{}", self.name)
    }

    /// The default audience of the Fly token (`aud`): `https://iam.googleapis.com/<name>`,
    /// which Google accepts when the provider's allowed audiences are left empty.
    pub fn token_audience(&self) -> String {
        format!("https://iam.googleapis.com/{}", self.name)
    }

    /// The pool as IAM principals name it:
    /// `iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/<pool>`.
    fn principal_pool(&self) -> String {
        format!(
            "iam.googleapis.com/projects/{}/locations/global/workloadIdentityPools/{}",
            self.project, self.pool
        )
    }

    /// The pool's principal for one subject, for IAM bindings:
    /// `principal://iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/<pool>/subject/<sub>`.
    pub(crate) fn principal_for_subject(&self, subject: &str) -> String {
        format!("principal://{}/subject/{subject}", self.principal_pool())
    }

    /// The pool's principal set for one attribute value, for IAM bindings:
    /// `principalSet://iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/<pool>/attribute.<name>/<value>`.
    pub fn principal_set_for_attribute(&self, attribute: &str, value: &str) -> String {
        format!(
            "principalSet://{}/attribute.{attribute}/{value}",
            self.principal_pool()
        )
    }

    /// The principal set of every identity of the pool, for IAM bindings:
    /// `principalSet://iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/<pool>/*`.
    pub fn principal_set_for_pool(&self) -> String {
        format!("principalSet://{}/*", self.principal_pool())
    }
}

/// Whether `text` is a project number (digits), as a provider name holds it.
pub fn is_project_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

impl fmt::Display for WorkloadIdentityProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The Fly token audience for a Google `audience` as found in a credential configuration
/// (`GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE`): `//iam.googleapis.com/...` becomes
/// `https://iam.googleapis.com/...`; anything else is kept.
pub(crate) fn fly_audience_from_google(audience: &str) -> String {
    let audience = audience.trim();
    match audience.strip_prefix("//") {
        Some(rest) => format!("https://{rest}"),
        None => audience.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_google_audience_becomes_the_fly_audience() {
        assert_eq!(
            fly_audience_from_google(
                "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x"
            ),
            "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
        );
        assert_eq!(fly_audience_from_google("custom-aud"), "custom-aud");
    }

    #[test]
    fn accepts_the_three_spellings_and_rejects_others() {
        let name = "projects/42/locations/global/workloadIdentityPools/fly-pool/providers/acme";
        for raw in [
            name.to_owned(),
            format!("//iam.googleapis.com/{name}"),
            format!("https://iam.googleapis.com/{name}/"),
        ] {
            assert_eq!(WorkloadIdentityProvider::parse(&raw).unwrap().name(), name);
        }
        let built = WorkloadIdentityProvider::new("42", "fly-pool", "acme").unwrap();
        assert_eq!(built.name(), name);
        let pool = "iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/fly-pool";
        assert_eq!(
            built.principal_set_for_pool(),
            format!("principalSet://{pool}/*")
        );
        assert_eq!(
            built.principal_set_for_attribute("app", "web"),
            format!("principalSet://{pool}/attribute.app/web")
        );
        assert!(WorkloadIdentityProvider::new("my-project", "fly-pool", "acme").is_err());
        for bad in [
            "",
            "projects/my-project/locations/global/workloadIdentityPools/p/providers/x",
            "projects/42/locations/global/workloadIdentityPools/p",
            "projects/42/locations/global/workloadIdentityPools/P/providers/x",
            "projects/42/locations/europe/workloadIdentityPools/p/providers/x",
        ] {
            let err = WorkloadIdentityProvider::parse(bad).unwrap_err();
            assert_eq!(err.setting(), PROVIDER, "{bad}");
            assert!(
                err.to_string().contains("projects/<project-number>"),
                "{err}"
            );
        }
        let err = WorkloadIdentityProvider::parse(
            "projects/my-project/locations/global/workloadIdentityPools/p/providers/x",
        )
        .unwrap_err();
        assert!(err.to_string().contains("project *number*"), "{err}");
    }
}
