//! The drift check behind `scripts/check-snippets.sh`: the docs' Rust snippets and their
//! dependency blocks against the `readme-*` packages that compile them. The docs are
//! README.md, `docs/*.md` and each crate's `crates/<name>/README.md`.
//!
//! The rules:
//! - A ```` ```toml ```` block with a dependency table (`[dependencies]`,
//!   `[dev-dependencies]`, ...) opens a *context*, named by its file and the heading it is
//!   under (`docs/gcp.md > Section`, or `docs/gcp.md > Section > Subsection` for a `###`
//!   heading).
//! - Every block whose info string starts with `rust` (`rust,ignore` too) belongs to the last
//!   context above it: it must compile with those dependencies and no others.
//! - Each context has one package of tests/readme-snippets (`[package.metadata.readme]
//!   sections = ["..."]`), and each section a package names is a context. A package may serve
//!   several contexts (a topic page and a crate's README showing the same dependencies): each
//!   context's tables must be the package's, and its Rust blocks in the package's files.
//! - The package's dependency tables hold exactly the block's entries, each with
//!   `git = "https://github.com/fly-oidc/fly-oidc"` read as `path = "../../../crates/<name>"`
//!   (comments and spacing aside). A README entry with a `path` is an error: an outside user
//!   writes the git one.
//! - Every Rust block of the context is in one of the package's `.rs` files, line for line
//!   (indented uniformly); anything else in those files is a comment, a blank line or one of
//!   the [`WRAPPER`] lines, so no hidden line defines what a snippet leaves out.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The repository URL of the README's git dependencies.
pub const REPOSITORY: &str = "https://github.com/fly-oidc/fly-oidc";

/// The lines a snippet file may hold besides the README's blocks, comments and blank lines:
/// the `main` (or test) that the README says the snippets run in (`rustfmt::skip` keeps the
/// README's alignment).
pub const WRAPPER: &[&str] = &[
    "#![allow(unused)]",
    "#[tokio::main]",
    "#[tokio::test]",
    "#[rustfmt::skip]",
    "async fn main() -> Result<(), Box<dyn std::error::Error>> {",
    "async fn readme_snippet() -> Result<(), Box<dyn std::error::Error>> {",
    "Ok(())",
    "}",
];

/// Dependency table header -> its entries, normalized (no comments, single spaces), sorted.
pub type Tables = BTreeMap<String, Vec<String>>;

/// A dependency block of a doc and the Rust blocks that follow it.
#[derive(Debug, Default)]
pub struct Context {
    /// Its doc and the heading the dependency block is under (`docs/gcp.md > From Rust`).
    pub section: String,
    /// Its place: `docs/gcp.md:12`.
    pub place: String,
    /// Its dependency tables, as the doc shows them.
    pub tables: Tables,
    /// The Rust blocks that compile with it.
    pub rust_blocks: Vec<Block>,
}

/// A Rust block of a doc.
#[derive(Debug)]
pub struct Block {
    /// The place of its opening fence: `docs/gcp.md:40`.
    pub place: String,
    /// The heading it is under.
    pub section: String,
    /// Its lines.
    pub lines: Vec<String>,
}

/// A package of tests/readme-snippets that mirrors doc contexts.
#[derive(Debug)]
pub struct Package {
    /// Its directory, relative to tests/readme-snippets.
    pub dir: String,
    /// `[package.metadata.readme] sections`.
    pub sections: Vec<String>,
    /// Its dependency tables.
    pub tables: Tables,
    /// Its `.rs` files: path (for messages) and lines.
    pub files: Vec<(String, Vec<String>)>,
}

/// The docs under the repository's `root`, as paths relative to it: README.md, `docs/*.md`
/// and `crates/*/README.md`, sorted.
pub fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut docs = vec![PathBuf::from("README.md")];
    let listed = |dir: &str| -> Vec<PathBuf> {
        let mut names: Vec<PathBuf> = fs::read_dir(root.join(dir))
            .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    docs.extend(
        listed("docs")
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .filter_map(|p| Some(Path::new("docs").join(p.file_name()?))),
    );
    docs.extend(
        listed("crates")
            .into_iter()
            .filter(|p| p.join("README.md").is_file())
            .filter_map(|p| Some(Path::new("crates").join(p.file_name()?).join("README.md"))),
    );
    docs
}

