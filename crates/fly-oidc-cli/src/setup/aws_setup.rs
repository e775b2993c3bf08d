//! What to create on AWS for a Fly app: the IAM OIDC provider for the org's issuer and a role
//! whose trust policy accepts the app's tokens, as a trust policy document, AWS CLI commands
//! (that can be run again, and for a second app of the same org) or Terraform.

use crate::setup::check::{self, CheckError, ClientFn};
use crate::setup::subject::{SubjectError, check_app, check_org};
use crate::setup::trust_policy;
use fly_oidc::shell_quote;
use fly_oidc_aws::role_name_of;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// What [`AwsSetupOptions::render`] prints: [`AwsSetup::commands`], [`AwsSetup::trust_policy`]
/// (pretty-printed) or [`AwsSetup::terraform`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AwsSetupFormat {
    /// AWS CLI commands (a shell script that can be run again)
    #[default]
    Commands,
    /// The trust policy document alone
    Json,
    /// Terraform resources
    Terraform,
}

/// The options of an AWS set-up, as given (what `fly-oidc aws setup` takes as flags): the
/// role, whose tokens it trusts, and the format. [`setup`](Self::setup) checks them (an org
/// or app left out is read from a live Fly token) and [`render`](Self::render) makes the text.
///
/// `AwsSetupOptions` derives `clap::Args`: each field is a flag of
/// `fly-oidc aws setup` (`role_name`: `--role-name`), its help the first paragraph of its
/// documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct AwsSetupOptions {
    /// The IAM role to create or update (required).
    ///
    /// 1 to 64 of letters, digits and `+=,.@_-`.
    #[arg(long, value_name = "NAME", long_help = None)]
    pub role_name: String,
    /// The 12-digit AWS account id [default: looked up with `aws sts get-caller-identity`]
    ///
    /// `None`: the commands and Terraform look it up, and the trust policy alone holds
    /// `<ACCOUNT_ID>` (with a warning).
    #[arg(long, value_name = "ID", long_help = None)]
    pub account_id: Option<String>,
    /// The Fly org slug (the issuer is https://oidc.fly.io/<org>) [default: from a Fly token's iss]
    #[arg(long, value_name = "SLUG")]
    pub org: Option<String>,
    /// The Fly app whose tokens the role trusts (sub <org>:<app>:*) [default: from a Fly token's sub]
    #[arg(long, value_name = "APP", conflicts_with = "sub")]
    pub app: Option<String>,
    /// A sub pattern (StringLike) instead of <org>:<app>:*
    #[arg(long, value_name = "PATTERN")]
    pub sub: Option<String>,
    /// The token audience the role trusts (and the OIDC provider's client id).
    #[arg(long, value_name = "AUD", default_value = fly_oidc_aws::DEFAULT_AUDIENCE)]
    pub audience: Option<String>,
    /// The role's maximum session duration, 3600..=43200 seconds.
    ///
    /// `None`: IAM's default (3600).
    #[arg(long, value_name = "SECONDS", long_help = None)]
    pub max_session_duration: Option<u32>,
    /// Allow session tags (sts:TagSession) and print an example permission policy granting by aws:PrincipalTag
    ///
    /// For a provider that asks Fly for AWS session tags (`--principal-tags`,
    /// `FLY_OIDC_AWS_PRINCIPAL_TAGS`): the trust policy's statement also allows
    /// `sts:TagSession`, and the example policy names a tag key read from a live Fly token,
    /// else the placeholder [`TAG_KEY_PLACEHOLDER`].
    #[arg(long, long_help = None)]
    pub principal_tags: bool,
    /// Print a chained role instead, which the role ARN (the one Fly tokens assume) assumes with sts:AssumeRole
    ///
    /// Role chaining, usually into another account ([`ChainedRoleSetup`]): the trust policy
    /// allows `sts:AssumeRole` (and `sts:TagSession` with
    /// [`principal_tags`](Self::principal_tags)) for the principal `{"AWS": ARN}`, and the first
    /// role needs permission to assume it. No Fly token is read. Not with the web-identity
    /// flags (`--org`, `--app`, `--sub`, `--audience`): a chained role trusts the first role,
    /// not Fly tokens.
    #[arg(long, value_name = "ARN", conflicts_with_all = ["org", "app", "sub", "audience"], long_help = None)]
    pub trusted_role_arn: Option<String>,
    /// The external id the chained role requires (sts:ExternalId); only with --trusted-role-arn
    ///
    /// A `StringEquals` condition on `sts:ExternalId` in the chained role's trust policy; the
    /// provider sends it with `--chain-external-id` / `FLY_OIDC_AWS_CHAIN_EXTERNAL_ID`.
    #[arg(long, value_name = "ID", requires = "trusted_role_arn", long_help = None)]
    pub external_id: Option<String>,
    /// What to print.
    #[arg(long, value_enum, default_value_t)]
    pub format: AwsSetupFormat,
}

/// The text of a set-up, and what to tell its user on the side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupText {
    /// What to print (ends with a newline).
    pub text: String,
    /// Warnings and notes about the text (a front end prints each on stderr), such as
    /// [`AwsSetup::trust_policy_warning`] and [`AwsSetup::tag_key_warning`].
    pub warnings: Vec<String>,
}

impl AwsSetupOptions {
    /// Check the options and build the set-up. An org left out is read from a live Fly token
    /// (`iss`), and so is an app when no `sub` is given (`sub`); with
    /// [`principal_tags`](Self::principal_tags), the example's tag key is read from a live
    /// token with session tags ([`tag_key`]); `client` makes the Fly token client, at most
    /// twice.
    ///
    /// Errors: [`CheckError::Usage`] naming the flag and the fix (a bad value, or an org or
    /// app left out with no Fly token to read it from). A chained role
    /// ([`trusted_role_arn`](Self::trusted_role_arn)) is [`chained_setup`](Self::chained_setup)'s.
    pub async fn setup(&self, client: ClientFn<'_>) -> Result<AwsSetup, CheckError> {
        let need_app = self.sub.is_none();
        let (org, app) =
            check::org_app(client, self.org.clone(), self.app.clone(), need_app).await?;
        let setup = AwsSetup::new(
            &self.role_name,
            self.account_id.as_deref(),
            &org,
            app.as_deref().filter(|_| need_app),
            self.sub.as_deref(),
            self.audience.as_deref(),
            self.max_session_duration,
        )?;
        Ok(match self.principal_tags {
            false => setup,
            true => {
                let key = tag_key(client, &setup.audience).await;
                setup.with_principal_tags(key)
            }
        })
    }

