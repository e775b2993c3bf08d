//! Who the cloud side trusts: the Fly org and app, from flags, from a saved `token --claims`
//! file, or from a live token's claims.

use fly_oidc::{Audience, FlyClaims, FlyToken};
use std::fmt;
use std::time::SystemTime;

/// An invalid argument: an org, app or claims file (or, as
/// [`ConditionError`](crate::setup::condition::ConditionError), a condition or mapping). `Display`
/// names the flag and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectError {
    /// The flag the bad value came from (`--org`, `--app`, `--claims`, `EXPR`, ...).
    pub flag: &'static str,
    /// Why, and what to do.
    pub reason: String,
}

impl fmt::Display for SubjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.reason, self.flag)
    }
}

impl std::error::Error for SubjectError {}

impl SubjectError {
    /// `Ok` when `ok`; otherwise the error for `flag`: `value` (quoted, at most 80 characters),
    /// then `rule` (what it is not, and what it must be).
    pub(crate) fn unless(
        ok: bool,
        flag: &'static str,
        value: &str,
        rule: &str,
    ) -> Result<(), Self> {
        if ok {
            return Ok(());
        }
        Err(SubjectError {
            flag,
            reason: format!("{:?} {rule}", fly_oidc::truncate(value, 80)),
        })
    }
}

/// Only lowercase ASCII letters, digits and `-`.
pub(crate) fn lowercase_digits_dash(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Check a Fly org slug: lowercase letters, digits and `-`, and not the word `personal`.
pub fn check_org(org: &str) -> Result<(), SubjectError> {
    if org == "personal" {
        return Err(SubjectError {
            flag: "--org",
            reason: "\"personal\" is not an org slug: the personal org's issuer is https://oidc.fly.io/<your personal org's slug>; find it with `fly orgs list` or in the iss of `fly-oidc token --claims` on a Machine".into(),
        });
    }
    check_name(org, "--org", "an org slug")
}

/// Check a Fly app name: lowercase letters, digits and `-`.
pub fn check_app(app: &str) -> Result<(), SubjectError> {
    check_name(app, "--app", "an app name")
}

fn check_name(value: &str, flag: &'static str, what: &str) -> Result<(), SubjectError> {
    let ok = !value.is_empty() && value.len() <= 63 && lowercase_digits_dash(value);
    SubjectError::unless(
        ok,
        flag,
        value,
        &format!(
            "is not {what}: use lowercase letters, digits and '-' (as `fly-oidc token --claims` shows in sub = <org>:<app>:<machine>)"
        ),
    )
}

/// Claims standing in for a live token: `iss` `https://oidc.fly.io/<org>`, `sub`
/// `<org>:<app>:<machine>` (machine default `example-machine`), `aud` as given, and
/// `org_name`/`app_name`/`machine_name` as Fly sets them.
pub fn stand_in_claims(
    org: &str,
    app: &str,
    machine: Option<&str>,
    audience: Option<&str>,
) -> Result<FlyClaims, SubjectError> {
    check_org(org)?;
    check_app(app)?;
    if let Some(machine) = machine {
        check_name(machine, "--machine", "a Machine name")?;
    }
    let machine = machine.unwrap_or("example-machine");
    let mut claims = FlyClaims::default();
    claims.iss = Some(fly_oidc::issuer_url(org));
    claims.sub = Some(format!("{org}:{app}:{machine}"));
    claims.aud = audience.map(|a| Audience::One(a.to_owned()));
    claims.org_name = Some(org.to_owned());
    claims.app_name = Some(app.to_owned());
    claims.machine_name = Some(machine.to_owned());
    Ok(claims)
}

/// Claims from the JSON that `fly-oidc token --claims` prints.
pub fn claims_from_json(text: &str) -> Result<FlyClaims, SubjectError> {
    let claims: FlyClaims = serde_json::from_str(text).map_err(|e| SubjectError {
        flag: "--claims",
        reason: format!(
            "the file is not the JSON of `fly-oidc token --claims`: {}",
            fly_oidc::truncate(&e.to_string(), 120)
        ),
    })?;
    if claims.iss.is_none() || claims.sub.is_none() {
        return Err(SubjectError {
            flag: "--claims",
            reason: "the claims have no iss or no sub; save them with `fly-oidc token --claims > claims.json` on a Machine".into(),
        });
    }
    Ok(claims)
}

/// What `fly-oidc token --claims` prints (and [`claims_from_json`] reads): the token's
/// decoded claims as pretty JSON, plus `expires_in_seconds` (negative once expired) when it
/// has an `exp`.
pub fn claims_json(token: &FlyToken, now: SystemTime) -> Result<String, serde_json::Error> {
    let mut value = serde_json::to_value(token.claims())?;
    if let (Some(obj), Some(exp)) = (value.as_object_mut(), token.expires_at()) {
        let secs = match exp.duration_since(now) {
            Ok(left) => left.as_secs() as i64,
            Err(past) => -(past.duration().as_secs() as i64),
        };
        obj.insert("expires_in_seconds".into(), secs.into());
    }
    serde_json::to_string_pretty(&value)
}

/// The app of a Fly `sub` (`<org>:<app>:<machine>`).
pub fn app_of(claims: &FlyClaims) -> Option<&str> {
    claims
        .app_name
        .as_deref()
        .or_else(|| claims.sub.as_deref()?.split(':').nth(1))
}
