//! What a process's environment gains and loses to use a running [`Server`] ([`EnvPlan`]):
//! `fly-oidc exec` gives it to its child, `fly-oidc serve --env-file` writes it for a shell to
//! source ([`super::env_file`]).

use fly_oidc::Env;
use fly_oidc_server::Server;
use std::fmt;
use std::path::Path;

/// Variables that would win over the container provider in the AWS SDKs' credential chains
/// (web identity, and a relative container URI), removed whenever AWS is served.
pub(crate) const AWS_REMOVED: [&str; 4] = [
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    fly_oidc_aws::ENV_ROLE_ARN,
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
];

/// Variables removed from every process that uses a [`Server`], whatever it serves: the Fly API
/// token (`FLY_API_TOKEN`), with which the app could mint Fly tokens for any audience itself;
/// the server holds it, the app never gets it. The token source's paths (`FLY_OIDC_TOKEN_FILE`,
/// `FLY_OIDC_SOCKET`) and `FLY_API_HOSTNAME` are no secret and stay: the file's and the
/// socket's permissions decide who can read them.
pub(crate) const ALWAYS_REMOVED: [&str; 1] = ["FLY_API_TOKEN"];

/// What a process's environment gains and loses to use a [`Server`].
///
/// `set` may hold the authorization token (`AWS_CONTAINER_AUTHORIZATION_TOKEN`, on request),
/// so `Debug` shows variable names only, never values.
#[derive(Default)]
pub(crate) struct EnvPlan {
    /// Variables to set, `(name, value)`, in the order they are written.
    pub(crate) set: Vec<(String, String)>,
    /// Variables to remove.
    pub(crate) remove: Vec<String>,
    /// Warnings about variables left in place that take precedence over what is served
    /// (static AWS keys, `AWS_PROFILE`, `GOOGLE_APPLICATION_CREDENTIALS`).
    pub(crate) warnings: Vec<String>,
}

