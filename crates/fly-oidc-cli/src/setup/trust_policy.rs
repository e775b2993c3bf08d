//! Would an IAM role's trust policy accept a Fly token? A small, documented subset of IAM
//! policy evaluation, enough to find the usual mistakes before a deploy.
//!
//! Covered:
//! - `Allow` statements whose `Action` holds `sts:AssumeRoleWithWebIdentity` (or `sts:*`, `*`),
//!   and several statements (the token is accepted when one statement accepts it);
//! - the principal: `Principal.Federated` (a string or a list) must be
//!   `arn:aws:iam::<account>:oidc-provider/oidc.fly.io/<org>` for the token's `iss`
//!   (the account is not compared: tokens do not carry it);
//! - with session tags asked for ([`evaluate`]'s `tag_session`): `sts:TagSession` (or `sts:*`, `*`) in
//!   the same statement's `Action`, as STS requires of a tagged token;
//! - conditions on `oidc.fly.io/<org>:aud` and `oidc.fly.io/<org>:sub` with `StringEquals`,
//!   `StringLike` (`*` and `?`), `StringNotEquals`, `StringNotLike`, each optionally prefixed
//!   `ForAnyValue:` or `ForAllValues:` and suffixed `IfExists`; a key for another issuer is
//!   absent from the request, as IAM treats it.
//!
//! Not covered (reported as "not evaluated", which makes the statement fail, so a `0` exit is
//! never a guess): `Deny` statements (a `Deny` whose `Action` and `Principal` could cover
//! the token makes the verdict "rejected", since an explicit Deny wins in IAM; its
//! conditions are not evaluated), `NotAction`/`NotPrincipal`, other condition keys
//! (`aws:*`, `:amr`, tags), other operators, policy variables, the role's permission
//! policies, session policies, SCPs and permission boundaries, and whether the IAM OIDC
//! provider lists the audience in its client ids.

use fly_oidc::FlyClaims;
use serde_json::Value;
use std::fmt;

/// The action a web identity assumes a role with.
pub(crate) const ACTION: &str = "sts:AssumeRoleWithWebIdentity";
/// The action a role assumes another with (role chaining).
pub(crate) const ASSUME_ROLE: &str = "sts:AssumeRole";
/// The action a token with session tags also needs.
pub(crate) const TAG_SESSION: &str = "sts:TagSession";

/// One checked line: what was compared and whether it held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Whether it held.
    pub ok: bool,
    /// What was checked, with the policy's values and the token's value.
    pub text: String,
}

/// The result for one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementReport {
    /// `Sid`, or `#<n>` (1-based).
    pub name: String,
    /// Whether the statement accepts the token.
    pub accepts: bool,
    /// The checks in order: action, principal, each condition.
    pub checks: Vec<Check>,
    /// Whether this is a `Deny` statement that could apply to the token (its action and
    /// principal cover it; its conditions are not evaluated): it makes the policy rejected.
    pub deny_may_apply: bool,
    /// Warnings about an accepting statement (no `:sub` condition: every app of the org is
    /// admitted).
    pub warnings: Vec<String>,
}

/// The result for a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyReport {
    /// Whether some statement accepts the token and no `Deny` statement may apply to it.
    pub accepted: bool,
    /// Every statement.
    pub statements: Vec<StatementReport>,
}

impl PolicyReport {
    /// Why the policy rejects the token, in one line for an error; `None` when it accepts it.
    /// A `Deny` statement that may apply is named first: fixing the `FAIL` lines cannot help.
    pub fn why(&self) -> Option<&'static str> {
        if self.statements.iter().any(|st| st.deny_may_apply) {
            Some(
                "the policy has a Deny statement that may apply to this token, which this checker does not evaluate: check it by hand",
            )
        } else if self.accepted {
            None
        } else {
            Some("the policy rejects this token: fix the FAIL lines above")
        }
    }
}

impl fmt::Display for PolicyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for st in &self.statements {
            writeln!(
                f,
                "statement {}: {}",
                st.name,
                if st.accepts { "accepts" } else { "rejects" }
            )?;
            for check in &st.checks {
                writeln!(
                    f,
                    "  {} {}",
                    if check.ok { "ok  " } else { "FAIL" },
                    check.text
                )?;
            }
            for warning in &st.warnings {
                writeln!(f, "  warn {warning}")?;
            }
        }
        let denies: Vec<&str> = self
            .statements
            .iter()
            .filter(|st| st.deny_may_apply)
            .map(|st| st.name.as_str())
            .collect();
        if !denies.is_empty() {
            writeln!(
                f,
                "rejected: the policy has a Deny statement ({}) that may apply to this token, and this checker does not evaluate Deny statements (an explicit Deny wins over every Allow in IAM); check it by hand",
                denies.join(", ")
            )
        } else if self.accepted {
            writeln!(f, "accepted: the trust policy accepts this token")
        } else {
            writeln!(
                f,
                "rejected: no Allow statement accepts this token (STS would answer AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity)"
            )
        }
    }
}

