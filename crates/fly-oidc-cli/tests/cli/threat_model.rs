//! `THREAT_MODEL.md` names, for every claim, the tests that prove it, and each of them exists.
//!
//! A claim is a table row or a bullet under `## Mitigations` and `## The credential server`
//! (its `### Out of scope...` part aside). A row names its tests in its `tests` column, a
//! bullet in a trailing `(tests: ...)`, each name in backquotes: a test function of this
//! repository (`fn NAME` under `#[test]` or `#[tokio::test]`, or a `libtest-mimic` trial), or
//! `fault_matrix:<fault>` for a row of the fault matrix. Any other paragraph in those sections
//! must be an italic note (`*...*`), so that no claim hides in prose.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `.rs` files under `dir`, build output and Node modules aside.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The identifier after `fn ` in `line`, if it declares a function.
fn fn_name(line: &str) -> Option<String> {
    let at = line.find("fn ")?;
    if at > 0 && line.as_bytes()[at - 1].is_ascii_alphanumeric() {
        return None;
    }
    let name: String = line[at + 3..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The tests in the Rust sources `texts`: functions under a test attribute (other attributes
/// and comments may come between), and the names of `libtest-mimic` trials.
fn test_names<'a>(texts: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for text in texts {
        let mut pending = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("#[test]") || line.starts_with("#[tokio::test") {
                pending = true;
            } else if pending && let Some(name) = fn_name(line) {
                names.insert(name);
                pending = false;
            }
            for call in ["Trial::test(\"", "Trial::ignorable_test(\""] {
                if let Some((_, rest)) = line.split_once(call)
                    && let Some((name, _)) = rest.split_once('"')
                {
                    names.insert(name.to_owned());
                }
            }
        }
    }
    names
}

/// `fault_matrix:<fault>` for every string in a `row(...)` of the fault matrix's rows.
fn fault_rows(rows: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut files = Vec::new();
    rust_files(rows, &mut files);
    for file in files {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let Some((_, call)) = line.split_once("row(") else {
                continue;
            };
            for (i, part) in call.split('"').enumerate() {
                if i % 2 == 1 {
                    names.insert(format!("fault_matrix:{}", fly_oidc_tests::fault_slug(part)));
                }
            }
        }
    }
    names
}

/// One claim of the document: where it starts, and the test names it gives.
#[derive(Debug)]
struct Claim {
    line: usize,
    text: String,
    names: Vec<String>,
}

/// The backquoted words of `text`.
fn quoted(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The cells of a table row.
fn cells(row: &str) -> Vec<&str> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(str::trim).collect()
}

/// The claims of `doc`, or what is wrong with its shape (a table without a `tests` column, a
/// paragraph that is neither a bullet nor a note).
fn claims(doc: &str) -> Result<Vec<Claim>, String> {
    let mut claims = Vec::new();
    let mut in_claims = false;
    // A table's `tests` column, while in a table.
    let mut table: Option<Option<usize>> = None;
    // The bullet or paragraph being read: its first line and text.
    let mut block: Option<(usize, String, bool)> = None;
    let flush = |block: &mut Option<(usize, String, bool)>,
                 claims: &mut Vec<Claim>|
     -> Result<(), String> {
        let Some((line, text, bullet)) = block.take() else {
            return Ok(());
        };
        if bullet {
            let names = match text.rfind("(tests:") {
                Some(at) => quoted(text[at..].split(')').next().unwrap_or_default()),
                None => Vec::new(),
            };
            claims.push(Claim { line, text, names });
            Ok(())
        } else if text.starts_with('*') && !text.starts_with("**") && text.ends_with('*') {
            Ok(())
        } else {
            Err(format!(
                "line {line}: a paragraph among the claims (make it a bullet naming its tests, or an italic note): {text}"
            ))
        }
    };
    for (i, raw) in doc.lines().enumerate() {
        let number = i + 1;
        let line = raw.trim_end();
        if let Some(heading) = line.strip_prefix("## ") {
            flush(&mut block, &mut claims)?;
            table = None;
            in_claims =
                heading.starts_with("Mitigations") || heading.starts_with("The credential server");
            continue;
        }
        if let Some(heading) = line.strip_prefix("### ") {
            flush(&mut block, &mut claims)?;
            table = None;
            if in_claims && heading.starts_with("Out of scope") {
                in_claims = false;
            }
            continue;
        }
        if !in_claims {
            continue;
        }
        if line.starts_with('|') {
            flush(&mut block, &mut claims)?;
            let row = cells(line);
            match table {
                None => {
                    let tests = row.iter().position(|c| *c == "tests");
                    if tests.is_none() {
                        return Err(format!("line {number}: a table without a `tests` column"));
                    }
                    table = Some(tests);
                }
                Some(_) if row.iter().all(|c| c.chars().all(|c| c == '-' || c == ':')) => {}
                Some(tests) => {
                    let cell = tests.and_then(|t| row.get(t)).copied().unwrap_or_default();
                    claims.push(Claim {
                        line: number,
                        text: line.to_owned(),
                        names: quoted(cell),
                    });
                }
            }
            continue;
        }
        table = None;
        if line.trim().is_empty() {
            flush(&mut block, &mut claims)?;
        } else if let Some(rest) = line.strip_prefix("- ") {
            flush(&mut block, &mut claims)?;
            block = Some((number, rest.to_owned(), true));
        } else if let Some((_, text, _)) = block.as_mut() {
            text.push(' ');
            text.push_str(line.trim());
        } else {
            block = Some((number, line.trim().to_owned(), false));
        }
    }
    flush(&mut block, &mut claims)?;
    Ok(claims)
}