impl fmt::Debug for EnvPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvPlan")
            .field(
                "set",
                &self.set.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            )
            .field("remove", &self.remove)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl EnvPlan {
    /// What a process using `server` needs, given its `current` environment.
    ///
    /// Always: [`ALWAYS_REMOVED`] removed (the Fly API token). When AWS is served:
    /// - `AWS_CONTAINER_CREDENTIALS_FULL_URI`;
    /// - `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (to `token_file`), as the EKS Pod Identity
    ///   agent does: every current AWS SDK reads it. The plain
    ///   `AWS_CONTAINER_AUTHORIZATION_TOKEN` only when `auth_token_env` is true (for consumers
    ///   that read nothing else) or no `token_file` is given, else removed: with both set, the
    ///   JavaScript SDK v3 warns on every credential load, and its 3.879 default chain given a
    ///   logger throws;
    /// - `AWS_REGION` and `AWS_DEFAULT_REGION` to the server's
    ///   [configured region](Server::aws_region) when `current` has neither; the one missing
    ///   to the other's value when `current` has one;
    /// - [`AWS_REMOVED`] removed;
    /// - a warning for static keys, and for `AWS_PROFILE` unless its profile gets its
    ///   credentials from the container endpoint
    ///   ([`fly_oidc_aws::profile_uses_container_credentials`]).
    ///
    /// When Google is served: `GCE_METADATA_HOST`, `GCE_METADATA_IP`, `GCE_METADATA_ROOT`
    /// (gcloud's) and `GOOGLE_CLOUD_PROJECT` (to `gcp_project`, when given).
    pub(crate) fn for_server(
        server: &Server,
        token_file: Option<&Path>,
        auth_token_env: bool,
        gcp_project: Option<&str>,
        current: &Env,
    ) -> EnvPlan {
        let mut plan = EnvPlan::default();
        let has = |name: &str| current.get(name).is_some();
        plan.remove
            .extend(ALWAYS_REMOVED.iter().map(|s| (*s).to_owned()));
        if let Some(uri) = server.aws_credentials_uri() {
            plan.set
                .push(("AWS_CONTAINER_CREDENTIALS_FULL_URI".into(), uri));
            if let Some(path) = token_file {
                plan.set.push((
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".into(),
                    path.display().to_string(),
                ));
            }
            if auth_token_env || token_file.is_none() {
                plan.set.push((
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN".into(),
                    server.expose_auth_token().to_owned(),
                ));
            } else {
                // A stale one (an outer exec's, a leftover) would sit beside the file.
                plan.remove.push("AWS_CONTAINER_AUTHORIZATION_TOKEN".into());
            }
            let [region_var, default_var] = fly_oidc_aws::REGION_VARIABLES;
            match (current.get(region_var), current.get(default_var)) {
                (None, None) => {
                    if let Some(region) = server.aws_region() {
                        for name in fly_oidc_aws::REGION_VARIABLES {
                            plan.set.push((name.into(), region.to_owned()));
                        }
                    }
                }
                (Some(region), None) => plan.set.push((default_var.into(), region)),
                (None, Some(region)) => plan.set.push((region_var.into(), region)),
                (Some(_), Some(_)) => {}
            }
            plan.remove
                .extend(AWS_REMOVED.iter().map(|s| (*s).to_owned()));
            if has("AWS_ACCESS_KEY_ID") || has("AWS_SECRET_ACCESS_KEY") {
                plan.warnings.push("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are set: the AWS SDKs use these static keys before the credentials served here; unset them to use the role".into());
            }
            // A profile that chains from the container endpoint (`credential_source =
            // EcsContainer`) uses what is served: the documented alternative to a chain here.
            if has("AWS_PROFILE") && !fly_oidc_aws::profile_uses_container_credentials(current) {
                plan.warnings.push("AWS_PROFILE is set: the AWS SDKs use that profile before the credentials served here; unset it to use the role, or give the profile credential_source = EcsContainer (and no source_profile) to assume its role with them".into());
            }
        }
        if let Some(host) = server.metadata_host() {
            // gcloud reads GCE_METADATA_ROOT, not GCE_METADATA_HOST.
            for name in ["GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT"] {
                plan.set.push((name.into(), host.clone()));
            }
            if let Some(project) = gcp_project {
                plan.set
                    .push(("GOOGLE_CLOUD_PROJECT".into(), project.to_owned()));
            }
            if has("GOOGLE_APPLICATION_CREDENTIALS") {
                plan.warnings.push("GOOGLE_APPLICATION_CREDENTIALS is set: Google's libraries use that file before the metadata server served here; unset it to use the workload identity pool".into());
            }
        }
        plan
    }

    /// The env file's text: a comment, `export NAME='value'` lines (POSIX shell quoting),
    /// then one `unset` line for what must go. `AWS_REGION` and `AWS_DEFAULT_REGION` are
    /// written as defaults, `export AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-REGION}}"`
    /// (and the same the other way round): a shell that sources the file keeps a region it
    /// has and gains the other variable, as [`for_server`](Self::for_server) plans for a
    /// process it is given.
    pub(crate) fn env_file_text(&self) -> String {
        let mut text =
            String::from("# Written by `fly-oidc serve`; source it before starting the app.\n");
        for (name, value) in &self.set {
            // A region name is letters, digits and dashes: safe inside double quotes.
            let plain =
                !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            match fly_oidc_aws::REGION_VARIABLES
                .iter()
                .position(|v| v == name)
            {
                Some(at) if plain => {
                    let other = fly_oidc_aws::REGION_VARIABLES[1 - at];
                    text.push_str(&format!(
                        "export {name}=\"${{{name}:-${{{other}:-{value}}}}}\"\n"
                    ));
                }
                _ => text.push_str(&fly_oidc::shell_export(name, value)),
            }
        }
        if !self.remove.is_empty() {
            text.push_str(&format!("unset {}\n", self.remove.join(" ")));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_quotes_values_and_unsets_removed() {
        let plan = EnvPlan {
            set: vec![("A".into(), "it's".into())],
            remove: vec!["B".into(), "C".into()],
            warnings: Vec::new(),
        };
        let text = plan.env_file_text();
        assert!(text.starts_with("# Written by `fly-oidc serve`"));
        assert!(text.contains("export A='it'\\''s'\n"), "{text}");
        assert!(text.ends_with("unset B C\n"), "{text}");
    }

    #[test]
    fn env_file_without_removals_has_no_unset() {
        let plan = EnvPlan {
            set: vec![("A".into(), "x".into())],
            ..EnvPlan::default()
        };
        assert!(!plan.env_file_text().contains("unset"));
    }

    #[test]
    fn debug_shows_names_not_values() {
        let plan = EnvPlan {
            set: vec![("AWS_CONTAINER_AUTHORIZATION_TOKEN".into(), "s3cr3t".into())],
            ..EnvPlan::default()
        };
        let shown = format!("{plan:?}");
        assert!(shown.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    /// The env file's region lines, sourced by a real `sh`: a shell keeps the region it has and
    /// gains the other name; one with none gets the configured region under both.
    #[test]
    fn env_file_regions_are_defaults_for_the_sourcing_shell() {
        let plan = EnvPlan {
            set: fly_oidc_aws::REGION_VARIABLES
                .iter()
                .map(|v| ((*v).to_owned(), "eu-west-1".to_owned()))
                .collect(),
            ..EnvPlan::default()
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("app.env");
        std::fs::write(&file, plan.env_file_text()).expect("write");
        let cases: [(&[(&str, &str)], &str); 4] = [
            (&[], "eu-west-1 eu-west-1"),
            (&[("AWS_REGION", "us-west-2")], "us-west-2 us-west-2"),
            (
                &[("AWS_DEFAULT_REGION", "ap-south-1")],
                "ap-south-1 ap-south-1",
            ),
            (
                &[("AWS_REGION", "a-1"), ("AWS_DEFAULT_REGION", "b-2")],
                "a-1 b-2",
            ),
        ];
        for (env, expected) in cases {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    ". {}; echo \"$AWS_REGION $AWS_DEFAULT_REGION\"",
                    file.display()
                ))
                .env_clear()
                .envs(env.iter().copied())
                .output()
                .expect("sh");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                expected,
                "{env:?}"
            );
        }
        // A value that is not a region name is quoted as any other.
        let odd = EnvPlan {
            set: vec![("AWS_REGION".into(), "it's".into())],
            ..EnvPlan::default()
        };
        assert!(
            odd.env_file_text()
                .contains("export AWS_REGION='it'\\''s'\n")
        );
    }
}