/// A trust policy document, with a `Statement`; else why it cannot be read.
pub fn parse_policy(text: &str) -> Result<Value, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the policy is not JSON: {e}"))?;
    match value.get("Statement") {
        Some(Value::Array(_)) | Some(Value::Object(_)) => Ok(value),
        _ => Err("the policy has no Statement (an object or a list)".into()),
    }
}

/// Evaluate `policy` for a token with `claims`; with `tag_session` (session tags asked for,
/// `--principal-tags`), an accepting statement must also allow `sts:TagSession`, or STS
/// refuses the tagged token with `AccessDenied`.
pub fn evaluate(
    policy: &Value,
    claims: &FlyClaims,
    tag_session: bool,
) -> Result<PolicyReport, String> {
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Err("the policy has no Statement".into()),
    };
    let iss = claims.iss.as_deref().unwrap_or_default();
    let issuer_key = fly_oidc::issuer_key(iss);
    let mut reports = Vec::new();
    for (i, st) in statements.iter().enumerate() {
        let name = st
            .get("Sid")
            .and_then(Value::as_str)
            .map(|s| format!("{s:?}"))
            .unwrap_or_else(|| format!("#{}", i + 1));
        let mut checks = Vec::new();
        let mut sub_checked = false;
        let effect = st.get("Effect").and_then(Value::as_str).unwrap_or_default();
        match effect {
            "Allow" => {}
            "Deny" => {
                reports.push(deny_statement(name, st, issuer_key));
                continue;
            }
            "" => checks.push(Check {
                ok: false,
                text: "missing Effect: IAM requires \"Effect\": \"Allow\" (or \"Deny\")".into(),
            }),
            other => checks.push(Check {
                ok: false,
                text: format!("Effect {other:?} is neither Allow nor Deny"),
            }),
        }
        let actions = strings(st.get("Action"));
        checks.push(Check {
            ok: allows(&actions, ACTION),
            text: format!("Action {actions:?} includes {ACTION}"),
        });
        if tag_session {
            checks.push(tag_session_check(&actions, claims));
        }
        let principals = strings(st.get("Principal").and_then(|p| p.get("Federated")));
        let principal_ok = principals.iter().any(|p| {
            p.split_once(":oidc-provider/")
                .is_some_and(|(prefix, key)| prefix.starts_with("arn:aws") && key == issuer_key)
        });
        checks.push(Check {
            ok: principal_ok,
            text: format!(
                "Principal.Federated {principals:?} is the OIDC provider of the token's iss = {iss} (arn:aws:iam::<account>:oidc-provider/{issuer_key})"
            ),
        });
        match st.get("Condition") {
            None => {}
            Some(Value::Object(ops)) => {
                for (op, keys) in ops {
                    let Value::Object(keys) = keys else {
                        return Err(format!("statement {name}: Condition.{op} is not an object"));
                    };
                    for (key, values) in keys {
                        sub_checked |= key.ends_with(":sub")
                            && key.rsplit_once(':').is_some_and(|(p, _)| p == issuer_key);
                        checks.push(condition(
                            op,
                            key,
                            &strings(Some(values)),
                            claims,
                            issuer_key,
                        ));
                    }
                }
            }
            Some(_) => {
                return Err(format!("statement {name}: Condition is not an object"));
            }
        }
        let accepts = checks.iter().all(|c| c.ok);
        let warnings = if accepts && !sub_checked {
            vec![format!(
                "no condition on {issuer_key}:sub: every app of the org is admitted; add StringLike {{\"{issuer_key}:sub\": \"<org>:<app>:*\"}}"
            )]
        } else {
            Vec::new()
        };
        reports.push(StatementReport {
            name,
            accepts,
            checks,
            deny_may_apply: false,
            warnings,
        });
    }
    Ok(PolicyReport {
        accepted: reports.iter().any(|r| r.accepts) && !reports.iter().any(|r| r.deny_may_apply),
        statements: reports,
    })
}

