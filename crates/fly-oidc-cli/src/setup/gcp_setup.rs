//! What to create on Google Cloud for a Fly app: a workload identity pool, an OIDC provider
//! for the org's issuer with an attribute mapping and a condition limiting it to the org or
//! the app, and (with a service account) the `roles/iam.workloadIdentityUser` binding for the
//! app's `principalSet://`; as `gcloud` commands that can be run again, or Terraform.

use crate::options::serve::project_id;
use crate::setup::aws_setup::{hcl_string, tf_name};
use crate::setup::check::{self, CheckError, ClientFn};
use crate::setup::subject::{SubjectError, check_app, check_org, lowercase_digits_dash};
use fly_oidc::shell_quote;
use fly_oidc_gcp::{WorkloadIdentityProvider, is_project_number, is_service_account};
use std::fmt::Write as _;

/// The attribute mapping `gcp setup` writes (and `gcp check-condition` assumes by default).
pub const DEFAULT_ATTRIBUTE_MAPPING: &str = "google.subject=assertion.sub,attribute.org=assertion.org_name,attribute.app=assertion.app_name";

/// What [`GcpSetupOptions::render`] prints: [`GcpSetup::commands`] or [`GcpSetup::terraform`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum GcpSetupFormat {
    /// gcloud commands (a shell script that can be run again)
    #[default]
    Commands,
    /// Terraform resources
    Terraform,
}

/// The options of a Google Cloud set-up, as given (what `fly-oidc gcp setup` takes as
/// flags): the project, pool and provider, whose tokens they trust, and the format.
/// [`setup`](Self::setup) checks them (an org left out is read from a live Fly token) and
/// [`render`](Self::render) makes the text.
///
/// `GcpSetupOptions` derives `clap::Args`: each field is a flag of
/// `fly-oidc gcp setup` (`project_number`: `--project-number`), its help the first paragraph
/// of its documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct GcpSetupOptions {
    /// The project number (in resource names).
    ///
    /// Digits; `gcloud projects describe PROJECT_ID --format='value(projectNumber)'` prints it.
    #[arg(long, value_name = "N", long_help = None)]
    pub project_number: String,
    /// The project id for gcloud's --project [default: gcloud's default project]
    ///
    /// `None`: the commands leave `--project` out (gcloud's default project), and Terraform
    /// its `project` arguments.
    #[arg(long, value_name = "ID", long_help = None)]
    pub project: Option<String>,
    /// The workload identity pool id.
    ///
    /// 4 to 32 lowercase letters, digits and `-`, starting with a letter.
    #[arg(long, value_name = "ID", long_help = None)]
    pub pool: String,
    /// The workload identity pool provider id.
    ///
    /// The same rule as [`pool`](Self::pool).
    #[arg(long, value_name = "ID", long_help = None)]
    pub provider: String,
    /// The Fly org slug [default: from a Fly token's iss]
    ///
    /// `None`: read from a live Fly token's `iss` (`https://oidc.fly.io/<org>`).
    #[arg(long, value_name = "SLUG", long_help = None)]
    pub org: Option<String>,
    /// Limit the provider to this app [default: from a Fly token's sub when --org is not given]
    ///
    /// `None`: read from a live Fly token's `sub` when `org` is `None` too, else the
    /// provider accepts the whole org.
    #[arg(long, value_name = "APP", long_help = None)]
    pub app: Option<String>,
    /// Let the app impersonate this service account (roles/iam.workloadIdentityUser).
    ///
    /// `NAME@PROJECT.iam.gserviceaccount.com`; `None`: no binding.
    #[arg(long, value_name = "EMAIL", long_help = None)]
    pub service_account: Option<String>,
    /// What to print.
    #[arg(long, value_enum, default_value_t)]
    pub format: GcpSetupFormat,
}

impl GcpSetupOptions {
    /// Check the options and build the set-up. An org left out is read from a live Fly token
    /// (`iss`, and the app from `sub` unless `app` is given); `client` makes the Fly token
    /// client, at most once.
    ///
    /// Errors: [`CheckError::Usage`] naming the flag and the fix.
    pub async fn setup(&self, client: ClientFn<'_>) -> Result<GcpSetup, CheckError> {
        let (org, app) = check::org_app(client, self.org.clone(), self.app.clone(), false).await?;
        Ok(GcpSetup::new(
            &self.project_number,
            self.project.as_deref(),
            &self.pool,
            &self.provider,
            &org,
            app.as_deref(),
            self.service_account.as_deref(),
        )?)
    }