/// What is wrong with the claims of `doc` given the tests that exist: a claim naming no test,
/// a name that is not a test.
fn problems(doc: &str, known: &BTreeSet<String>) -> Vec<String> {
    let claims = match claims(doc) {
        Ok(claims) => claims,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    for claim in &claims {
        if claim.names.is_empty() {
            problems.push(format!(
                "line {}: a claim that names no test: {}",
                claim.line, claim.text
            ));
        }
        for name in &claim.names {
            // `module::name` is allowed; the function is what must exist.
            let bare = if name.starts_with("fault_matrix:") {
                name.as_str()
            } else {
                name.rsplit("::").next().unwrap_or(name)
            };
            if !known.contains(bare) {
                problems.push(format!(
                    "line {}: `{name}` is not a test of this repository",
                    claim.line
                ));
            }
        }
    }
    problems
}

/// Every test of the repository, and the fault matrix's rows.
fn known_tests() -> BTreeSet<String> {
    let root = root();
    let mut files = Vec::new();
    for dir in ["crates", "tests", "examples"] {
        rust_files(&root.join(dir), &mut files);
    }
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    let mut known = test_names(texts.iter().map(String::as_str));
    known.extend(fault_rows(
        &root.join("crates/fly-oidc-cli/tests/fault_matrix/rows"),
    ));
    known
}

#[test]
fn every_claim_names_tests_that_exist() {
    let doc = std::fs::read_to_string(root().join("THREAT_MODEL.md")).unwrap();
    let known = known_tests();
    let claims = claims(&doc).unwrap_or_else(|e| panic!("THREAT_MODEL.md: {e}"));
    // The parser sees the document's claims (both tables, every subsection's bullets).
    assert!(claims.len() >= 40, "only {} claims found", claims.len());
    let problems = problems(&doc, &known);
    assert!(
        problems.is_empty(),
        "THREAT_MODEL.md:\n{}",
        problems.join("\n")
    );
}

/// The check itself: a claim without tests, a name that is no test, a table without a tests
/// column and a claim in prose are each caught; a note, a row and a bullet that name tests
/// pass.
#[test]
fn the_claim_check_catches_untested_claims_and_unknown_names() {
    let known = known_tests();
    assert!(known.contains("every_claim_names_tests_that_exist"));
    assert!(known.contains("fault_matrix:401-whose-body-echoes-the-api-token"));
    assert!(!known.contains("fn_name"), "a helper is not a test");
    let good = "## Mitigations\n\n*A note.*\n\n| threat | tests |\n|---|---|\n\
                | x | `every_claim_names_tests_that_exist` |\n\n\
                ## The credential server\n\n### Part\n\n- We do this,\n  and that. (tests:\n  \
                `threat_model::every_claim_names_tests_that_exist`,\n  \
                `fault_matrix:401-whose-body-echoes-the-api-token`)\n\n\
                ### Out of scope for the server\n\n- Anything.\n";
    assert_eq!(problems(good, &known), Vec::<String>::new());
    assert_eq!(claims(good).unwrap().len(), 2);
    let cases = [
        (
            good.replace("(tests:\n  `threat_model::every_claim_names_tests_that_exist`,\n  `fault_matrix:401-whose-body-echoes-the-api-token`)", "(untested)"),
            "names no test",
        ),
        (
            good.replace("| x | `every_claim_names_tests_that_exist` |", "| x | |"),
            "names no test",
        ),
        (
            good.replace("names_tests_that_exist` |", "names_tests_that_existed` |"),
            "`every_claim_names_tests_that_existed` is not a test",
        ),
        (
            good.replace("-api-token`)", "-api-tokens`)"),
            "is not a test",
        ),
        (good.replace("| threat | tests |", "| threat | where |"), "without a `tests` column"),
        (good.replace("*A note.*", "We also do this."), "a paragraph among the claims"),
    ];
    for (doc, expected) in cases {
        let found = problems(&doc, &known);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "expected {expected:?} in {found:?} for:\n{doc}"
        );
    }
}
