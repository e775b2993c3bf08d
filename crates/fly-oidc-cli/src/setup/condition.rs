//! Would a Google workload identity pool provider's attribute condition (CEL) accept a Fly
//! token? Evaluated with the `cel` crate (cel-rust) the way Google does: the attribute mapping
//! runs first over `assertion` (the token's claims) and fills `google.*` and `attribute.*`;
//! the condition then runs over `assertion`, `google` and `attribute` and must be `true`.
//!
//! cel-rust implements the CEL standard library; Google's own additions (such as `extract()`)
//! are not available, and using one is reported as an evaluation error.

use fly_oidc::FlyClaims;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// A malformed expression or mapping (a usage error); its `flag` is `EXPR` or
/// `--attribute-mapping`.
pub type ConditionError = crate::setup::subject::SubjectError;

/// The longest expression accepted, in characters: Google limits an attribute condition to
/// 4,096 characters (`attributeCondition` of a workload identity pool provider), and this
/// checker holds each attribute mapping expression to the same limit.
pub const MAX_EXPRESSION_CHARS: usize = 4096;

/// The deepest nesting accepted: brackets (`(`, `[`, `{`) outside string literals, and runs
/// of unary operators (`!`, `-`). The `cel` parser recurses once per level, so a deeper
/// expression could overflow the stack; real conditions nest a few levels.
pub const MAX_EXPRESSION_DEPTH: usize = 32;

/// The stack of the thread that parses and evaluates expressions (64 MiB of address space,
/// used only as deep as the parser goes): the `cel` parser takes about 130 KiB per level of
/// brackets in a debug build, more than a 2 MiB thread has at [`MAX_EXPRESSION_DEPTH`].
const CEL_STACK_BYTES: usize = 64 << 20;

/// The most operators accepted in one expression: binary and ternary operators (a run of
/// `+ - * / % < > = ! & | ? :` counts once), member accesses (`.`) and argument or element
/// separators (`,`), outside string literals. The `cel` parser also recurses along a long
/// flat chain (`1 + 1 + …`), so thousands of terms overflow even a large stack; real
/// conditions use a few dozen.
pub const MAX_EXPRESSION_OPERATORS: usize = 256;

/// `f` run on a thread of its own with a [`CEL_STACK_BYTES`] stack; a thread that cannot be
/// started, or a panic in the `cel` crate, is an error about `flag`'s expression.
fn on_cel_stack<T: Send>(
    flag: &'static str,
    f: impl FnOnce() -> Result<T, ConditionError> + Send,
) -> Result<T, ConditionError> {
    let failed = |why: String| ConditionError {
        flag,
        reason: format!("the expression could not be evaluated: {why}"),
    };
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("cel".into())
            .stack_size(CEL_STACK_BYTES)
            .spawn_scoped(scope, f)
            .map_err(|e| failed(format!("cannot start a thread: {e}")))?
            .join()
            .map_err(|_| failed("the CEL library failed on it".into()))?
    })
}

/// Refuse an expression longer than [`MAX_EXPRESSION_CHARS`], nested deeper than
/// [`MAX_EXPRESSION_DEPTH`] or with more than [`MAX_EXPRESSION_OPERATORS`] operators, before
/// the `cel` parser sees it. `what` names it in the message (`google.subject`, or empty for a
/// condition).
fn check_size(expr: &str, flag: &'static str, what: &str) -> Result<(), ConditionError> {
    let bad = |reason: String| ConditionError {
        flag,
        reason: if what.is_empty() {
            reason
        } else {
            format!("{what}: {reason}")
        },
    };
    let chars = expr.chars().count();
    if chars > MAX_EXPRESSION_CHARS {
        return Err(bad(format!(
            "expression too long ({chars} characters, at most {MAX_EXPRESSION_CHARS}, Google's limit); shorten it"
        )));
    }
    let (depth, operators) = nesting_depth(expr);
    if depth > MAX_EXPRESSION_DEPTH {
        return Err(bad(format!(
            "expression too deeply nested (depth {depth}, at most {MAX_EXPRESSION_DEPTH}); simplify it"
        )));
    }
    if operators > MAX_EXPRESSION_OPERATORS {
        return Err(bad(format!(
            "expression has too many operators ({operators}, at most {MAX_EXPRESSION_OPERATORS}); simplify it"
        )));
    }
    Ok(())
}