    /// [`setup`](Self::setup), then the text in [`format`](Self::format) (ends with a
    /// newline).
    pub async fn render(&self, client: ClientFn<'_>) -> Result<String, CheckError> {
        let setup = self.setup(client).await?;
        Ok(match self.format {
            GcpSetupFormat::Commands => setup.commands(),
            GcpSetupFormat::Terraform => setup.terraform(),
        })
    }
}

/// What `gcp setup` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcpSetup {
    /// The provider: the project number, the pool id and the provider id.
    pub provider: WorkloadIdentityProvider,
    /// The project id (`--project` of gcloud), if given.
    pub project: Option<String>,
    /// The Fly org slug.
    pub org: String,
    /// The app, when the provider is limited to one app.
    pub app: Option<String>,
    /// The service account to impersonate, if any.
    pub service_account: Option<String>,
}

fn check_id(value: &str, flag: &'static str, what: &str) -> Result<(), SubjectError> {
    let ok = (4..=32).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && !value.ends_with('-')
        && !value.starts_with("gcp-")
        && lowercase_digits_dash(value);
    SubjectError::unless(
        ok,
        flag,
        value,
        &format!(
            "is not a valid {what} id: 4 to 32 lowercase letters, digits and '-', starting with a letter, not ending with '-', and not starting with gcp- (reserved by Google)"
        ),
    )
}

impl GcpSetup {
    /// Check the values and build the set-up.
    pub fn new(
        project_number: &str,
        project: Option<&str>,
        pool: &str,
        provider: &str,
        org: &str,
        app: Option<&str>,
        service_account: Option<&str>,
    ) -> Result<Self, SubjectError> {
        SubjectError::unless(
            is_project_number(project_number),
            "--project-number",
            project_number,
            "is not a project number (digits; `gcloud projects describe PROJECT_ID --format='value(projectNumber)'` prints it)",
        )?;
        if let Some(p) = project {
            let why = project_id(p).err();
            SubjectError::unless(
                why.is_none(),
                "--project",
                p,
                &format!("is not a project id: {}", why.unwrap_or_default()),
            )?;
        }
        check_id(pool, "--pool", "workload identity pool")?;
        check_id(provider, "--provider", "workload identity pool provider")?;
        check_org(org)?;
        if let Some(app) = app {
            check_app(app)?;
        }
        if let Some(sa) = service_account {
            SubjectError::unless(
                is_service_account(sa),
                "--service-account",
                sa,
                "is not a service account email (NAME@PROJECT.iam.gserviceaccount.com)",
            )?;
        }
        // Every part is checked above, more strictly than a provider name is.
        let provider =
            WorkloadIdentityProvider::new(project_number, pool, provider).map_err(|e| {
                SubjectError {
                    flag: "--provider",
                    reason: e.to_string(),
                }
            })?;
        Ok(Self {
            provider,
            project: project.map(str::to_owned),
            org: org.to_owned(),
            app: app.map(str::to_owned),
            service_account: service_account.map(str::to_owned),
        })
    }

    /// The attribute condition: the org's tokens, or the app's.
    pub fn attribute_condition(&self) -> String {
        match &self.app {
            Some(app) => format!("assertion.sub.startsWith(\"{}:{app}:\")", self.org),
            None => format!("assertion.sub.startsWith(\"{}:\")", self.org),
        }
    }

    /// The principal set granted `roles/iam.workloadIdentityUser`: the app, or the whole pool.
    pub fn principal_set(&self) -> String {
        match &self.app {
            Some(app) => self.provider.principal_set_for_attribute("app", app),
            None => self.provider.principal_set_for_pool(),
        }
    }