/// Checks the docs under the repository's `root` against the packages in `snippets`
/// (tests/readme-snippets).
pub fn check(root: &Path, snippets: &Path) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut contexts = Vec::new();
    for doc in doc_files(root) {
        let name = doc.display().to_string();
        match fs::read_to_string(root.join(&doc)) {
            Ok(text) => contexts.extend(parse_doc(&name, &text, &mut problems)),
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    let packages = read_packages(snippets, &mut problems);
    compare(&contexts, &packages, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The contexts of the doc `name` (see the crate docs).
pub fn parse_doc(name: &str, text: &str, problems: &mut Vec<String>) -> Vec<Context> {
    let mut contexts: Vec<Context> = Vec::new();
    let (mut h2, mut h3) = (String::new(), None::<String>);
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let indent = &line[..line.len() - trimmed.len()];
            let mut body = Vec::new();
            let mut closed = false;
            for (_, l) in lines.by_ref() {
                if l.trim() == "```" {
                    closed = true;
                    break;
                }
                body.push(l.strip_prefix(indent).unwrap_or(l).to_string());
            }
            if !closed {
                problems.push(format!("{name}:{}: a code block is never closed", i + 1));
                break;
            }
            let section = match &h3 {
                Some(h3) => format!("{name} > {h2} > {h3}"),
                None => format!("{name} > {h2}"),
            };
            let place = format!("{name}:{}", i + 1);
            let info = info.trim();
            if info.starts_with("rust") {
                match contexts.last_mut() {
                    Some(context) => context.rust_blocks.push(Block {
                        place,
                        section,
                        lines: body,
                    }),
                    None => problems.push(format!(
                        "{place}: the Rust block in \"{section}\" has no dependency block above it"
                    )),
                }
            } else if info == "toml" {
                let tables = dependency_tables(&body.join("\n"));
                if !tables.is_empty() {
                    contexts.push(Context {
                        section,
                        place,
                        tables,
                        rust_blocks: Vec::new(),
                    });
                }
            }
            continue;
        }
        if let Some(h) = line.strip_prefix("## ") {
            h2 = h.trim().to_string();
            h3 = None;
        } else if let Some(h) = line.strip_prefix("### ") {
            h3 = Some(h.trim().to_string());
        }
    }
    contexts
}

/// The dependency tables of a manifest (or of a doc's block): every table whose name says
/// `dependencies` (`[dependencies]`, `[dev-dependencies]`, `[target.'...'.dependencies]`,
/// `[dependencies.foo]`), each with its entries normalized and sorted.
pub fn dependency_tables(text: &str) -> Tables {
    let mut tables = Tables::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = strip_comment(line).trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            let name = line.trim_matches(|c| c == '[' || c == ']').trim();
            current = name.contains("dependencies").then(|| name.to_string());
            if let Some(name) = &current {
                tables.entry(name.clone()).or_default();
            }
            continue;
        }
        if let Some(name) = &current {
            tables
                .entry(name.clone())
                .or_default()
                .push(normalize(line));
        }
    }
    for entries in tables.values_mut() {
        entries.sort();
    }
    tables
}

/// `line` without a `#` comment (a `#` inside a string stays).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