/// The deepest nesting of `expr`: open brackets outside string literals (a backslash escapes
/// the next character in a literal), plus the unary operators (`!`, `-`) in a row before an
/// operand; and the number of operators (see [`MAX_EXPRESSION_OPERATORS`]).
fn nesting_depth(expr: &str) -> (usize, usize) {
    let (mut depth, mut deepest, mut unary, mut operators) = (0usize, 0usize, 0usize, 0usize);
    let (mut quote, mut escaped) = (None::<char>, false);
    // Whether the previous character was an operator character (a run counts once).
    let mut in_operator = false;
    // Whether the last token outside spaces ends an operand (so `-` is binary after it).
    let mut after_operand = false;
    for c in expr.chars() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                c if c == q => {
                    quote = None;
                    after_operand = true;
                }
                _ => {}
            }
            continue;
        }
        let operator_char = "+-*/%<>=!&|?:".contains(c);
        if operator_char && !in_operator || c == '.' || c == ',' {
            operators += 1;
        }
        in_operator = operator_char;
        match c {
            '\'' | '"' => {
                quote = Some(c);
                unary = 0;
            }
            '(' | '[' | '{' => {
                depth += 1;
                after_operand = false;
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                after_operand = true;
                unary = 0;
            }
            '!' | '-' if !after_operand => unary += 1,
            c if c.is_whitespace() => {}
            c => {
                after_operand = c.is_alphanumeric() || c == '_' || c == '.';
                if after_operand {
                    unary = 0;
                }
            }
        }
        deepest = deepest.max(depth + unary);
    }
    (deepest, operators)
}

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