    /// The `gcloud` commands as an `sh` script that can be run again (`describe || create`).
    pub fn commands(&self) -> String {
        let mut out = String::new();
        let project = match &self.project {
            Some(p) => format!(" --project={p}"),
            None => String::new(),
        };
        let who = match &self.app {
            Some(app) => format!("app {app} of org {}", self.org),
            None => format!("org {}", self.org),
        };
        let _ = writeln!(
            out,
            "# fly-oidc gcp setup: workload identity pool {}, OIDC provider {} for {who}",
            self.provider.pool(),
            self.provider.provider_id()
        );
        if self.project.is_none() {
            let _ = writeln!(
                out,
                "# No --project: these commands use gcloud's default project (gcloud config get project);\n# it must be the project numbered {}.",
                self.provider.project_number()
            );
        }
        out.push_str("# Safe to run again: each resource is created only when describe does not find it.\nset -eu\n");
        let pool = self.provider.pool();
        let _ = writeln!(
            out,
            "gcloud iam workload-identity-pools describe {pool} --location=global{project} >/dev/null 2>&1 ||\n  gcloud iam workload-identity-pools create {pool} --location=global{project} --display-name='Fly.io {org}'",
            org = self.org
        );
        let _ = writeln!(
            out,
            "gcloud iam workload-identity-pools providers describe {provider} --workload-identity-pool={pool} --location=global{project} >/dev/null 2>&1 ||\n  gcloud iam workload-identity-pools providers create-oidc {provider} --workload-identity-pool={pool} --location=global{project} \\\n    --issuer-uri={issuer} \\\n    --attribute-mapping={mapping} \\\n    --attribute-condition={condition}",
            provider = self.provider.provider_id(),
            issuer = fly_oidc::issuer_url(&self.org),
            mapping = shell_quote(DEFAULT_ATTRIBUTE_MAPPING),
            condition = shell_quote(&self.attribute_condition()),
        );
        if let Some(sa) = &self.service_account {
            let sa_project = sa
                .split_once('@')
                .and_then(|(_, d)| d.strip_suffix(".iam.gserviceaccount.com"))
                .map(|p| format!(" --project={p}"))
                .unwrap_or_else(|| project.clone());
            let _ = writeln!(
                out,
                "# Let the {who} impersonate {sa} (adding an existing binding is not an error):\ngcloud iam service-accounts add-iam-policy-binding {sa}{sa_project} \\\n  --role=roles/iam.workloadIdentityUser \\\n  --member={member} >/dev/null",
                member = shell_quote(&self.principal_set()),
            );
        } else {
            let _ = writeln!(
                out,
                "# No --service-account: grant roles to the principal set directly, for example\n#   gcloud storage buckets add-iam-policy-binding gs://BUCKET --role=roles/storage.objectViewer --member='{}'",
                self.principal_set()
            );
        }
        let sa_flag = self
            .service_account
            .as_ref()
            .map(|sa| format!(" --service-account {sa}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "# Then on the Machine, at start-up (for every Google SDK and gcloud):\n#   fly-oidc gcp credential-config --provider {}{sa_flag} --output /tmp/gcp-credentials.json\n#   export GOOGLE_APPLICATION_CREDENTIALS=/tmp/gcp-credentials.json",
            self.provider.name()
        );
        out
    }

    /// Terraform resources (hashicorp/google provider).
    pub fn terraform(&self) -> String {
        let project = match &self.project {
            Some(p) => format!("  project                            = {}\n", hcl_string(p)),
            None => String::new(),
        };
        let pool_tf = tf_name(self.provider.pool());
        let provider_tf = tf_name(self.provider.provider_id());
        let issuer_uri = fly_oidc::issuer_url(&self.org);
        // DEFAULT_ATTRIBUTE_MAPPING as an HCL map, its `=` aligned as `terraform fmt` does.
        let pairs: Vec<(String, String)> = DEFAULT_ATTRIBUTE_MAPPING
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(target, expr)| (hcl_string(target), hcl_string(expr)))
            .collect();
        let width = pairs
            .iter()
            .map(|(target, _)| target.len())
            .max()
            .unwrap_or(0);
        let mapping: String = pairs
            .iter()
            .map(|(target, expr)| format!("    {target:<w$} = {expr}\n", w = width))
            .collect();
        let mut out = format!(
            r#"# fly-oidc gcp setup: workload identity pool {pool} and OIDC provider {provider} for {issuer_uri}
resource "google_iam_workload_identity_pool" "{pool_tf}" {{
{project}  workload_identity_pool_id = {pool_q}
  display_name              = {display}
}}

resource "google_iam_workload_identity_pool_provider" "{provider_tf}" {{
{project}  workload_identity_pool_id          = google_iam_workload_identity_pool.{pool_tf}.workload_identity_pool_id
  workload_identity_pool_provider_id = {provider_q}
  attribute_mapping = {{
{mapping}  }}
  attribute_condition = {condition}
  oidc {{
    issuer_uri = {issuer}
  }}
}}
"#,
            pool = self.provider.pool(),
            provider = self.provider.provider_id(),
            pool_q = hcl_string(self.provider.pool()),
            provider_q = hcl_string(self.provider.provider_id()),
            display = hcl_string(&format!("Fly.io {}", self.org)),
            condition = hcl_string(&self.attribute_condition()),
            issuer = hcl_string(&issuer_uri),
        );
        if let Some(sa) = &self.service_account {
            let _ = write!(
                out,
                r#"
resource "google_service_account_iam_member" "{pool_tf}_workload_identity_user" {{
  service_account_id = {sa_id}
  role               = "roles/iam.workloadIdentityUser"
  member             = {member}
}}
"#,
                sa_id = hcl_string(&format!("projects/-/serviceAccounts/{sa}")),
                member = hcl_string(&self.principal_set()),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{GcpSetup, check_id};

    /// `--project` is a project id by Google's rule (as `serve --gcp-project`), not a number;
    /// `--service-account` an email as the provider takes it.
    #[test]
    fn the_project_and_service_account_follow_the_libraries_rules() {
        let setup = |project: &str, sa: &str| {
            GcpSetup::new(
                "1",
                Some(project),
                "fly-pool",
                "acme-web",
                "acme",
                None,
                Some(sa),
            )
        };
        let sa = "reader@my-proj-1.iam.gserviceaccount.com";
        for good in ["my-proj-1", "my-project", "example.com:my-project"] {
            assert!(setup(good, sa).is_ok(), "{good}");
        }
        let err = setup("123456789012", sa).unwrap_err().to_string();
        assert!(err.contains("this is a project number"), "{err}");
        assert!(err.contains("(from --project)"), "{err}");
        // Shorter than 6, or not lowercase letters, digits and '-'.
        for bad in ["abc", "my_proj", "My-Project", "my-project-"] {
            let err = setup(bad, sa).expect_err(bad).to_string();
            assert!(err.contains("6 to 30 lowercase letters"), "{err}");
        }
        for bad in [
            "reader",
            "a b@x.iam.gserviceaccount.com",
            "$(id)@x.iam.gserviceaccount.com",
        ] {
            let err = setup("my-project", bad).expect_err(bad).to_string();
            assert!(err.contains("(from --service-account)"), "{err}");
        }
    }

    /// The Terraform attribute mapping is DEFAULT_ATTRIBUTE_MAPPING, its `=` aligned.
    #[test]
    fn the_terraform_attribute_mapping_is_the_default_mapping() {
        let setup = GcpSetup::new("1", None, "fly-pool", "acme-web", "acme", None, None).unwrap();
        assert!(setup.terraform().contains(
            r#"
  attribute_mapping = {
    "google.subject" = "assertion.sub"
    "attribute.org"  = "assertion.org_name"
    "attribute.app"  = "assertion.app_name"
  }
  attribute_condition = "#
        ));
    }

    /// Pool and provider ids: Google's rule, and `gcp-` (reserved by Google) refused here rather
    /// than by gcloud later.
    #[test]
    fn ids_follow_googles_rule_and_the_reserved_prefix_is_refused() {
        for good in ["fly-pool", "abcd", "a-b-c-1", &"a".repeat(32)] {
            assert!(check_id(good, "--pool", "pool").is_ok(), "{good}");
        }
        for bad in [
            "gcp-pool",
            "abc",
            "Pool-1",
            "1pool",
            "pool-",
            "po_ol",
            &"a".repeat(33),
        ] {
            let err = check_id(bad, "--pool", "pool").expect_err(bad).to_string();
            assert!(err.contains("--pool"), "{err}");
            assert!(err.contains("not starting with gcp-"), "{err}");
        }
    }
}