    /// The chained role's set-up ([`chained_setup`](Self::chained_setup)), else
    /// [`setup`](Self::setup)'s, rendered in [`format`](Self::format).
    pub async fn render(&self, client: ClientFn<'_>) -> Result<SetupText, CheckError> {
        Ok(match self.chained_setup()? {
            Some(chained) => chained.render(self.format),
            None => self.setup(client).await?.render(self.format),
        })
    }

    /// With [`trusted_role_arn`](Self::trusted_role_arn), the chained role's set-up, checked;
    /// `None` without it (a role for Fly tokens, [`setup`](Self::setup)'s). Needs no Fly token.
    ///
    /// Errors: [`SubjectError`] naming the flag of a bad value (the role name, account id,
    /// maximum session duration, trusted role ARN or external id), or a web-identity flag given
    /// with it (`--org`, `--app`, `--sub`; the command line refuses `--audience` too).
    pub fn chained_setup(&self) -> Result<Option<ChainedRoleSetup>, SubjectError> {
        let Some(trusted) = &self.trusted_role_arn else {
            return match self.external_id {
                Some(_) => Err(SubjectError {
                    flag: "--external-id",
                    reason: "an external id is a condition of a chained role's trust policy: give --trusted-role-arn too".into(),
                }),
                None => Ok(None),
            };
        };
        let web_identity = [
            ("--org", self.org.is_some()),
            ("--app", self.app.is_some()),
            ("--sub", self.sub.is_some()),
        ];
        if let Some((flag, _)) = web_identity.into_iter().find(|(_, given)| *given) {
            return Err(SubjectError {
                flag,
                reason: format!(
                    "{flag} says whose Fly tokens a role trusts, but a chained role (--trusted-role-arn) trusts the first role instead: set up the first role without --trusted-role-arn, and the chained one without {flag}"
                ),
            });
        }
        ChainedRoleSetup::new(
            &self.role_name,
            self.account_id.as_deref(),
            trusted,
            self.external_id.as_deref(),
            self.max_session_duration,
            self.principal_tags,
        )
        .map(Some)
    }
}

/// What the example permission policy of `aws setup --principal-tags` names when no tag key
/// could be read from a live Fly token: the user must replace it.
pub const TAG_KEY_PLACEHOLDER: &str = "TAG_KEY";

/// The session tag key the example permission policy of `aws setup --principal-tags` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagKey {
    /// The first principal tag key of a live Fly token's session tags claim.
    Read(String),
    /// None could be read, for this reason: [`TAG_KEY_PLACEHOLDER`] stands in.
    Placeholder(String),
}

impl TagKey {
    /// The key the policy names (the placeholder for [`TagKey::Placeholder`]).
    pub fn key(&self) -> &str {
        match self {
            TagKey::Read(key) => key,
            TagKey::Placeholder(_) => TAG_KEY_PLACEHOLDER,
        }
    }
}

/// Whether `key` can stand in a policy as written: 1 to 128 ASCII letters, digits and
/// `_.:/=+-@` (AWS's tag key characters, without spaces and other letters).
fn plain_tag_key(key: &str) -> bool {
    (1..=128).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:/=+-@".contains(c))
}

/// The tag key for the example permission policy: the first principal tag key of a live Fly
/// token for `audience` asked with session tags (Fly does not document its keys, so they are
/// read, never assumed); without one (no token, no tags claim, no tags, a key that cannot be
/// written as it is), the placeholder, with why.
pub async fn tag_key(client: ClientFn<'_>, audience: &str) -> TagKey {
    let client = match client() {
        Ok(client) => client,
        Err(e) => return TagKey::Placeholder(format!("no Fly token client: {e}")),
    };
    let options = fly_oidc::TokenOptions::default().aws_principal_tags(true);
    let token = match client.fetch_token_with(Some(audience), options).await {
        Ok(token) => token,
        Err(e) => return TagKey::Placeholder(format!("no Fly token: {}", e.message())),
    };
    let Some(tags) = token.claims().aws_session_tags() else {
        return TagKey::Placeholder(format!(
            "the Fly token has no {} claim",
            fly_oidc::AWS_TAGS_CLAIM
        ));
    };
    match tags.principal_tags.keys().next() {
        None => {
            TagKey::Placeholder("the Fly token's session tags claim has no principal tags".into())
        }
        Some(key) if plain_tag_key(key) => TagKey::Read(key.clone()),
        Some(key) => TagKey::Placeholder(format!(
            "the Fly token's first tag key {} is not written as it is in a policy",
            crate::common::shown_value(key)
        )),
    }
}