impl ConditionReport {
    /// Why the condition rejects the token, in one line for an error (what it evaluated to);
    /// `None` when it accepts it.
    pub fn why(&self) -> Option<String> {
        (!self.accepted).then(|| format!("the condition is {} for this token", self.result))
    }
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
/// [`DEFAULT_ATTRIBUTE_MAPPING`](crate::setup::gcp_setup::DEFAULT_ATTRIBUTE_MAPPING)).
#[derive(Debug)]
pub struct AttributeMapping {
    /// Each target (`google.subject`, `attribute.app`) and its compiled expression.
    entries: Vec<(String, cel::Program)>,
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
            let expr = expr.trim();
            check_size(expr, "--attribute-mapping", target)?;
            let program = on_cel_stack("--attribute-mapping", || {
                cel::Program::compile(expr)
                    .map_err(|e| bad(format!("{target}: {}", first_line(&e.to_string()))))
            })?;
            entries.push((target.to_owned(), program));
        }
        if !entries.iter().any(|(t, _)| t == "google.subject") {
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

/// Compile a condition, or say why it is malformed
/// (longer than [`MAX_EXPRESSION_CHARS`], nested deeper than [`MAX_EXPRESSION_DEPTH`], or
/// not CEL).
pub fn compile_condition(expr: &str) -> Result<cel::Program, ConditionError> {
    check_size(expr, "EXPR", "")?;
    on_cel_stack("EXPR", || {
        cel::Program::compile(expr).map_err(|e| ConditionError {
            flag: "EXPR",
            reason: format!("not a CEL expression: {}", first_line(&e.to_string())),
        })
    })
}

/// Evaluate `condition` for `claims` after `mapping` (on the `cel` thread).
pub fn evaluate(
    condition: &str,
    mapping: &AttributeMapping,
    claims: &FlyClaims,
) -> Result<ConditionReport, ConditionError> {
    on_cel_stack("EXPR", || evaluate_here(condition, mapping, claims))
}

fn evaluate_here(
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
    for (target, program) in &mapping.entries {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejecting_report_says_what_the_condition_evaluated_to() {
        let report = |accepted: bool, result: &str| ConditionReport {
            accepted,
            result: result.to_owned(),
            read: Vec::new(),
        };
        assert_eq!(report(true, "true").why(), None);
        assert_eq!(
            report(false, "false").why().as_deref(),
            Some("the condition is false for this token")
        );
    }

    #[test]
    fn deep_or_long_expressions_are_refused_before_parsing() {
        let parens = format!("{}true{}", "(".repeat(100), ")".repeat(100));
        let err = compile_condition(&parens).unwrap_err().to_string();
        assert_eq!(
            err,
            "expression too deeply nested (depth 100, at most 32); simplify it (from EXPR)"
        );
        let lists = format!("{}{}== []", "[".repeat(1000), "]".repeat(1000));
        let err = compile_condition(&lists).unwrap_err().to_string();
        assert!(err.contains("depth 1000, at most 32"), "{err}");
        let mapping = format!("google.subject={}x{}", "(".repeat(200), ")".repeat(200));
        let err = AttributeMapping::parse(&mapping).unwrap_err().to_string();
        assert!(
            err.starts_with("google.subject: expression too deeply nested (depth 200"),
            "{err}"
        );
        assert!(err.ends_with("(from --attribute-mapping)"), "{err}");
        let nots = format!("{}true", "!".repeat(1000));
        assert!(compile_condition(&nots).is_err());
        let long = format!("'{}' == assertion.sub", "a".repeat(MAX_EXPRESSION_CHARS));
        let err = compile_condition(&long).unwrap_err().to_string();
        assert!(err.contains("too long"), "{err}");
        // Brackets in string literals do not count; the limit itself is accepted.
        let quoted = format!(
            "assertion.sub == '{}\\'{}'",
            "(".repeat(100),
            "[".repeat(100)
        );
        compile_condition(&quoted).unwrap();
        let at_limit = format!("{}true{}", "(".repeat(32), ")".repeat(32));
        compile_condition(&at_limit).unwrap();
        compile_condition("assertion.a - -1 == 2 && !(assertion.b in ['x', \"y\"])").unwrap();
    }

    #[test]
    fn long_flat_expressions_within_the_limits_do_not_overflow() {
        // Run on a thread with the main thread's usual stack (8 MiB), as the binary does.
        let run = |expr: String| {
            std::thread::Builder::new()
                .stack_size(8 << 20)
                .spawn(move || compile_condition(&expr).map(|_| ()))
                .unwrap()
                .join()
                .unwrap()
        };
        // Each chain has exactly `n` operators (the `==` is one of them).
        type Chain = fn(usize) -> String;
        let chains: [(&str, Chain); 5] = [
            ("+", |n| format!("{}1 == 1", "1 + ".repeat(n - 1))),
            ("-", |n| format!("{}1 == 1", "1 - ".repeat(n - 1))),
            ("*", |n| format!("{}1 == 1", "1 * ".repeat(n - 1))),
            (".", |n| format!("assertion{} == 1", ".a".repeat(n - 1))),
            ("&&", |n| {
                format!("{}true == true", "true && ".repeat(n - 1))
            }),
        ];
        for (op, chain) in chains {
            run(chain(MAX_EXPRESSION_OPERATORS)).unwrap_or_else(|e| panic!("{op}: {e}"));
            let err = run(chain(MAX_EXPRESSION_OPERATORS + 1))
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                "expression has too many operators (257, at most 256); simplify it (from EXPR)",
                "{op}"
            );
        }
        // The tester's chain: 3,600 characters, under the length limit.
        let long_sum = format!("{}>0", vec!["1"; 1800].join("+"));
        let err = run(long_sum).unwrap_err().to_string();
        assert!(
            err.contains("too many operators (1800, at most 256)"),
            "{err}"
        );
        let list = format!("assertion.sub in [{}'x']", "'a', ".repeat(300));
        assert!(
            run(list)
                .unwrap_err()
                .to_string()
                .contains("too many operators")
        );
        let mapping = format!("google.subject={}", vec!["assertion.sub"; 200].join(" + "));
        let err = AttributeMapping::parse(&mapping).unwrap_err().to_string();
        assert!(
            err.starts_with("google.subject: expression has too many operators"),
            "{err}"
        );
        // Operators inside string literals do not count; a realistic condition passes.
        let quoted = format!("assertion.sub == '{}'", "+.,".repeat(500));
        run(quoted).unwrap();
        run(
            "assertion.org_name == 'acme' && assertion.app_name in ['web', 'worker'] \
             && assertion.machine_name.startsWith('m-') && !(assertion.region in ['ord'])"
                .to_string(),
        )
        .unwrap();
    }
}