/// The check of an Allow statement's `actions` for a token with session tags: `sts:TagSession`
/// (or `sts:*`, `*`) must be among them; a failure names the fix.
fn tag_session_check(actions: &[String], claims: &FlyClaims) -> Check {
    let ok = allows(actions, TAG_SESSION);
    let carried = match claims.aws_session_tags() {
        Some(tags) => format!("the token carries {tags}"),
        None => format!("the token has no {} claim", fly_oidc::AWS_TAGS_CLAIM),
    };
    let mut text = format!(
        "Action {actions:?} includes {TAG_SESSION} (session tags asked for, --principal-tags; {carried})"
    );
    if !ok {
        text.push_str(&format!(
            ": without it STS refuses the tagged token with AccessDenied; add it to this statement: \"Action\": [\"{ACTION}\", \"{TAG_SESSION}\"] (fly-oidc aws setup --principal-tags prints it)"
        ));
    }
    Check { ok, text }
}

/// A `Deny` statement: whether its `Action` and `Principal` could cover this token's
/// `sts:AssumeRoleWithWebIdentity` (`NotAction`, `NotPrincipal` and a missing element could;
/// conditions are not evaluated, so they never rule it out).
fn deny_statement(name: String, st: &Value, issuer_key: &str) -> StatementReport {
    let actions = strings(st.get("Action"));
    let action_covers = st.get("Action").is_none()
        || actions
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), &ACTION.to_ascii_lowercase()));
    let principal_covers = match st.get("Principal") {
        None => true,
        Some(Value::String(p)) => p == "*",
        Some(principal) => {
            let federated = strings(principal.get("Federated"));
            strings(principal.get("AWS")).iter().any(|p| p == "*")
                || federated.iter().any(|p| {
                    p == "*"
                        || p.split_once(":oidc-provider/")
                            .is_some_and(|(_, key)| key == issuer_key)
                })
        }
    };
    let may_apply = action_covers && principal_covers;
    let text = if may_apply {
        format!(
            "Effect \"Deny\" with Action {actions:?}: may apply to this token; Deny statements (and their conditions) are not evaluated, and an explicit Deny wins over every Allow: check it by hand"
        )
    } else {
        format!(
            "Effect \"Deny\": does not apply (its Action {actions:?} or Principal does not cover {ACTION} by the token's OIDC provider)"
        )
    };
    StatementReport {
        name,
        accepts: false,
        checks: vec![Check {
            ok: !may_apply,
            text,
        }],
        deny_may_apply: may_apply,
        warnings: Vec::new(),
    }
}

/// A policy element's values as text: a string, number or boolean, or a list of them.
fn strings(value: Option<&Value>) -> Vec<String> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Some(Value::Array(list)) => list.iter().filter_map(text).collect(),
        other => other.and_then(text).into_iter().collect(),
    }
}

/// Whether `actions` allow `action`, by name or by `sts:*` or `*`.
fn allows(actions: &[String], action: &str) -> bool {
    actions
        .iter()
        .any(|a| a == action || a == "sts:*" || a == "*")
}

fn condition(
    op: &str,
    key: &str,
    policy_values: &[String],
    claims: &FlyClaims,
    issuer_key: &str,
) -> Check {
    let (set_op, rest) = match op.split_once(':') {
        Some((prefix @ ("ForAnyValue" | "ForAllValues"), rest)) => (Some(prefix), rest),
        _ => (None, op),
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    let not_evaluated = |why: &str| Check {
        ok: false,
        text: format!("{op} {key} {policy_values:?}: not evaluated ({why}); check it by hand"),
    };
    let (negate, like) = match base {
        "StringEquals" => (false, false),
        "StringLike" => (false, true),
        "StringNotEquals" => (true, false),
        "StringNotLike" => (true, true),
        _ => return not_evaluated("fly-oidc evaluates String(Not)Equals/String(Not)Like only"),
    };
    let Some((provider, claim)) = key.rsplit_once(':') else {
        return not_evaluated("not an OIDC provider key");
    };
    // Fly's keys: `oidc.fly.io/<org>`, the issuer's host then the org.
    let fly_host = fly_oidc::issuer_key(fly_oidc::FLY_ISSUER_PREFIX);
    if !matches!(claim, "aud" | "sub")
        || provider.split_once('/').map(|(host, _)| host) != Some(fly_host)
    {
        return not_evaluated("fly-oidc evaluates oidc.fly.io/<org>:aud and :sub only");
    }
    // The request's values for the key: none when the key is for another issuer.
    let token_values: Vec<String> = if provider != issuer_key {
        Vec::new()
    } else if claim == "aud" {
        claims
            .aud
            .as_ref()
            .map(|a| a.iter().map(str::to_owned).collect())
            .unwrap_or_default()
    } else {
        claims.sub.iter().cloned().collect()
    };
    let matches_one = |v: &str| {
        policy_values
            .iter()
            .any(|p| if like { glob(p, v) } else { p == v })
            != negate
    };
    let ok = if token_values.is_empty() {
        // IAM: a missing key fails a positive operator; IfExists and negations pass.
        if_exists || negate || set_op == Some("ForAllValues")
    } else {
        match set_op {
            Some("ForAllValues") => token_values.iter().all(|v| matches_one(v)),
            Some(_) => token_values.iter().any(|v| matches_one(v)),
            None => token_values.iter().all(|v| matches_one(v)),
        }
    };
    let shown = if provider != issuer_key {
        format!(
            "absent (the key is for issuer https://{provider}; the token's iss is https://{issuer_key})"
        )
    } else if token_values.is_empty() {
        format!("absent (the token has no {claim})")
    } else {
        token_values.join(",")
    };
    Check {
        ok,
        text: format!("{op} {key} {policy_values:?}: token {claim} = {shown}"),
    }
}

/// IAM `StringLike` matching: `*` any run of characters, `?` one character, case-sensitive.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_like_iam() {
        let cases = [
            ("acme:my-app:*", "acme:my-app:m1", true),
            ("acme:*:*", "acme:a:b", true),
            ("acme:my-app:*", "acme:other:m1", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*", "", true),
            ("abc", "abcd", false),
        ];
        for (pattern, value, matches) in cases {
            assert_eq!(glob(pattern, value), matches, "{pattern} ~ {value}");
        }
    }
}