fn normalize(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A doc's entry as the package must hold it: its git dependency on this repository as a
/// path into the checkout. `None` (and a problem) for a path dependency.
pub fn as_package_entry(entry: &str, section: &str, problems: &mut Vec<String>) -> Option<String> {
    let name = entry.split('=').next().unwrap_or_default().trim();
    if entry.contains("path =") || entry.contains("path=") {
        problems.push(format!(
            "\"{section}\": `{entry}` is a path dependency; show the one an outside user \
             writes: `{name} = {{ git = \"{REPOSITORY}\" }}`"
        ));
        return None;
    }
    let git = format!("git = \"{REPOSITORY}\"");
    Some(entry.replace(&git, &format!("path = \"../../../crates/{name}\"")))
}

/// The packages of `snippets` that name doc sections.
pub fn read_packages(snippets: &Path, problems: &mut Vec<String>) -> Vec<Package> {
    let mut packages = Vec::new();
    let Ok(entries) = fs::read_dir(snippets) else {
        problems.push(format!("{}: cannot be read", snippets.display()));
        return packages;
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        let Ok(manifest) = fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let sections = readme_sections(&manifest);
        if sections.is_empty() {
            continue;
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        files.sort();
        let files = files
            .into_iter()
            .map(|path| {
                let text = fs::read_to_string(&path).unwrap_or_default();
                let shown = path
                    .strip_prefix(snippets)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                (shown, text.lines().map(str::to_string).collect())
            })
            .collect();
        packages.push(Package {
            dir: name,
            sections,
            tables: dependency_tables(&manifest),
            files,
        });
    }
    packages
}

/// `sections = ["...", ...]` of `[package.metadata.readme]` (on one line).
fn readme_sections(manifest: &str) -> Vec<String> {
    let mut in_table = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') && !line.starts_with("[\"") {
            in_table = line == "[package.metadata.readme]";
        } else if in_table && let Some(value) = line.strip_prefix("sections") {
            let Some(list) = value.trim_start().strip_prefix('=') else {
                return Vec::new();
            };
            let list = list.trim().trim_start_matches('[').trim_end_matches(']');
            return list
                .split("\",")
                .map(|s| s.trim().trim_matches('"').to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
    }
    Vec::new()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every context against its package (see the crate docs).
pub fn compare(contexts: &[Context], packages: &[Package], problems: &mut Vec<String>) {
    for package in packages {
        for section in &package.sections {
            if !contexts.iter().any(|c| c.section == *section) {
                problems.push(format!(
                    "{}/Cargo.toml names the section \"{section}\", which has no dependency block",
                    package.dir
                ));
            }
        }
    }
    for context in contexts {
        let matching: Vec<&Package> = packages
            .iter()
            .filter(|p| p.sections.contains(&context.section))
            .collect();
        let [package] = matching.as_slice() else {
            problems.push(format!(
                "{} (\"{}\"): a dependency block needs one package of tests/readme-snippets \
                 with `[package.metadata.readme] sections = [\"{}\"]`; there are {}",
                context.place,
                context.section,
                context.section,
                matching.len()
            ));
            continue;
        };
        compare_tables(context, package, problems);
    }
    for package in packages {
        let served: Vec<&Context> = contexts
            .iter()
            .filter(|c| package.sections.contains(&c.section))
            .collect();
        if !served.is_empty() {
            compare_code(&served, package, problems);
        }
    }
}

fn compare_tables(context: &Context, package: &Package, problems: &mut Vec<String>) {
    let headers: BTreeSet<&String> = context.tables.keys().chain(package.tables.keys()).collect();
    for header in headers {
        let shown: Vec<(String, String)> = context
            .tables
            .get(header)
            .into_iter()
            .flatten()
            .filter_map(|e| Some((e.clone(), as_package_entry(e, &context.section, problems)?)))
            .collect();
        let held = package.tables.get(header).cloned().unwrap_or_default();
        for (entry, expected) in &shown {
            if !held.contains(expected) {
                problems.push(format!(
                    "{} (\"{}\") shows `{entry}` in [{header}]; {}/Cargo.toml must hold `{expected}`",
                    context.place, context.section, package.dir
                ));
            }
        }
        for entry in held {
            if !shown.iter().any(|(_, expected)| *expected == entry) {
                problems.push(format!(
                    "{}/Cargo.toml has `{entry}` in [{header}], which {} (\"{}\") does not show",
                    package.dir, context.place, context.section
                ));
            }
        }
    }
}

fn compare_code(contexts: &[&Context], package: &Package, problems: &mut Vec<String>) {
    // Per file, the lines covered by a block of any of the contexts.
    let blank = || -> Vec<Vec<bool>> {
        package
            .files
            .iter()
            .map(|(_, l)| vec![false; l.len()])
            .collect()
    };
    let mut covered = blank();
    for context in contexts {
        // Per context: two contexts may show the same block, found on the same lines.
        let mut mine = blank();
        for block in &context.rust_blocks {
            let found = package
                .files
                .iter()
                .enumerate()
                .find_map(|(f, (_, lines))| {
                    find_block(&block.lines, lines, &mine[f]).map(|at| (f, at))
                });
            match found {
                Some((f, at)) => {
                    for line in at..at + block.lines.len() {
                        mine[f][line] = true;
                        covered[f][line] = true;
                    }
                }
                None => problems.push(format!(
                    "{} (\"{}\"): this Rust block is not, line for line, in a .rs file of \
                     tests/readme-snippets/{} (which CI compiles with the dependency block of \"{}\")",
                    block.place, block.section, package.dir, context.section
                )),
            }
        }
    }
    for ((path, lines), covered) in package.files.iter().zip(&covered) {
        let unexplained: Vec<(usize, &str)> = lines
            .iter()
            .map(|l| l.trim())
            .enumerate()
            .filter(|&(i, l)| {
                !(covered[i] || l.is_empty() || l.starts_with("//") || WRAPPER.contains(&l))
            })
            .collect();
        if let Some(&(i, line)) = unexplained.first() {
            problems.push(format!(
                "{path}:{}: `{line}` ({} such line(s) in all) is neither in a Rust block of \
                 {} nor a wrapper line: the doc must show what the snippet needs",
                i + 1,
                unexplained.len(),
                package.sections.join(", ")
            ));
        }
    }
}

/// Where `block` is in `lines` (not on covered lines), each line behind the same indentation.
fn find_block(block: &[String], lines: &[String], covered: &[bool]) -> Option<usize> {
    let first = block.iter().position(|l| !l.trim().is_empty())?;
    (0..=lines.len().checked_sub(block.len())?).find(|&at| {
        let Some(indent) = lines[at + first].strip_suffix(block[first].as_str()) else {
            return false;
        };
        indent.chars().all(|c| c == ' ')
            && block.iter().enumerate().all(|(j, want)| {
                let got = &lines[at + j];
                !covered[at + j]
                    && if want.trim().is_empty() {
                        got.trim().is_empty()
                    } else {
                        got.strip_prefix(indent) == Some(want.as_str())
                    }
            })
    })
}

/// Every registry package of the snippet lock whose name the workspace lock has is at one of
/// the workspace's versions of it.
pub fn check_lock(workspace_lock: &Path, snippet_lock: &Path) -> Result<(), Vec<String>> {
    let read = |p: &Path| fs::read_to_string(p).map_err(|e| vec![format!("{}: {e}", p.display())]);
    let workspace = lock_packages(&read(workspace_lock)?);
    let snippets = lock_packages(&read(snippet_lock)?);
    let mut problems = Vec::new();
    for (name, versions) in &snippets {
        let Some(known) = workspace.get(name) else {
            continue;
        };
        for version in versions.difference(known) {
            problems.push(format!(
                "{name} {version} (the workspace has {})",
                known.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Name -> versions of the registry packages (those with a `source`) of a Cargo.lock.
fn lock_packages(lock: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut packages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            entry.lines().find_map(|l| {
                let value = l.trim().strip_prefix(key)?.trim_start().strip_prefix('=')?;
                Some(value.trim().trim_matches('"').to_string())
            })
        };
        if let (Some(name), Some(version), Some(_)) =
            (field("name"), field("version"), field("source"))
        {
            packages.entry(name).or_default().insert(version);
        }
    }
    packages
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = r#"# x
## Install

```toml
[dependencies]
fly-oidc = { git = "https://github.com/fly-oidc/fly-oidc" }   # the client
tokio = { version = "1", features = ["macros"] }
```

## Use it

```rust
let a = 1;
    let b = a;
```

```sh
echo not rust
```
"#;

    const MANIFEST: &str = r#"[package]
name = "readme-install"
[package.metadata.readme]
sections = ["README.md > Install"]
[dependencies]
tokio = { version = "1", features = ["macros"] }
fly-oidc = { path = "../../../crates/fly-oidc" }
"#;

    const MAIN: &str = "#[tokio::main]\nasync fn main() -> Result<(), Box<dyn std::error::Error>> {\n    let a = 1;\n        let b = a;\n    Ok(())\n}\n";

    /// One of `problems` says `says`.
    #[track_caller]
    fn assert_reports(problems: &[String], says: &str) {
        assert!(problems.iter().any(|p| p.contains(says)), "{problems:?}");
    }

    /// [`run`] with `from` replaced by `to` in the README.
    fn run_edited_readme(from: &str, to: &str) -> Vec<String> {
        run(&README.replace(from, to), MANIFEST, MAIN)
    }

    fn run(readme: &str, manifest: &str, main: &str) -> Vec<String> {
        run_docs(&[("README.md", readme)], manifest, main)
    }

    fn run_docs(docs: &[(&str, &str)], manifest: &str, main: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let contexts: Vec<Context> = docs
            .iter()
            .flat_map(|(name, text)| parse_doc(name, text, &mut problems))
            .collect();
        let package = Package {
            dir: "install".into(),
            sections: readme_sections(manifest),
            tables: dependency_tables(manifest),
            files: vec![(
                "install/src/main.rs".into(),
                main.lines().map(str::to_string).collect(),
            )],
        };
        compare(&contexts, &[package], &mut problems);
        problems
    }

    #[test]
    fn a_matching_package_passes() {
        assert_eq!(run(README, MANIFEST, MAIN), Vec::<String>::new());
    }

    #[test]
    fn a_changed_snippet_line_fails() {
        let problems = run_edited_readme("let b = a;", "let b = a + 1;");
        assert_reports(&problems, "this Rust block is not");
        // and the file's own line is then reported as unexplained
        assert_reports(&problems, "`let a = 1;` (2 such line(s) in all) is neither");
    }

    #[test]
    fn a_dependency_missing_from_the_readme_fails() {
        let problems =
            run_edited_readme("tokio = { version = \"1\", features = [\"macros\"] }\n", "");
        assert!(
            problems.iter().any(|p| p
                .contains("`tokio = { version = \"1\", features = [\"macros\"] }`")
                && p.contains("does not show")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_changed_feature_fails() {
        let problems = run_edited_readme("[\"macros\"]", "[\"macros\", \"rt\"]");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn a_path_dependency_in_the_readme_fails() {
        let problems = run_edited_readme(
            "{ git = \"https://github.com/fly-oidc/fly-oidc\" }",
            "{ path = \"crates/fly-oidc\" }",
        );
        assert_reports(&problems, "is a path dependency");
    }

    #[test]
    fn a_hidden_line_in_the_snippet_file_fails() {
        let main = MAIN.replace("    let a = 1;\n", "    let a = 1;\n    let hidden = 2;\n");
        let problems = run(README, MANIFEST, &main);
        assert_reports(&problems, "this Rust block is not");
        let main = MAIN.replace("#[tokio::main]\n", "#[tokio::main]\nuse std::fmt;\n");
        let problems = run(README, MANIFEST, &main);
        assert_reports(
            &problems,
            "`use std::fmt;` (1 such line(s) in all) is neither",
        );
    }

    #[test]
    fn one_package_serves_the_same_block_in_two_docs() {
        let crate_readme = README
            .replace("## Use it\n", "")
            .replace("## Install", "## Quick start");
        let manifest = MANIFEST.replace(
            "[\"README.md > Install\"]",
            "[\"README.md > Install\", \"crates/fly-oidc/README.md > Quick start\"]",
        );
        let docs = [
            ("README.md", README),
            ("crates/fly-oidc/README.md", crate_readme.as_str()),
        ];
        assert_eq!(run_docs(&docs, &manifest, MAIN), Vec::<String>::new());
        // The second doc's block changed: that doc's place is named.
        let changed = crate_readme.replace("let b = a;", "let b = a + 2;");
        let docs = [
            ("README.md", README),
            ("crates/fly-oidc/README.md", changed.as_str()),
        ];
        let problems = run_docs(&docs, &manifest, MAIN);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("crates/fly-oidc/README.md:")
                    && p.contains("this Rust block is not")),
            "{problems:?}"
        );
        // A second doc the package does not name: it needs a package.
        let problems = run_docs(&docs, MANIFEST, MAIN);
        assert_reports(&problems, "needs one package");
    }

    #[test]
    fn a_rust_block_without_a_dependency_block_fails() {
        let mut problems = Vec::new();
        parse_doc(
            "README.md",
            "## A\n```rust,ignore\nlet a = 1;\n```\n",
            &mut problems,
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn a_block_needs_its_package() {
        let problems = run(
            README,
            &MANIFEST.replace("README.md > Install", "README.md > Other"),
            MAIN,
        );
        assert_reports(&problems, "names the section \"README.md > Other\"");
        assert_reports(&problems, "needs one package");
    }

    #[test]
    fn lock_versions_must_be_the_workspace_ones() {
        let dir = std::env::temp_dir().join(format!("readme-drift-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let entry = |name: &str, version: &str| {
            format!(
                "[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n"
            )
        };
        fs::write(
            dir.join("w.lock"),
            entry("tokio", "1.50.0") + &entry("serde", "1.0.1"),
        )
        .unwrap();
        fs::write(
            dir.join("s.lock"),
            entry("tokio", "1.50.0") + &entry("only-here", "0.1.0"),
        )
        .unwrap();
        assert_eq!(check_lock(&dir.join("w.lock"), &dir.join("s.lock")), Ok(()));
        fs::write(dir.join("s.lock"), entry("tokio", "1.51.0")).unwrap();
        let problems = check_lock(&dir.join("w.lock"), &dir.join("s.lock")).unwrap_err();
        assert_eq!(
            problems,
            vec!["tokio 1.51.0 (the workspace has 1.50.0)".to_string()]
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