/// An example permission policy granting by the session tag `key`: each session reaches only
/// its own prefix (the tag's value) of one bucket, `my-bucket`.
pub fn permission_policy_example(key: &TagKey) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": format!("arn:aws:s3:::my-bucket/${{aws:PrincipalTag/{}}}/*", key.key()),
        }]
    })
}

/// The role every set-up creates: its name (`--role-name`), its account (`--account-id`;
/// `None`: the commands look it up, elsewhere `<ACCOUNT_ID>`) and its maximum session duration
/// (`--max-session-duration`, 3600..=43200 seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Role {
    name: String,
    account_id: Option<String>,
    max_session_duration: Option<u32>,
}

impl Role {
    /// Check the role's settings, common to every set-up.
    fn new(
        name: &str,
        account_id: Option<&str>,
        max_session_duration: Option<u32>,
    ) -> Result<Self, SubjectError> {
        SubjectError::unless(
            fly_oidc_aws::is_role_name(name),
            "--role-name",
            name,
            "is not an IAM role name: 1 to 64 of letters, digits and +=,.@_-",
        )?;
        if let Some(id) = account_id {
            SubjectError::unless(
                fly_oidc_aws::is_account_id(id),
                "--account-id",
                id,
                "is not an AWS account id (12 digits)",
            )?;
        }
        if let Some(d) = max_session_duration
            && !(3600..=43200).contains(&d)
        {
            return Err(SubjectError {
                flag: "--max-session-duration",
                reason: format!("{d} is outside IAM's range of 3600..=43200 seconds"),
            });
        }
        Ok(Self {
            name: name.to_owned(),
            account_id: account_id.map(str::to_owned),
            max_session_duration,
        })
    }

    /// The account id, or `<ACCOUNT_ID>` when unknown.
    fn account(&self) -> &str {
        self.account_id.as_deref().unwrap_or("<ACCOUNT_ID>")
    }

    /// Start the commands: `header`, the credentials they need (`run_with`), `set -eu`, and the
    /// account look-up when it is not known. Returns the account as the script names it.
    fn script_start(&self, out: &mut String, header: &str, run_with: &str) -> String {
        let _ = writeln!(
            out,
            "{header}# Run with AWS credentials allowed to manage IAM{run_with}; safe to run again.\nset -eu"
        );
        match &self.account_id {
            Some(id) => id.clone(),
            None => {
                out.push_str(LOOK_UP_ACCOUNT);
                "${ACCOUNT_ID}".to_owned()
            }
        }
    }

    /// The Terraform role resource and its ARN output, after `header`: the trust policy's one
    /// statement allows `actions` for `principal` (an HCL object's body), under `condition`
    /// (lines of its own, or empty).
    fn terraform(
        &self,
        header: &str,
        principal: &str,
        actions: &[&str],
        condition: &str,
    ) -> String {
        let name = tf_name(&self.name);
        let duration = self
            .max_session_duration
            .map(|d| format!("  max_session_duration = {d}\n"))
            .unwrap_or_default();
        // Plain action names: Rust's Debug writes them as HCL's string and list literals.
        let action = match actions {
            [one] => format!("{one:?}"),
            _ => format!("{actions:?}"),
        };
        format!(
            r#"{header}resource "aws_iam_role" "{name}" {{
  name = {role_q}
{duration}  assume_role_policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [{{
      Effect    = "Allow"
      Principal = {{ {principal} }}
      Action    = {action}
{condition}    }}]
  }})
}}

output "{name}_arn" {{
  value = aws_iam_role.{name}.arn
}}
"#,
            role_q = hcl_string(&self.name),
        )
    }
}

/// The trust policy's actions: `first`, with `sts:TagSession` when session tags are asked for.
fn actions(first: &'static str, tags: bool) -> Vec<&'static str> {
    match tags {
        false => vec![first],
        true => vec![first, trust_policy::TAG_SESSION],
    }
}

/// `actions` as a policy's `Action`: a string when there is one.
fn action_json(actions: &[&str]) -> Value {
    match actions {
        [one] => json!(one),
        _ => json!(actions),
    }
}

/// How the commands look the account up when `--account-id` is not given: the line that sets
/// `ACCOUNT_ID`, which the rest of the script expands as `${ACCOUNT_ID}`.
const LOOK_UP_ACCOUNT: &str =
    "ACCOUNT_ID=\"$(aws sts get-caller-identity --query Account --output text)\"\n";

/// `text` (a policy document, a line to print) as one shell word: single-quoted, or, when the
/// account is looked up by the script (`account_known` false), double-quoted with every `"`,
/// `\`, `` ` `` and `$` escaped except in `${ACCOUNT_ID}`, which the shell expands.
fn shell_word(text: &str, account_known: bool) -> String {
    if account_known {
        return shell_quote(text);
    }
    format!(
        "\"{}\"",
        text.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('`', "\\`")
            .replace('$', "\\$")
            .replace("\\${ACCOUNT_ID}", "${ACCOUNT_ID}")
    )
}

/// What the commands do to the trust policy of a role that already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Existing {
    /// Replace it (the web-identity role: this set-up owns its trust policy).
    Replace,
    /// Leave it, and say what to add (a chained role may trust other roles too: replacing its
    /// policy would take their access away).
    Keep,
}

/// The commands that create `role` with the trust policy `policy` (one shell word), or update
/// an existing role (its maximum session duration, and its trust policy as `existing` says).
fn write_role_commands(out: &mut String, role: &Role, policy: &str, existing: Existing) {
    let role_name = &role.name;
    let _ = writeln!(out, "TRUST_POLICY={policy}");
    let duration = role
        .max_session_duration
        .map(|d| format!(" --max-session-duration {d}"))
        .unwrap_or_default();
    let role = shell_quote(role_name);
    let update = match existing {
        Existing::Replace => format!(
            "aws iam update-assume-role-policy --role-name {role} --policy-document \"$TRUST_POLICY\""
        ),
        Existing::Keep => {
            let said = format!(
                "Role {role_name} exists: it is left as it is, its trust policy and its maximum session duration (changing them would change them for the roles it already trusts); add this set-up's statement, below, to its trust policy (aws iam get-role --role-name {role_name} --query Role.AssumeRolePolicyDocument, then aws iam update-assume-role-policy --role-name {role_name} --policy-document file://merged.json):"
            );
            format!(
                "echo {} >&2\n  echo \"$TRUST_POLICY\" >&2",
                shell_quote(&said)
            )
        }
    };
    let _ = writeln!(
        out,
        "if aws iam get-role --role-name {role} >/dev/null 2>&1; then\n  {update}"
    );
    if !duration.is_empty() && existing == Existing::Replace {
        let _ = writeln!(out, "  aws iam update-role --role-name {role}{duration}");
    }
    let _ = writeln!(
        out,
        "else\n  aws iam create-role --role-name {role} --assume-role-policy-document \"$TRUST_POLICY\"{duration} >/dev/null\nfi"
    );
}

/// The first of the next steps the commands print: the role needs permission policies. The
/// role name needs no quoting in double quotes (letters, digits, `+=,.@_-`).
fn attach_permissions_step(role_name: &str) -> String {
    format!(
        "echo \"Next: attach permission policies to the role (aws iam attach-role-policy --role-name {role_name} --policy-arn ...),\"\n"
    )
}

/// What `aws setup` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSetup {
    role: Role,
    /// The Fly org slug (the issuer is `https://oidc.fly.io/<org>`).
    pub org: String,
    /// The `sub` pattern (`StringLike`), default `<org>:<app>:*`.
    pub sub: String,
    /// The audience (`StringEquals` on `:aud`, and a client id of the OIDC provider).
    pub audience: String,
    /// With session tags: the trust policy also allows `sts:TagSession`, and an example
    /// permission policy grants by this tag key; `None`: no session tags.
    pub principal_tags: Option<TagKey>,
}

impl AwsSetup {
    /// Check the values and build the set-up. `app` or `sub` says whose tokens are trusted.
    pub fn new(
        role_name: &str,
        account_id: Option<&str>,
        org: &str,
        app: Option<&str>,
        sub: Option<&str>,
        audience: Option<&str>,
        max_session_duration: Option<u32>,
    ) -> Result<Self, SubjectError> {
        check_org(org)?;
        let role = Role::new(role_name, account_id, max_session_duration)?;
        let sub = match (app, sub) {
            (Some(_), Some(_)) => {
                return Err(SubjectError {
                    flag: "--sub",
                    reason: "give --app or --sub, not both".into(),
                });
            }
            (Some(app), None) => {
                check_app(app)?;
                format!("{org}:{app}:*")
            }
            (None, Some(sub)) => {
                SubjectError::unless(
                    sub.starts_with(&format!("{org}:")),
                    "--sub",
                    sub,
                    &format!("does not start with \"{org}:\": Fly's sub is <org>:<app>:<machine>"),
                )?;
                sub.to_owned()
            }
            (None, None) => {
                return Err(SubjectError {
                    flag: "--app",
                    reason:
                        "no app: pass --app APP (or --sub PATTERN), or run on a Machine of the app"
                            .into(),
                });
            }
        };
        let audience = audience.unwrap_or(fly_oidc_aws::DEFAULT_AUDIENCE);
        if audience.is_empty()
            || audience.len() > 255
            || audience.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c))
        {
            return Err(SubjectError {
                flag: "--audience",
                reason: "the audience must be 1 to 255 characters without spaces, quotes, '\\', '$' or '`' (an IAM OIDC client id)".into(),
            });
        }
        Ok(Self {
            role,
            org: org.to_owned(),
            sub,
            audience: audience.to_owned(),
            principal_tags: None,
        })
    }

    /// The text in `format`; the JSON trust policy comes with
    /// [`trust_policy_warning`](Self::trust_policy_warning). With session tags, every format
    /// comes with [`tag_key_warning`](Self::tag_key_warning), and the JSON trust policy
    /// (printed alone) with the example permission policy as a note.
    pub fn render(&self, format: AwsSetupFormat) -> SetupText {
        let mut warnings = Vec::new();
        let text = match format {
            AwsSetupFormat::Commands => self.commands(),
            AwsSetupFormat::Json => {
                warnings.extend(self.trust_policy_warning().map(str::to_owned));
                if let Some(key) = &self.principal_tags {
                    warnings.push(format!(
                        "an example permission policy granting by session tag (replace my-bucket): {}",
                        permission_policy_example(key)
                    ));
                }
                format!("{:#}\n", self.trust_policy())
            }
            AwsSetupFormat::Terraform => self.terraform(),
        };
        warnings.extend(self.tag_key_warning());
        SetupText { text, warnings }
    }

    /// The same set-up for a provider that asks for session tags: the trust policy also
    /// allows `sts:TagSession`, and the example permission policy names `key`.
    pub fn with_principal_tags(self, key: TagKey) -> Self {
        Self {
            principal_tags: Some(key),
            ..self
        }
    }

    /// The trust policy's actions.
    fn actions(&self) -> Vec<&'static str> {
        actions(trust_policy::ACTION, self.principal_tags.is_some())
    }

    /// What to tell the user when the example permission policy names the placeholder
    /// [`TAG_KEY_PLACEHOLDER`]; `None` without session tags or with a key read from a token.
    pub fn tag_key_warning(&self) -> Option<String> {
        match &self.principal_tags {
            Some(TagKey::Placeholder(why)) => Some(format!(
                "the example permission policy names {TAG_KEY_PLACEHOLDER}, a placeholder ({why}): replace it with a tag key that `fly-oidc token --claims --aws-principal-tags` lists on a Machine of the app"
            )),
            _ => None,
        }
    }

    /// The comment lines (`# ...`) about session tags: what the trust policy allows, where
    /// the tag key came from and the example permission policy; empty without session tags.
    fn tag_comments(&self) -> String {
        let Some(key) = &self.principal_tags else {
            return String::new();
        };
        let mut out = String::from(
            "# Session tags: the trust policy also allows sts:TagSession, so STS makes the token's\n# principal tags session tags (aws:PrincipalTag/<key> in policies).\n",
        );
        match key {
            TagKey::Read(k) => {
                let _ = writeln!(
                    out,
                    "# The tag key {k} was read from a live Fly token ({}).",
                    fly_oidc::AWS_TAGS_CLAIM
                );
            }
            TagKey::Placeholder(why) => {
                let _ = writeln!(
                    out,
                    "# {TAG_KEY_PLACEHOLDER} is a placeholder ({why}): replace it with a tag key that\n# `fly-oidc token --claims --aws-principal-tags` lists on a Machine of the app."
                );
            }
        }
        out.push_str("# An example permission policy granting by that tag (replace my-bucket):\n");
        for line in format!("{:#}", permission_policy_example(key)).lines() {
            let _ = writeln!(out, "#   {line}");
        }
        out
    }

    /// The issuer host and path, `oidc.fly.io/<org>` (the prefix of the condition keys).
    pub fn issuer_key(&self) -> String {
        fly_oidc::issuer_key(&fly_oidc::issuer_url(&self.org)).to_owned()
    }

    pub fn trust_policy(&self) -> Value {
        self.trust_policy_for(self.role.account())
    }

    /// What to tell the user who prints [`trust_policy`](Self::trust_policy) alone: without
    /// an account id its principal holds the placeholder `<ACCOUNT_ID>`. `None` when the
    /// account id is known (the commands and Terraform look it up themselves).
    pub fn trust_policy_warning(&self) -> Option<&'static str> {
        self.role.account_id.is_none().then_some(
            "no --account-id: the policy's principal holds <ACCOUNT_ID>; replace it, or pass --account-id",
        )
    }

    fn trust_policy_for(&self, account: &str) -> Value {
        let key = self.issuer_key();
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": format!("arn:aws:iam::{account}:oidc-provider/{key}")},
                "Action": action_json(&self.actions()),
                "Condition": {
                    "StringEquals": {format!("{key}:aud"): self.audience},
                    "StringLike": {format!("{key}:sub"): self.sub},
                }
            }]
        })
    }

    /// The AWS CLI commands, as a `sh` script that can be run again: an existing OIDC
    /// provider gets the audience added to its client ids, an existing role gets its trust
    /// policy (and maximum session duration) updated.
    pub fn commands(&self) -> String {
        let mut out = String::new();
        let key = self.issuer_key();
        let url = fly_oidc::issuer_url(&self.org);
        let header = format!(
            "# fly-oidc aws setup: OIDC provider {url} and role {} for sub {}\n",
            self.role.name, self.sub
        );
        let account = self.role.script_start(&mut out, &header, "");
        let arn = format!("\"arn:aws:iam::{account}:oidc-provider/{key}\"");
        let audience = shell_quote(&self.audience);
        let raw_audience = &self.audience;
        let _ = writeln!(
            out,
            "if aws iam get-open-id-connect-provider --open-id-connect-provider-arn {arn} >/dev/null 2>&1; then\n  # One provider per issuer per account: add this audience to its client ids if missing.\n  if [ \"$(aws iam get-open-id-connect-provider --open-id-connect-provider-arn {arn} --query \"contains(ClientIDList, '{raw_audience}')\" --output text)\" != True ]; then\n    aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn {arn} --client-id {audience}\n  fi\nelse\n  aws iam create-open-id-connect-provider --url {url} --client-id-list {audience}\nfi"
        );
        let policy = self.trust_policy_for(&account).to_string();
        // The account may be a shell variable.
        let policy = shell_word(&policy, self.role.account_id.is_some());
        write_role_commands(&mut out, &self.role, &policy, Existing::Replace);
        // The next steps, printed when the script runs: a comment could not show a looked-up
        // account id.
        out.push_str(&attach_permissions_step(&self.role.name));
        let _ = writeln!(
            out,
            "echo \"then on Fly: fly secrets set AWS_ROLE_ARN=arn:aws:iam::{account}:role/{name} (Fly's init then writes /.fly/oidc_token)\"",
            name = self.role.name
        );
        out.push_str(&self.tag_comments());
        out
    }

    /// Terraform resources: the OIDC provider and the role.
    ///
    /// One `aws_iam_openid_connect_provider` exists per issuer per account: for a second app
    /// of the same org, add the audience to the existing resource's `client_id_list` instead.
    pub fn terraform(&self) -> String {
        let key = self.issuer_key();
        let url = fly_oidc::issuer_url(&self.org);
        let org_tf = tf_name(&self.org);
        let aud = hcl_string(&self.audience);
        let header = format!(
            r#"# fly-oidc aws setup: OIDC provider {url} and role {role} for sub {sub}
# One OIDC provider per issuer per account: for a second app of this org, reuse
# aws_iam_openid_connect_provider.fly_{org_tf} and add its audience to client_id_list.
resource "aws_iam_openid_connect_provider" "fly_{org_tf}" {{
  url            = "{url}"
  client_id_list = [{aud}]
}}

"#,
            role = self.role.name,
            sub = self.sub,
        );
        let condition = format!(
            "      Condition = {{\n        StringEquals = {{ \"{key}:aud\" = {aud} }}\n        StringLike   = {{ \"{key}:sub\" = {sub_q} }}\n      }}\n",
            sub_q = hcl_string(&self.sub),
        );
        let principal = format!("Federated = aws_iam_openid_connect_provider.fly_{org_tf}.arn");
        let resources = self
            .role
            .terraform(&header, &principal, &self.actions(), &condition);
        resources + &self.tag_comments()
    }
}

/// What `aws setup --trusted-role-arn` prints: a role that another role (the one Fly tokens
/// assume, usually in another account) assumes with `sts:AssumeRole`, the second hop of a role
/// chain. Its trust policy names the first role as principal, with `sts:TagSession` when the
/// first role's session carries session tags (their transitive ones pass along the chain) and
/// an `sts:ExternalId` condition when one is required; the first role needs a permission policy
/// allowing `sts:AssumeRole` on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainedRoleSetup {
    /// The chained role (a chained session lasts at most an hour whatever its maximum says).
    role: Role,
    /// The first role, which assumes this one.
    pub trusted_role_arn: String,
    /// The external id the trust policy requires (`sts:ExternalId`).
    pub external_id: Option<String>,
    /// Whether the trust policy (and the first role's permission) also allows `sts:TagSession`.
    pub principal_tags: bool,
}

impl ChainedRoleSetup {
    /// Check the values and build the set-up: the role as [`AwsSetup::new`] checks it, the
    /// trusted role as the provider checks a role ARN (`--trusted-role-arn`), the external id
    /// as STS does (`--external-id`).
    pub fn new(
        role_name: &str,
        account_id: Option<&str>,
        trusted_role_arn: &str,
        external_id: Option<&str>,
        max_session_duration: Option<u32>,
        principal_tags: bool,
    ) -> Result<Self, SubjectError> {
        let role = Role::new(role_name, account_id, max_session_duration)?;
        fly_oidc_aws::check_role_arn(trusted_role_arn).map_err(|reason| SubjectError {
            flag: "--trusted-role-arn",
            reason,
        })?;
        SubjectError::unless(
            !trusted_role_arn.contains(|c: char| c.is_whitespace() || c.is_control()),
            "--trusted-role-arn",
            trusted_role_arn,
            "holds a space or control character, which no role ARN has",
        )?;
        if let Some(id) = external_id {
            fly_oidc_aws::check_external_id(id).map_err(|reason| SubjectError {
                flag: "--external-id",
                reason,
            })?;
        }
        // Checked above: the ARN ends in `role/[path/]name`.
        SubjectError::unless(
            !(account_id.is_some_and(|a| fly_oidc_aws::arn_account_id(trusted_role_arn) == Some(a))
                // IAM role names are unique whatever their case.
                && role_name_of(trusted_role_arn).eq_ignore_ascii_case(role_name)),
            "--role-name",
            role_name,
            "is the first role itself (--trusted-role-arn, in --account-id): give the chained role's name; its trust policy must not be replaced, or the app loses its access",
        )?;
        Ok(Self {
            role,
            trusted_role_arn: trusted_role_arn.to_owned(),
            external_id: external_id.map(str::to_owned),
            principal_tags,
        })
    }

    /// What the first role does to this one (`sts:TagSession` when session tags pass along
    /// the chain).
    fn actions(&self) -> Vec<&'static str> {
        actions(trust_policy::ASSUME_ROLE, self.principal_tags)
    }

    /// The trust policy document: the first role may assume this one.
    pub fn trust_policy(&self) -> Value {
        let mut statement = json!({
            "Effect": "Allow",
            "Principal": {"AWS": self.trusted_role_arn},
            "Action": action_json(&self.actions()),
        });
        if let Some(id) = &self.external_id {
            statement["Condition"] = json!({"StringEquals": {"sts:ExternalId": id}});
        }
        json!({"Version": "2012-10-17", "Statement": [statement]})
    }

    /// The `:`-separated part `n` of the first role's ARN (checked: it has six).
    fn trusted_part(&self, n: usize) -> &str {
        self.trusted_role_arn.split(':').nth(n).unwrap_or_default()
    }

    /// The first role's name, as `--role-name` takes it.
    fn trusted_role_name(&self) -> &str {
        role_name_of(&self.trusted_role_arn)
    }

    /// This role's ARN in `account` (the partition is the first role's: a chain stays in one).
    pub fn role_arn_in(&self, account: &str) -> String {
        format!(
            "arn:{}:iam::{account}:role/{}",
            self.trusted_part(1),
            self.role.name
        )
    }

    /// The permission policy the first role needs: the trust policy's actions on this role
    /// (in `account`).
    pub fn first_role_policy_for(&self, account: &str) -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": action_json(&self.actions()),
                "Resource": self.role_arn_in(account),
            }]
        })
    }

    /// The name of the first role's inline policy that allows it to assume this one.
    fn first_role_policy_name(&self) -> String {
        format!("fly-oidc-assume-{}", self.role.name)
    }

    /// How the provider is told to chain to this role (in `account`): the variables, else the
    /// flags.
    fn use_it(&self, account: &str) -> String {
        use fly_oidc::{Naming, Setting};
        use fly_oidc_aws::{CHAIN_EXTERNAL_ID, CHAIN_ROLE_ARN, ROLE_ARN};
        let arn = self.role_arn_in(account);
        let mut set = vec![(CHAIN_ROLE_ARN, arn.as_str())];
        if let Some(id) = &self.external_id {
            set.push((CHAIN_EXTERNAL_ID, id));
        }
        let var = |s: Setting| s.env_var().unwrap_or_default();
        let env: Vec<String> = set
            .iter()
            .map(|&(s, value)| format!("{} = \"{value}\"", var(s)))
            .collect();
        let flags: Vec<String> = set
            .iter()
            .map(|&(s, value)| format!("{} {value}", s.name(Naming::Flags)))
            .collect();
        format!(
            "on Fly, with {}={first} for the first role as before, set {} in fly.toml's [env]; or pass {} to aws credential-process and aws env (exec, serve and doctor: {}, {})",
            var(ROLE_ARN),
            env.join(" and "),
            flags.join(" "),
            CHAIN_ROLE_ARN.name(Naming::PerCloudFlags),
            CHAIN_EXTERNAL_ID.name(Naming::PerCloudFlags),
            first = self.trusted_role_arn
        )
    }

    /// The comment lines (`# ...`) about session tags; empty without them.
    fn tag_comments(&self) -> &'static str {
        match self.principal_tags {
            false => "",
            true => {
                "# Session tags: the trust policy also allows sts:TagSession: the first role's session\n# carries Fly's transitive session tags, which pass along the chain, and STS refuses them\n# without it.\n"
            }
        }
    }

    /// The header comment of the commands and Terraform.
    fn header(&self) -> String {
        format!(
            "# fly-oidc aws setup: role {} assumed by role {} with sts:AssumeRole (role chaining)\n",
            self.role.name, self.trusted_role_arn
        )
    }

    /// The text in `format`: the commands, the trust policy alone (with the first role's
    /// permission policy as a note, and a warning when it names `<ACCOUNT_ID>`) or Terraform.
    pub fn render(&self, format: AwsSetupFormat) -> SetupText {
        let (text, warnings) = match format {
            AwsSetupFormat::Commands => (self.commands(), Vec::new()),
            AwsSetupFormat::Terraform => (self.terraform(), Vec::new()),
            AwsSetupFormat::Json => {
                let mut warnings = vec![format!(
                    "the first role {} needs a permission policy allowing it to assume this one (in its account): {}",
                    self.trusted_role_arn,
                    self.first_role_policy_for(self.role.account())
                )];
                if self.role.account_id.is_none() {
                    warnings.push(
                        "no --account-id: that permission policy's Resource holds <ACCOUNT_ID>, this role's account; replace it, or pass --account-id".into(),
                    );
                }
                warnings.push(format!("then {}", self.use_it(self.role.account())));
                (format!("{:#}\n", self.trust_policy()), warnings)
            }
        };
        SetupText { text, warnings }
    }

    /// The AWS CLI commands, as a `sh` script that can be run again (with credentials of this
    /// role's account): the role, created or its trust policy updated; then, printed when the
    /// script runs (with the account it looked up), the first role's permission and the
    /// settings that chain to this role.
    pub fn commands(&self) -> String {
        let mut out = String::new();
        let account = self
            .role
            .script_start(&mut out, &self.header(), " in this role's account");
        let account = account.as_str();
        // The trust policy names no account of this role's.
        let policy = shell_quote(&self.trust_policy().to_string());
        if self
            .role
            .name
            .eq_ignore_ascii_case(self.trusted_role_name())
        {
            // The same name: refuse the first role itself, once the account is known.
            let _ = writeln!(
                out,
                "if [ \"{account}\" = {first_account} ]; then echo {said} >&2; exit 1; fi",
                first_account = shell_quote(self.trusted_part(4)),
                said = shell_quote(&format!(
                    "error: role {} is the first role {} itself, in this account: give --role-name the chained role's name",
                    self.role.name, self.trusted_role_arn
                )),
            );
        }
        write_role_commands(&mut out, &self.role, &policy, Existing::Keep);
        out.push_str(self.tag_comments());
        out.push_str(&attach_permissions_step(&self.role.name));
        let put = format!(
            "  aws iam put-role-policy --role-name {} --policy-name {} --policy-document {}",
            shell_quote(self.trusted_role_name()),
            shell_quote(&self.first_role_policy_name()),
            shell_quote(&self.first_role_policy_for(account).to_string()),
        );
        let steps = [
            format!(
                "then allow the first role to assume it, with AWS credentials of its account ({}):",
                self.trusted_part(4)
            ),
            put,
            format!("then {}", self.use_it(account)),
        ];
        // Printed when the script runs, the account expanded: in double quotes, everything
        // else escaped.
        for step in steps {
            let _ = writeln!(out, "echo {}", shell_word(&step, false));
        }
        out
    }

    /// Terraform: the role, and in comments the first role's permission policy (it lives in
    /// the first role's account, another provider) and the settings.
    pub fn terraform(&self) -> String {
        let condition = self
            .external_id
            .as_ref()
            .map(|id| {
                format!(
                    "      Condition = {{\n        StringEquals = {{ \"sts:ExternalId\" = {} }}\n      }}\n",
                    hcl_string(id)
                )
            })
            .unwrap_or_default();
        let principal = format!("AWS = {}", hcl_string(&self.trusted_role_arn));
        let mut out = self
            .role
            .terraform(&self.header(), &principal, &self.actions(), &condition);
        out.push_str(self.tag_comments());
        let placeholder = match self.role.account_id {
            Some(_) => "",
            None => " (<ACCOUNT_ID>: this role's account)",
        };
        let _ = writeln!(
            out,
            "# The first role needs this permission policy, in its account ({}), as\n# aws_iam_role_policy {:?} of role {:?}{placeholder}:",
            self.trusted_part(4),
            self.first_role_policy_name(),
            self.trusted_role_name(),
        );
        let policy = self.first_role_policy_for(self.role.account());
        for line in format!("{policy:#}").lines() {
            let _ = writeln!(out, "#   {line}");
        }
        let _ = writeln!(out, "# Then {}", self.use_it(self.role.account()));
        out
    }
}

/// `s` as an HCL string literal.
pub fn hcl_string(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace("${", "$${")
        .replace("%{", "%%{");
    format!("\"{escaped}\"")
}

/// A Terraform resource name from `s`: letters, digits and `_`.
pub fn tf_name(s: &str) -> String {
    let name: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("r_{name}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::{AwsSetup, AwsSetupFormat, AwsSetupOptions};
    use crate::setup::check::CheckError;
    use fly_oidc::{BuildError, FlyOidcClient};

    /// A client that must not be made (org and app are given).
    fn no_client() -> Result<FlyOidcClient, BuildError> {
        panic!("no live token should be needed")
    }

    #[tokio::test]
    async fn options_render_each_format_and_only_the_json_policy_warns() {
        let options = |format| AwsSetupOptions {
            role_name: "r".into(),
            org: Some("acme".into()),
            app: Some("web".into()),
            format,
            ..AwsSetupOptions::default()
        };
        let json = options(AwsSetupFormat::Json)
            .render(&no_client)
            .await
            .unwrap();
        let policy: serde_json::Value = serde_json::from_str(&json.text).unwrap();
        assert_eq!(
            policy["Statement"][0]["Condition"]["StringLike"]["oidc.fly.io/acme:sub"],
            "acme:web:*"
        );
        assert_eq!(
            policy["Statement"][0]["Condition"]["StringEquals"]["oidc.fly.io/acme:aud"],
            fly_oidc_aws::DEFAULT_AUDIENCE
        );
        assert!(json.warnings.iter().any(|w| w.contains("<ACCOUNT_ID>")));
        let commands = options(AwsSetupFormat::Commands)
            .render(&no_client)
            .await
            .unwrap();
        assert!(
            commands.text.contains("aws iam create-role"),
            "{}",
            commands.text
        );
        assert_eq!(commands.warnings, Vec::<String>::new());
        let terraform = options(AwsSetupFormat::Terraform)
            .render(&no_client)
            .await
            .unwrap();
        assert!(terraform.text.contains("resource \"aws_iam_role\" \"r\""));
        assert_eq!(terraform.warnings, Vec::<String>::new());
        // A sub pattern needs no app (and no live token); a bad role name is a usage error.
        let sub = AwsSetupOptions {
            app: None,
            sub: Some("acme:*".into()),
            ..options(AwsSetupFormat::Json)
        };
        assert_eq!(sub.setup(&no_client).await.unwrap().sub, "acme:*");
        let bad = AwsSetupOptions {
            role_name: "no spaces".into(),
            ..options(AwsSetupFormat::Json)
        };
        let err = bad.setup(&no_client).await.unwrap_err();
        assert!(
            matches!(&err, CheckError::Usage(m) if m.contains("--role-name")),
            "{err:?}"
        );
    }

    #[test]
    fn clap_defaults_are_the_library_defaults() {
        use clap::{Args, FromArgMatches};
        let command = AwsSetupOptions::augment_args(clap::Command::new("setup"));
        let matches = command
            .try_get_matches_from(["setup", "--role-name", "r", "--org", "acme", "--app", "web"])
            .unwrap();
        let options = AwsSetupOptions::from_arg_matches(&matches).unwrap();
        assert_eq!(
            options.audience.as_deref(),
            Some(fly_oidc_aws::DEFAULT_AUDIENCE)
        );
        assert_eq!(options.format, AwsSetupFormat::default());
        assert_eq!(
            options,
            AwsSetupOptions {
                role_name: "r".into(),
                org: Some("acme".into()),
                app: Some("web".into()),
                audience: Some(fly_oidc_aws::DEFAULT_AUDIENCE.into()),
                ..AwsSetupOptions::default()
            }
        );
    }

    /// Issue 19: the script's last comment held a literal `${ACCOUNT_ID}` when the account is
    /// looked up. The next step is printed when the script runs, with the account expanded;
    /// no comment holds a shell expansion.
    #[test]
    fn the_next_step_names_the_role_arn_with_the_account_the_script_finds() {
        let commands = |account: Option<&str>| {
            AwsSetup::new("my-app", account, "acme", Some("web"), None, None, None)
                .expect("valid")
                .commands()
        };
        let looked_up = commands(None);
        for line in looked_up
            .lines()
            .filter(|l| l.trim_start().starts_with('#'))
        {
            assert!(!line.contains('$'), "a comment with an expansion: {line}");
        }
        let last = looked_up.lines().last().unwrap_or_default();
        assert_eq!(
            last,
            "echo \"then on Fly: fly secrets set AWS_ROLE_ARN=arn:aws:iam::${ACCOUNT_ID}:role/my-app (Fly's init then writes /.fly/oidc_token)\""
        );
        let given = commands(Some("123456789012"));
        assert!(!given.contains("ACCOUNT_ID"), "{given}");
        assert!(
            given.ends_with("AWS_ROLE_ARN=arn:aws:iam::123456789012:role/my-app (Fly's init then writes /.fly/oidc_token)\"\n"),
            "{given}"
        );
    }

    #[test]
    fn a_trust_policy_without_an_account_id_comes_with_a_warning() {
        let setup = |account: Option<&str>| {
            AwsSetup::new("r", account, "acme", Some("web"), None, None, None).expect("valid")
        };
        let placeholder = setup(None);
        let warning = placeholder.trust_policy_warning().expect("a warning");
        assert!(warning.contains("<ACCOUNT_ID>"), "{warning}");
        let policy = placeholder.trust_policy().to_string();
        assert!(policy.contains("<ACCOUNT_ID>"), "{policy}");
        assert_eq!(setup(Some("123456789012")).trust_policy_warning(), None);
    }

    /// `--principal-tags`: the trust policy's one statement allows `sts:TagSession` too, in
    /// every format, and an example permission policy names the tag key (read from a token,
    /// or the placeholder, said plainly).
    #[test]
    fn principal_tags_allow_tag_session_and_give_an_example_policy() {
        use super::{TAG_KEY_PLACEHOLDER, TagKey, permission_policy_example};
        let plain = AwsSetup::new(
            "r",
            Some("123456789012"),
            "acme",
            Some("web"),
            None,
            None,
            None,
        )
        .expect("valid");
        assert_eq!(plain.tag_key_warning(), None);
        assert!(!plain.commands().contains("TagSession"));
        assert!(!plain.terraform().contains("TagSession"));
        let read = plain
            .clone()
            .with_principal_tags(TagKey::Read("fake_app".into()));
        let statement = &read.trust_policy()["Statement"];
        assert_eq!(statement.as_array().map(Vec::len), Some(1));
        assert_eq!(
            statement[0]["Action"],
            serde_json::json!(["sts:AssumeRoleWithWebIdentity", "sts:TagSession"])
        );
        assert_eq!(read.tag_key_warning(), None);
        let commands = read.commands();
        assert!(
            commands.contains(r#""Action":["sts:AssumeRoleWithWebIdentity","sts:TagSession"]"#),
            "{commands}"
        );
        assert!(
            commands.contains("# The tag key fake_app was read from a live Fly token"),
            "{commands}"
        );
        assert!(
            commands.contains(
                r#"#         "Resource": "arn:aws:s3:::my-bucket/${aws:PrincipalTag/fake_app}/*""#
            ),
            "{commands}"
        );
        let terraform = read.terraform();
        assert!(
            terraform
                .contains(r#"Action    = ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]"#),
            "{terraform}"
        );
        assert!(
            terraform.contains("${aws:PrincipalTag/fake_app}"),
            "{terraform}"
        );
        for line in terraform.lines().filter(|l| l.contains("PrincipalTag")) {
            assert!(line.starts_with('#'), "a comment, not HCL: {line}");
        }
        let placeholder = plain.with_principal_tags(TagKey::Placeholder("no Fly token".into()));
        let warning = placeholder.tag_key_warning().expect("a warning");
        assert!(
            warning.starts_with("the example permission policy names TAG_KEY, a placeholder (no Fly token): replace it"),
            "{warning}"
        );
        assert!(
            placeholder
                .commands()
                .contains("# TAG_KEY is a placeholder (no Fly token): replace it")
        );
        let example = permission_policy_example(&TagKey::Placeholder(String::new()));
        assert_eq!(
            example["Statement"][0]["Resource"],
            format!("arn:aws:s3:::my-bucket/${{aws:PrincipalTag/{TAG_KEY_PLACEHOLDER}}}/*")
        );
    }

    #[test]
    fn only_a_plain_tag_key_is_written_into_a_policy() {
        for key in ["fake_app", "app", "a:b/c=d+e-f@g.h"] {
            assert!(super::plain_tag_key(key), "{key}");
        }
        let long = "k".repeat(129);
        for key in ["", "a b", "a\nb", "a'b", "a\"b", "a$b", "é", long.as_str()] {
            assert!(!super::plain_tag_key(key), "{key:?}");
        }
    }
}