#[cfg(test)]
mod evaluation_tests {
    use super::{evaluate, parse_policy};
    use crate::setup::subject::stand_in_claims;

    fn policy(condition: &str) -> serde_json::Value {
        parse_policy(&format!(
            r#"{{"Statement": {{"Effect": "Allow", "Action": ["sts:AssumeRoleWithWebIdentity"],
                "Principal": {{"Federated": ["arn:aws:iam::1:oidc-provider/oidc.fly.io/acme"]}},
                "Condition": {condition}}}}}"#
        ))
        .expect("a policy")
    }

    #[test]
    fn set_operators_negations_and_unsupported_keys() {
        let claims =
            stand_in_claims("acme", "web", Some("m1"), Some("sts.amazonaws.com")).expect("claims");
        let accepts = |c: &str| {
            evaluate(&policy(c), &claims, false)
                .expect("evaluates")
                .accepted
        };
        assert!(accepts(
            r#"{"ForAnyValue:StringEquals": {"oidc.fly.io/acme:aud": ["x", "sts.amazonaws.com"]}}"#
        ));
        assert!(!accepts(
            r#"{"StringNotLike": {"oidc.fly.io/acme:sub": "acme:web:*"}}"#
        ));
        assert!(accepts(
            r#"{"StringNotEquals": {"oidc.fly.io/acme:sub": "acme:api:m1"}}"#
        ));
        // A key for another issuer is absent: IfExists passes, a plain operator fails.
        assert!(accepts(
            r#"{"StringLikeIfExists": {"oidc.fly.io/other:sub": "x"}}"#
        ));
        assert!(!accepts(
            r#"{"StringLike": {"oidc.fly.io/other:sub": "*"}}"#
        ));
        // What is not evaluated never passes silently.
        let report = evaluate(
            &policy(r#"{"Bool": {"aws:SecureTransport": "true"}}"#),
            &claims,
            false,
        )
        .expect("evaluates");
        assert!(!report.accepted);
        assert!(report.to_string().contains("not evaluated"), "{report}");
        // Deny statements are not evaluated either.
        let deny = parse_policy(
            r#"{"Statement": [{"Effect": "Deny", "Action": "sts:*", "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/oidc.fly.io/acme"}}]}"#,
        )
        .expect("a policy");
        assert!(!evaluate(&deny, &claims, false).expect("evaluates").accepted);
    }

    const ALLOW: &str = r#"{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/oidc.fly.io/acme"},
        "Condition": {"StringLike": {"oidc.fly.io/acme:sub": "acme:web:*"}}}"#;

    fn report(statements: &str) -> super::PolicyReport {
        let claims =
            stand_in_claims("acme", "web", Some("m1"), Some("sts.amazonaws.com")).expect("claims");
        let policy = parse_policy(&format!(r#"{{"Statement": [{statements}]}}"#)).expect("policy");
        evaluate(&policy, &claims, false).expect("evaluates")
    }

    #[test]
    fn an_explicit_deny_that_may_apply_rejects_the_policy() {
        assert!(report(ALLOW).accepted);
        let deny_all = r#"{"Sid": "NoOne", "Effect": "Deny", "Principal": "*", "Action": "*"}"#;
        let r = report(&format!("{ALLOW}, {deny_all}"));
        assert!(!r.accepted);
        assert!(
            r.why()
                .is_some_and(|why| why.starts_with("the policy has a Deny statement"))
        );
        assert_eq!(report(ALLOW).why(), None);
        let other_app = ALLOW.replace("acme:web:*", "acme:api:*");
        assert_eq!(
            report(&other_app).why(),
            Some("the policy rejects this token: fix the FAIL lines above")
        );
        let text = r.to_string();
        assert!(
            text.contains("rejected: the policy has a Deny statement (\"NoOne\") that may apply"),
            "{text}"
        );
        assert!(text.contains("does not evaluate Deny statements"), "{text}");
        // A Deny for other actions or another principal does not apply.
        let deny_s3 = r#"{"Effect": "Deny", "Principal": "*", "Action": "s3:*"}"#;
        assert!(report(&format!("{ALLOW}, {deny_s3}")).accepted);
        let deny_other = r#"{"Effect": "Deny", "Action": "sts:*",
            "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/oidc.fly.io/other"}}"#;
        assert!(report(&format!("{ALLOW}, {deny_other}")).accepted);
        let deny_wildcard = r#"{"Effect": "Deny", "Action": "sts:Assume*",
            "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/oidc.fly.io/acme"},
            "Condition": {"StringEquals": {"oidc.fly.io/acme:sub": "acme:api:m1"}}}"#;
        assert!(!report(&format!("{ALLOW}, {deny_wildcard}")).accepted);
    }

    #[test]
    fn a_missing_effect_and_a_missing_sub_condition_are_named() {
        let no_effect = ALLOW.replace(r#""Effect": "Allow","#, "");
        let text = report(&no_effect).to_string();
        assert!(text.contains("FAIL missing Effect"), "{text}");
        assert!(!text.contains("Effect \"\""), "{text}");
        let no_sub = r#"{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
            "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/oidc.fly.io/acme"},
            "Condition": {"StringEquals": {"oidc.fly.io/acme:aud": "sts.amazonaws.com"}}}"#;
        let r = report(no_sub);
        assert!(r.accepted);
        let text = r.to_string();
        assert!(
            text.contains(
                "warn no condition on oidc.fly.io/acme:sub: every app of the org is admitted"
            ),
            "{text}"
        );
        assert!(!report(ALLOW).to_string().contains("warn"));
    }

    /// With session tags asked for, an accepting statement must also allow sts:TagSession;
    /// the failing line names it and the fix.
    #[test]
    fn session_tags_need_tag_session_in_the_same_statement() {
        let claims =
            stand_in_claims("acme", "web", Some("m1"), Some("sts.amazonaws.com")).expect("claims");
        let tagged = |statements: &str| {
            let policy =
                parse_policy(&format!(r#"{{"Statement": [{statements}]}}"#)).expect("policy");
            evaluate(&policy, &claims, true).expect("evaluates")
        };
        let r = tagged(ALLOW);
        assert!(!r.accepted);
        let text = r.to_string();
        assert!(
            text.contains(
                "FAIL Action [\"sts:AssumeRoleWithWebIdentity\"] includes sts:TagSession (session tags asked for, --principal-tags; the token has no https://aws.amazon.com/tags claim): without it STS refuses the tagged token with AccessDenied; add it to this statement: \"Action\": [\"sts:AssumeRoleWithWebIdentity\", \"sts:TagSession\"] (fly-oidc aws setup --principal-tags prints it)"
            ),
            "{text}"
        );
        assert_eq!(
            r.why(),
            Some("the policy rejects this token: fix the FAIL lines above")
        );
        let with_tags = ALLOW.replace(
            r#""Action": "sts:AssumeRoleWithWebIdentity""#,
            r#""Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]"#,
        );
        assert!(tagged(&with_tags).accepted, "{}", tagged(&with_tags));
        assert!(tagged(&ALLOW.replace("sts:AssumeRoleWithWebIdentity", "sts:*")).accepted);
        // In another statement, it does not help: STS wants both of the statement that matches.
        let elsewhere = r#"{"Effect": "Allow", "Action": "sts:TagSession",
            "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/oidc.fly.io/other"}}"#;
        assert!(!tagged(&format!("{ALLOW}, {elsewhere}")).accepted);
        // Without session tags, the same policy accepts, and nothing is said of them.
        assert!(report(ALLOW).accepted);
        assert!(!report(ALLOW).to_string().contains("TagSession"));
    }
}
