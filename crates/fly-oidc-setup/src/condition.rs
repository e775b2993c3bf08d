//! Would a Google workload identity pool provider's attribute condition (CEL) accept a Fly
//! token? Evaluated with the `cel` crate (cel-rust) the way Google does: the attribute mapping
//! runs first over `assertion` (the token's claims) and fills `google.*` and `attribute.*`;
//! the condition then runs over `assertion`, `google` and `attribute` and must be `true`.
//!
//! cel-rust implements the CEL standard library; Google's own additions (such as `extract()`)
//! are not available, and using one is reported as an evaluation error.

use fly_oidc::FlyClaims;
use std::collections::HashMap;
use std::fmt;

/// A malformed expression or mapping (a usage error); its `flag` is `EXPR` or
/// `--attribute-mapping`.
pub type ConditionError = crate::subject::SubjectError;

/// The outcome of evaluating a condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionReport {
    /// Whether the condition accepts the token (evaluated to `true`).
    pub accepted: bool,
    /// What it evaluated to, or the evaluation error (Google rejects the token then).
    pub result: String,
    /// Each claim or attribute the expression read (`assertion.sub`, `attribute.app`, ...),
    /// with its value as JSON (`null` when absent).
    pub read: Vec<(String, String)>,
}

impl fmt::Display for ConditionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.read {
            writeln!(f, "  {name} = {value}")?;
        }
        if self.accepted {
            writeln!(f, "accepted: the condition is true for this token")
        } else {
            writeln!(
                f,
                "rejected: the condition is {} for this token (Google STS would answer unauthorized_client: \"The given credential is rejected by the attribute condition.\")",
                self.result
            )
        }
    }
}

/// An attribute mapping `target=expression,...` (for example
/// [`DEFAULT_ATTRIBUTE_MAPPING`](crate::gcp_setup::DEFAULT_ATTRIBUTE_MAPPING)).
#[derive(Debug)]
pub struct AttributeMapping {
    entries: Vec<(String, String, cel::Program)>,
}

impl AttributeMapping {
    /// Parse `text`: comma-separated `google.<name>=<CEL>` or `attribute.<name>=<CEL>`
    /// (commas inside quotes or brackets belong to the expression).
    pub fn parse(text: &str) -> Result<Self, ConditionError> {
        let bad = |reason: String| ConditionError {
            flag: "--attribute-mapping",
            reason,
        };
        let mut entries = Vec::new();
        for item in split_top_level(text) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (target, expr) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("{item:?} is not TARGET=EXPRESSION")))?;
            let target = target.trim();
            let name_ok =
                |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let valid = match target.split_once('.') {
                Some(("google", name)) => matches!(name, "subject" | "groups" | "display_name"),
                Some(("attribute", name)) => name_ok(name),
                _ => false,
            };
            if !valid {
                return Err(bad(format!(
                    "{target:?} is not google.subject, google.groups, google.display_name or attribute.<name>"
                )));
            }
            let program = cel::Program::compile(expr.trim())
                .map_err(|e| bad(format!("{target}: {}", first_line(&e.to_string()))))?;
            entries.push((target.to_owned(), expr.trim().to_owned(), program));
        }
        if !entries.iter().any(|(t, _, _)| t == "google.subject") {
            return Err(bad(
                "Google requires a mapping for google.subject (for example google.subject=assertion.sub)".into(),
            ));
        }
        Ok(Self { entries })
    }
}

fn first_line(s: &str) -> String {
    fly_oidc::truncate(s.lines().next().unwrap_or_default(), 300)
}

fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Compile a condition, or say why it is malformed.
pub fn compile_condition(expr: &str) -> Result<cel::Program, ConditionError> {
    cel::Program::compile(expr).map_err(|e| ConditionError {
        flag: "EXPR",
        reason: format!("not a CEL expression: {}", first_line(&e.to_string())),
    })
}

/// Evaluate `condition` for `claims` after `mapping`.
pub fn evaluate(
    condition: &str,
    mapping: &AttributeMapping,
    claims: &FlyClaims,
) -> Result<ConditionReport, ConditionError> {
    let program = compile_condition(condition)?;
    let assertion_json = serde_json::to_value(claims).unwrap_or_default();
    let assertion = cel::to_value(&assertion_json).map_err(|e| ConditionError {
        flag: "--claims",
        reason: format!("the claims cannot be given to CEL: {e}"),
    })?;
    let mut context = cel::Context::default();
    context.add_variable_from_value("assertion", assertion.clone());
    let mut google: HashMap<String, cel::Value> = HashMap::new();
    let mut attribute: HashMap<String, cel::Value> = HashMap::new();
    let mut mapping_errors = Vec::new();
    for (target, _expr, program) in &mapping.entries {
        let (scope, name) = target.split_once('.').unwrap_or(("attribute", target));
        match program.execute(&context) {
            Ok(value) => {
                let map = if scope == "google" {
                    &mut google
                } else {
                    &mut attribute
                };
                map.insert(name.to_owned(), value);
            }
            Err(e) => mapping_errors.push(format!("{target}: {e}")),
        }
    }
    let mut read = Vec::new();
    for (scope, source) in [
        ("assertion", None),
        ("attribute", Some(&attribute)),
        ("google", Some(&google)),
    ] {
        for name in referenced(condition, scope) {
            let shown = match source {
                None => assertion_json
                    .get(&name)
                    .map(Value::to_string)
                    .unwrap_or_else(|| "null (absent)".into()),
                Some(map) => map
                    .get(&name)
                    .map(cel_to_text)
                    .unwrap_or_else(|| "null (absent: not in the attribute mapping)".into()),
            };
            read.push((format!("{scope}.{name}"), shown));
        }
    }
    context.add_variable_from_value("google", google);
    context.add_variable_from_value("attribute", attribute);
    let (accepted, result) = match program.execute(&context) {
        Ok(cel::Value::Bool(b)) => (b, b.to_string()),
        Ok(other) => (
            false,
            format!(
                "{} (not a bool; Google rejects the token)",
                cel_to_text(&other)
            ),
        ),
        Err(e) => (false, format!("an error: {e}")),
    };
    let result = if mapping_errors.is_empty() || accepted {
        result
    } else {
        format!(
            "{result}; the attribute mapping failed: {}",
            mapping_errors.join("; ")
        )
    };
    Ok(ConditionReport {
        accepted,
        result,
        read,
    })
}

use serde_json::Value;

fn cel_to_text(value: &cel::Value) -> String {
    match value {
        cel::Value::String(s) => Value::String(s.to_string()).to_string(),
        cel::Value::Bool(b) => b.to_string(),
        cel::Value::Int(i) => i.to_string(),
        cel::Value::UInt(u) => u.to_string(),
        cel::Value::Float(f) => f.to_string(),
        cel::Value::Null => "null".into(),
        other => format!("{other:?}"),
    }
}

/// The names read as `<scope>.<name>` (or `<scope>['name']`) in `expr`, in order, once each.
fn referenced(expr: &str, scope: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find(scope) {
        let start = i + pos;
        let end = start + scope.len();
        i = end;
        let boundary = start == 0
            || !(bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b'.');
        if !boundary {
            continue;
        }
        let rest = &expr[end..];
        let name: String = if let Some(rest) = rest.strip_prefix('.') {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        } else if let Some(rest) = rest.strip_prefix("['").or_else(|| rest.strip_prefix("[\"")) {
            rest.chars()
                .take_while(|c| *c != '\'' && *c != '"')
                .collect()
        } else {
            continue;
        };
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}
