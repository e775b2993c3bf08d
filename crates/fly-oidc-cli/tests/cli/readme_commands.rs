//! The commands the docs tell a user to paste work, because something runs each of them; and
//! the links between the docs lead somewhere.
//!
//! Every shell command in a code block of `README.md`, `docs/*.md` and the crates'
//! `crates/*/README.md` (blocks tagged `sh`, `bash`, `shell` or `console`, and `$ `-prompted
//! lines of untagged ones) is either run as written by `scripts/demo.sh` (which `.ci/run`
//! runs), or has an entry in [`COMMANDS`]: run by `.ci/run`, by a named test (which must exist
//! and run the named part), a filter of the suite `scripts/test.sh` runs whole, or an
//! exception with its reason (a Fly account, GitHub, a Docker image, a cloud login: what no
//! test machine has).
//!
//! And the stand-ins answer as "Try it locally" (`docs/try-it-locally.md`) shows: the fake
//! STS answers `GetCallerIdentity` for the credentials it issued (the AWS CLI under
//! `fly-oidc exec`), and refuses others as AWS does.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use crate::support::{Sandbox, describe};
use fly_oidc_testkit::aws_sts::FakeSts;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// How a pasteable command that the demo does not run is run, or why it is not.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// `.ci/run` runs it, as written.
    Ci,
    /// The test `name` in `file` (from the workspace's root) runs it: its body, or that of a
    /// function of the file it calls, must contain `runs` (the part of the command it runs,
    /// as the test spells it).
    Test {
        file: &'static str,
        name: &'static str,
        runs: &'static str,
    },
    /// A filter or variant of the test suite, which `scripts/test.sh` runs whole.
    Suite(&'static str),
    /// Nothing runs it here; why (what no test machine has).
    Exception(&'static str),
}

/// A command that runs a part of the fault matrix.
const FAULT_MATRIX_FILTER: Run = Run::Suite("a filter of the fault matrix");

/// The pasteable commands of the docs (README.md, docs/*.md, crates/*/README.md) that
/// scripts/demo.sh does not run, as
/// the docs write them (trailing comments dropped, `\`-continued lines joined, spaces
/// collapsed), and how each is run. A command that leaves the docs must leave this list.
const COMMANDS: &[(&str, Run)] = &[
    ("./scripts/demo.sh", Run::Ci),
    ("./scripts/test.sh", Run::Ci),
    (
        "cargo install --locked --git https://github.com/fly-oidc/fly-oidc fly-oidc-cli",
        Run::Exception(
            "needs GitHub; `cargo build --workspace` builds the same package from the checkout",
        ),
    ),
    (
        "cargo install --locked --path crates/fly-oidc-cli",
        Run::Exception(
            "installs into ~/.cargo/bin (a release build): `cargo build --workspace` builds the same package",
        ),
    ),
    (
        "fly-oidc token --audience sts.amazonaws.com",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/cli_token.rs",
            name: "prints_a_verifiable_token_for_the_audience",
            runs: r#""token", "--socket", sock, "--audience", "sts.amazonaws.com""#,
        },
    ),
    (
        "fly-oidc token --claims --aws-principal-tags",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/cli_aws_session_tags.rs",
            name: "token_claims_with_aws_principal_tags_shows_the_fakes_tags",
            runs: r#""token --claims --aws-principal-tags""#,
        },
    ),
    (
        "fly-oidc exec --aws-principal-tags -- aws sts get-caller-identity",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/cli_aws_session_tags.rs",
            name: "exec_with_aws_principal_tags_serves_a_tagged_session_to_the_aws_cli",
            runs: r#""exec --aws-principal-tags -- aws sts get-caller-identity""#,
        },
    ),
    (
        "fly-oidc exec --aws-chain-role-arn arn:aws:iam::210987654321:role/data -- aws sts get-caller-identity",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/cli_aws_role_chaining.rs",
            name: "exec_with_a_chained_role_serves_it_to_the_aws_cli_and_boto3",
            runs: r#""exec --aws-chain-role-arn arn:aws:iam::210987654321:role/data -- aws sts get-caller-identity""#,
        },
    ),
    (
        "fly-oidc aws credential-process --role-arn arn:aws:iam::123456789012:role/fly-reader --sts-endpoint sts.amazonaws.com",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/cli_ergonomics.rs",
            name: "a_bad_url_says_what_a_valid_one_looks_like",
            runs: r#"credential_process_no_cache(ROLE, "sts.amazonaws.com")"#,
        },
    ),
    (
        "cargo run -p fly-oidc-examples --example sts_get_caller_identity",
        Run::Test {
            file: "tests/tests/libraries/aws_examples.rs",
            name: "sts_get_caller_identity_prints_the_assumed_role_arn",
            runs: r#"run_ok("sts_get_caller_identity""#,
        },
    ),
    (
        "cargo run -p fly-oidc-examples --example s3_list_buckets",
        Run::Test {
            file: "tests/tests/libraries/aws_examples.rs",
            name: "s3_list_buckets_prints_one_bucket_per_line",
            runs: r#"run_ok("s3_list_buckets""#,
        },
    ),
    (
        "cargo run -p fly-oidc-examples --example provider_chain",
        Run::Test {
            file: "tests/tests/libraries/aws_examples.rs",
            name: "provider_chain_uses_flyoidc_on_fly",
            runs: r#"run_ok("provider_chain""#,
        },
    ),
    (
        "fly-oidc aws setup --role-name my-fly-app > setup-aws.sh",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/setup_doctor.rs",
            name: "aws_setup_refuses_personal_and_needs_an_org",
            runs: "// On a Machine: org and app from the token.",
        },
    ),
    (
        "fly-oidc doctor --aws-principal-tags",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/setup_doctor.rs",
            name: "doctor_with_aws_principal_tags_names_a_missing_tag_session",
            runs: r#""doctor --aws-principal-tags""#,
        },
    ),
    (
        "fly-oidc aws check-trust-policy trust.json --principal-tags",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/setup_doctor.rs",
            name: "check_trust_policy_with_principal_tags_requires_tag_session",
            runs: r#""aws check-trust-policy trust.json --principal-tags""#,
        },
    ),
    (
        "fly-oidc aws setup --role-name my-fly-app --principal-tags > setup-aws.sh",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/setup_doctor.rs",
            name: "aws_setup_with_principal_tags_allows_tag_session_and_names_a_tag_key",
            runs: r#""aws setup --role-name my-fly-app --principal-tags""#,
        },
    ),
    (
        "fly-oidc aws setup --role-name my-fly-app --org acme --app my-app [--account-id 123456789012] [--max-session-duration 7200] > setup-aws.sh",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/setup_doctor.rs",
            name: "aws_setup_commands_create_provider_and_role_again_and_for_a_second_app",
            runs: r#"&["--account-id", ACCOUNT, "--max-session-duration", "7200"]"#,
        },
    ),
    (
        "fly-oidc aws setup --role-name my-data --trusted-role-arn arn:aws:iam::123456789012:role/my-fly-app --external-id my-external-id > setup-chain.sh",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/setup_doctor.rs",
            name: "aws_setup_trusted_role_arn_commands_run_and_doctor_passes_the_chain_on_moto",
            runs: r#""aws setup --role-name""#,
        },
    ),
    (
        "fly-oidc doctor --aws-chain-role-arn arn:aws:iam::210987654321:role/my-data --aws-chain-external-id my-external-id",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/setup_doctor.rs",
            name: "doctor_with_a_chain_checks_each_hop",
            runs: r#""doctor --aws-chain-role-arn""#,
        },
    ),
    (
        "fly-oidc aws setup --role-name my-fly-app --org acme --app my-app --account-id 123456789012 --format json > policy.json",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/setup_doctor.rs",
            name: "check_trust_policy_accepts_its_own_app_and_names_the_failing_condition_otherwise",
            runs: "setup_policy()",
        },
    ),
    (
        "fly-oidc aws check-trust-policy policy.json --org acme --app my-app",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/setup_doctor.rs",
            name: "check_trust_policy_accepts_its_own_app_and_names_the_failing_condition_otherwise",
            runs: r#""aws", "check-trust-policy", &policy"#,
        },
    ),
    (
        "aws --profile writer s3 mb s3://my-bucket",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/cli_aws_consumers.rs",
            name: "aws_cli_uses_two_credential_process_profiles_with_different_roles",
            runs: r#""--profile", "writer", "s3", "mb""#,
        },
    ),
    (
        "aws --profile reader s3 ls",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/cli_aws_consumers.rs",
            name: "aws_cli_uses_two_credential_process_profiles_with_different_roles",
            runs: r#""--profile", "reader", "s3", "ls""#,
        },
    ),
    (
        r#"python3 -c 'import boto3; print(boto3.Session(profile_name="reader").client("sts").get_caller_identity()["Arn"])'"#,
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/cli_aws_consumers.rs",
            name: "boto3_uses_credential_process_profiles",
            runs: "sandbox.boto3_profiles(",
        },
    ),
    (
        r#"eval "$(fly-oidc aws env --role-arn arn:aws:iam::123456789012:role/fly-reader)""#,
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/cli_aws_consumers.rs",
            name: "aws_env_sourced_by_bash_feeds_the_aws_cli",
            runs: r#"eval "$('{}' aws env --role-arn '{ROLE_A}')""#,
        },
    ),
    (
        "fly-oidc aws env --json ...",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/cli_aws_consumers.rs",
            name: "aws_env_sourced_by_bash_feeds_the_aws_cli",
            runs: r#""aws", "env", "--json", "--role-arn", ROLE_A"#,
        },
    ),
    (
        "cargo run -p fly-oidc-examples --example gcs_list_objects -- my-bucket",
        Run::Test {
            file: "tests/tests/libraries/gcp_storage_example.rs",
            name: "gcs_list_objects_lists_the_emulator_bucket",
            runs: "gcs_list_objects",
        },
    ),
    (
        "fly-oidc gcp credential-config --provider projects/123456789012/locations/global/workloadIdentityPools/fly-pool/providers/acme --service-account storage-reader@my-project.iam.gserviceaccount.com --output /app/gcp-credentials.json",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/gcp_google_auth.rs",
            name: "python_google_auth_impersonates_the_service_account",
            runs: "credential_config(&s.fakes.google, Some(SA)",
        },
    ),
    (
        "export GOOGLE_APPLICATION_CREDENTIALS=/app/gcp-credentials.json",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/gcp_google_auth.rs",
            name: "python_google_auth_impersonates_the_service_account",
            runs: "s.refresh(&config)",
        },
    ),
    (
        "export GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/gcp_google_auth.rs",
            name: "python_google_auth_impersonates_the_service_account",
            runs: "s.refresh(&config)",
        },
    ),
    (
        "export GOOGLE_CLOUD_PROJECT=my-project",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/node_consumers.rs",
            name: "google_auth_library_refreshes_through_the_executable",
            runs: r#"("GOOGLE_CLOUD_PROJECT", "my-project")"#,
        },
    ),
    (
        "gcloud auth login --cred-file=/app/gcp-credentials.json",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/gcp_google_auth.rs",
            name: "gcloud_logs_in_with_the_credential_config",
            runs: r#"&["auth", "login", &login_flag]"#,
        },
    ),
    (
        "fly-oidc gcp setup --project-number 123456789012 --project my-project --pool fly-pool --provider acme --org acme --app my-app --service-account storage-reader@my-project.iam.gserviceaccount.com > setup-gcp.sh",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/setup_doctor.rs",
            name: "gcp_setup_commands_parse_in_gcloud_without_credentials",
            runs: "run(GCP_SETUP, &[])",
        },
    ),
    (
        r#"fly-oidc gcp check-condition 'assertion.sub.startsWith("acme:my-app:")' --org acme --app my-app"#,
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/setup_doctor.rs",
            name: "check_condition_accepts_and_rejects_as_cel_does",
            runs: r#""gcp", "check-condition", expr"#,
        },
    ),
    (
        "fly-oidc doctor",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/setup_doctor.rs",
            name: "doctor_diagnoses_the_role_and_provider_the_environment_names",
            runs: r#"["doctor", "--json", "--offline", "--socket", sock]"#,
        },
    ),
    (
        "fly-oidc doctor --aws-role-arn arn:aws:iam::123456789012:role/my-fly-app --json",
        Run::Test {
            file: "crates/fly-oidc-cli/tests/cli/setup_doctor.rs",
            name: "doctor_passes_every_step_when_all_is_right",
            runs: "w.doctor(&[])",
        },
    ),
    (
        "fly apps create my-fly-app",
        Run::Exception("needs a Fly account"),
    ),
    (
        "fly deploy . --config examples/fly/fly.aws.toml --dockerfile examples/fly/Dockerfile",
        Run::Exception(
            "needs a Fly account and builds a Docker image; scripts/check-dockerfile.sh checks the kit's steps",
        ),
    ),
    (
        r#"fly-oidc serve --aws-role-arn "$ROLE" --env-file /run/fly-oidc.env --file-owner app &"#,
        Run::Exception(
            "the entrypoint.sh script of an image (su-exec, /run, a user `app`): the tour runs serve and sources its env file",
        ),
    ),
    (
        "cargo install cargo-fuzz",
        Run::Exception("installs a tool from crates.io into ~/.cargo/bin"),
    ),
    (
        "./scripts/fuzz.sh",
        Run::Exception(
            "fuzzes for minutes with cargo-fuzz on a nightly-flagged build; scripts/test.sh builds every fuzz target",
        ),
    ),
    (
        "SECONDS_PER_TARGET=600 ./scripts/fuzz.sh jwt_parse",
        Run::Exception("ten minutes of fuzzing; scripts/test.sh builds every fuzz target"),
    ),
    (
        "cargo test -p fly-oidc-cli --test fault_matrix",
        Run::Suite("the fault matrix, a test target of scripts/test.sh's `cargo test --workspace`"),
    ),
    (
        "cargo test -p fly-oidc-cli --test fault_matrix -- aws_",
        FAULT_MATRIX_FILTER,
    ),
    (
        "cargo test -p fly-oidc-cli --test fault_matrix -- gcp_",
        FAULT_MATRIX_FILTER,
    ),
    (
        "cargo test -p fly-oidc-cli --test fault_matrix -- cli-token",
        FAULT_MATRIX_FILTER,
    ),
    (
        "cargo test -p fly-oidc-cli --test fault_matrix -- --nocapture",
        Run::Suite("the fault matrix, printing its counts and times"),
    ),
    (
        "FAULT_MATRIX_BLESS=1 cargo test -p fly-oidc-cli --test fault_matrix -- faults_doc",
        Run::Suite(
            "rewrites docs/FAULTS.md's table; the suite runs the same test, which fails when the table is stale",
        ),
    ),
];

/// A pasteable command found in a doc: where, and its text as [`COMMANDS`] spells it.
#[derive(Debug)]
struct DocCommand {
    /// `README.md:66`.
    place: String,
    command: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `line` without a trailing `# comment` (a `#` after whitespace, outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut previous) = (false, false, ' ');
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single && previous != '\\' => double = !double,
            '#' if !single && !double && previous.is_whitespace() => return &line[..i],
            _ => {}
        }
        previous = c;
    }
    line
}

/// Runs of whitespace as one space, trimmed: how commands are compared.
fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The commands of one code block: its `$ ` lines when it has any (a transcript: the rest
/// is output), else (for a shell block) every line; comments dropped, `\`-continued lines
/// joined. A script (`#!` first) is one command: its first.
fn block_commands(lines: &[(usize, String)], shell: bool) -> Vec<(usize, String)> {
    let transcript = lines.iter().any(|(_, l)| l.starts_with("$ "));
    if !transcript && !shell {
        return Vec::new();
    }
    let script = lines.first().is_some_and(|(_, l)| l.starts_with("#!"));
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (number, line) in lines {
        let line = match (transcript, line.strip_prefix("$ ")) {
            (true, Some(command)) => command,
            (true, None) if pending.is_none() => continue,
            _ => line.as_str(),
        };
        let code = strip_comment(line).trim_end();
        let (code, continued) = match code.strip_suffix('\\') {
            Some(head) => (head, true),
            None => (code, false),
        };
        let (start, mut text) = pending.take().unwrap_or((*number, String::new()));
        text.push(' ');
        text.push_str(code);
        if continued {
            pending = Some((start, text));
        } else if !normalize(&text).is_empty() {
            out.push((start, normalize(&text)));
        }
    }
    if script {
        out.truncate(1);
    }
    out
}

/// A fenced code block being read.
struct Block {
    /// Tagged as a shell's.
    shell: bool,
    /// The fence's indentation, removed from the block's lines.
    indent: usize,
    /// Its lines, with their numbers.
    lines: Vec<(usize, String)>,
}

/// Every pasteable command of the markdown `text` (of the file `name`).
fn doc_commands(name: &str, text: &str) -> Vec<DocCommand> {
    let mut out = Vec::new();
    let mut block: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut block {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let lang = info.split_whitespace().next().unwrap_or("");
                    block = Some(Block {
                        shell: matches!(lang, "sh" | "bash" | "shell" | "console" | "zsh"),
                        indent,
                        lines: Vec::new(),
                    });
                }
            }
            Some(open) => {
                if trimmed.trim_end() == "```" {
                    for (at, command) in block_commands(&open.lines, open.shell) {
                        out.push(DocCommand {
                            place: format!("{name}:{at}"),
                            command,
                        });
                    }
                    block = None;
                } else {
                    let content = line.get(indent.min(open.indent)..).unwrap_or("");
                    open.lines.push((number, content.to_owned()));
                }
            }
        }
    }
    assert!(block.is_none(), "{name}: a code block is not closed");
    out
}

/// The `.md` files of the directory `dir` (relative to the root) whose name is `name` (any,
/// when `None`), sorted.
fn markdown_files(root: &Path, dir: &str, name: Option<&str>) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| match name {
                    Some(name) => p.file_name().is_some_and(|n| n == name),
                    None => p.extension().is_some_and(|e| e == "md"),
                })
                .map(|p| Path::new(dir).join(p.file_name().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The docs a user reads: README.md, docs/*.md and each crate's README.md.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut docs = vec![PathBuf::from("README.md")];
    docs.extend(markdown_files(root, "docs", None));
    let mut crates: Vec<String> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    crates.sort();
    for krate in crates {
        docs.extend(markdown_files(
            root,
            &format!("crates/{krate}"),
            Some("README.md"),
        ));
    }
    docs
}

/// Every doc a user reads (see [`doc_files`]): its path from the root, and its text.
pub(crate) fn doc_texts() -> Vec<(String, String)> {
    let root = root();
    doc_files(&root)
        .iter()
        .map(|doc| (doc.display().to_string(), read(&root.join(doc))))
        .collect()
}

/// Every doc's commands, each with its place.
fn all_doc_commands() -> Vec<DocCommand> {
    doc_texts()
        .iter()
        .flat_map(|(name, text)| doc_commands(name, text))
        .collect()
}

/// The commands scripts/demo.sh shows and runs: the quoted argument of each `run`,
/// `run_failing` and `run_redacted`, normalized.
fn demo_commands(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    for function in ["run", "run_failing", "run_redacted"] {
        let call = format!("{function} ");
        let mut from = 0;
        while let Some(found) = script[from..].find(&call) {
            let at = from + found;
            from = at + call.len();
            let before = script[..at].chars().next_back().unwrap_or('\n');
            if !before.is_whitespace() {
                continue;
            }
            let rest = &script[from..];
            let argument = match rest.chars().next() {
                Some('\'') => rest[1..].split_once('\'').map(|(a, _)| a.to_owned()),
                Some('"') => {
                    let mut text = String::new();
                    let mut chars = rest[1..].chars();
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => text.extend(chars.next()),
                            '"' => {
                                closed = true;
                                break;
                            }
                            c => text.push(c),
                        }
                    }
                    closed.then_some(text)
                }
                _ => None,
            };
            out.extend(argument.map(|a| normalize(&a)));
        }
    }
    out
}

/// The source of the top-level `fn name` of `text`, and whether it is a test.
fn function(text: &str, name: &str) -> Option<(bool, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| {
        l.starts_with(&format!("fn {name}(")) || l.starts_with(&format!("async fn {name}("))
    })?;
    let is_test = lines[start.saturating_sub(3)..start]
        .iter()
        .any(|l| l.starts_with("#[test]") || l.starts_with("#[tokio::test"));
    let end = start + lines[start..].iter().position(|l| *l == "}")?;
    Some((is_test, lines[start..=end].join("\n")))
}

/// Whether the test `name` of the file `text` runs `runs`: in its body, or in the body of a
/// function of the file that it calls. `None`: there is no such test.
fn test_runs(text: &str, name: &str, runs: &str) -> Option<bool> {
    let (true, body) = function(text, name)? else {
        return None;
    };
    let calls = body.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '('));
    let callees = calls.filter_map(|word| word.strip_suffix('('));
    Some(
        body.contains(runs)
            || callees
                .filter_map(|callee| function(text, callee))
                .any(|(_, callee)| callee.contains(runs)),
    )
}

/// What the entries of [`COMMANDS`] are checked against.
struct Sources {
    /// The workspace's root.
    root: PathBuf,
    /// `.ci/run`.
    ci: String,
    /// `scripts/test.sh`.
    suite: String,
}

impl Run {
    /// Why this entry does not hold for `command`, if it does not.
    fn problem(&self, command: &str, sources: &Sources) -> Option<String> {
        match *self {
            Run::Ci => {
                let script = command.trim_start_matches("./");
                let runs = sources
                    .ci
                    .lines()
                    .any(|l| !l.trim_start().starts_with('#') && l.contains(script));
                (!runs).then(|| "is listed as run by .ci/run, which does not run it".to_owned())
            }
            Run::Test { file, name, runs } => {
                let text = std::fs::read_to_string(sources.root.join(file)).unwrap_or_default();
                match test_runs(&text, name, runs) {
                    None => Some(format!(
                        "is listed as run by the test {name} in {file}, which has no such test"
                    )),
                    Some(false) => Some(format!(
                        "is listed as run by the test {name} ({file}), which no longer runs {runs:?}"
                    )),
                    Some(true) => None,
                }
            }
            Run::Suite(what) => {
                let runs = sources.suite.contains("cargo test --workspace");
                (what.trim().is_empty() || !runs).then(|| {
                    "is listed as a part of scripts/test.sh's `cargo test --workspace` (which it \
                     must run), with a word on what it is"
                        .to_owned()
                })
            }
            Run::Exception(reason) => reason
                .trim()
                .is_empty()
                .then(|| "is an exception without a reason".to_owned()),
        }
    }
}

#[test]
fn every_pasteable_command_in_the_docs_is_run_by_the_demo_or_a_named_test() {
    let root = root();
    let demo = demo_commands(&read(&root.join("scripts/demo.sh")));
    assert!(
        demo.iter()
            .any(|c| c == "fly-oidc exec -- aws sts get-caller-identity"),
        "the demo's commands were not found: {demo:#?}"
    );
    let sources = Sources {
        ci: read(&root.join(".ci/run")),
        suite: read(&root.join("scripts/test.sh")),
        root,
    };
    let commands = all_doc_commands();
    assert!(
        commands
            .iter()
            .any(|c| c.command == "fly-oidc token --claims"),
        "the README's commands were not found: {commands:#?}"
    );
    let mut problems = Vec::new();
    let mut used = vec![false; COMMANDS.len()];
    for doc in &commands {
        let in_demo = demo.contains(&doc.command);
        let entry = COMMANDS.iter().position(|(c, _)| *c == doc.command);
        match (in_demo, entry) {
            (true, None) => {}
            (true, Some(i)) => {
                used[i] = true;
                problems.push(format!(
                    "{}: `{}` is run by scripts/demo.sh: remove its entry from COMMANDS",
                    doc.place, doc.command
                ));
            }
            (false, None) => problems.push(format!(
                "{}: `{}` is neither run by scripts/demo.sh (as written) nor listed in COMMANDS \
                 (crates/fly-oidc-cli/tests/cli/readme_commands.rs): run it in the demo, or name \
                 the test that runs it there, or add an exception with the reason",
                doc.place, doc.command
            )),
            (false, Some(i)) => {
                used[i] = true;
                if let Some(problem) = COMMANDS[i].1.problem(&doc.command, &sources) {
                    problems.push(format!("{}: `{}` {problem}", doc.place, doc.command));
                }
            }
        }
    }
    for ((command, _), used) in COMMANDS.iter().zip(used) {
        if !used {
            problems.push(format!(
                "COMMANDS lists `{command}`, which no doc holds any more: remove it"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The extraction itself: transcripts, comments, continuations, indented blocks, scripts.
#[test]
fn doc_commands_are_read_as_a_shell_reads_them() {
    let text = "intro\n\n   ```sh\n   fly-oidc a \\\n     --b 'x # y'   # comment\n\n   # only a comment\n   ```\n\n```\n$ fly-oidc c\nfly-oidc: error: output\n```\n\n```toml\nkey = 1\n```\n\n```sh\n#!/bin/sh\n# entrypoint\nfly-oidc serve &\nwait\n```\n";
    let found: Vec<(String, String)> = doc_commands("D.md", text)
        .into_iter()
        .map(|c| (c.place, c.command))
        .collect();
    assert_eq!(
        found,
        [
            ("D.md:4".to_owned(), "fly-oidc a --b 'x # y'".to_owned()),
            ("D.md:11".to_owned(), "fly-oidc c".to_owned()),
            ("D.md:22".to_owned(), "fly-oidc serve &".to_owned()),
        ]
    );
    let demo = "run 'a  b'\nrun_failing 'c \"$X\"'\nif run 'd' && e; then\n  run \"f \\\"$PORT\\\"\"\nfi\nrun() {\n  eval \"$1\"\n}\n";
    assert_eq!(demo_commands(demo), ["a b", "d", "f \"$PORT\"", "c \"$X\""]);
}

/// The repository's files as the crates' READMEs link them (crates.io does not resolve a
/// relative link out of the package).
const BLOB: &str = "https://github.com/fly-oidc/fly-oidc/blob/HEAD/";

/// GitHub's anchor for a heading: lowercased, punctuation but `-` and `_` dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The lines of a markdown text outside code blocks (the fences left out).
fn prose_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The anchors of the headings of a markdown text (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    prose_lines(text)
        .filter(|line| line.starts_with('#'))
        .map(|line| line.trim_start_matches('#'))
        .filter(|heading| heading.starts_with(' '))
        .map(anchor)
        .collect()
}

/// The link targets of a markdown text, `[text](target)`, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose_lines(text) {
        for (i, _) in line.match_indices("](") {
            let rest = &line[i + 2..];
            if let Some(end) = rest.find(')') {
                out.push(rest[..end].to_owned());
            }
        }
    }
    out
}

/// The docs' links move with the text: every link to a file of the repository (relative, or
/// through GitHub for the crates' READMEs) names a file that exists and, with `#anchor`, a
/// heading of it.
#[test]
fn every_link_between_the_docs_resolves() {
    let root = root();
    let mut problems = Vec::new();
    let docs = doc_texts();
    assert!(
        docs.len() > 10,
        "{:?}",
        docs.iter().map(|d| &d.0).collect::<Vec<_>>()
    );
    for (name, text) in &docs {
        let dir = Path::new(name).parent().unwrap_or(Path::new(""));
        for link in links(text) {
            let (path, base) = match link.strip_prefix(BLOB) {
                Some(path) => (path, Path::new("")),
                None if link.contains("://") || link.starts_with("mailto:") => continue,
                None => (link.as_str(), dir),
            };
            let (file, fragment) = path.split_once('#').unwrap_or((path, ""));
            let target = if file.is_empty() {
                PathBuf::from(name)
            } else {
                base.join(file)
            };
            let Ok(content) = std::fs::read_to_string(root.join(&target)) else {
                if !root.join(&target).exists() {
                    problems.push(format!(
                        "{name}: ({link}): {} does not exist",
                        target.display()
                    ));
                }
                continue;
            };
            if !fragment.is_empty() && !anchors(&content).iter().any(|a| a == fragment) {
                problems.push(format!(
                    "{name}: ({link}): {} has no heading #{fragment}",
                    target.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        anchor("Every SDK, no config: `fly-oidc exec`"),
        "every-sdk-no-config-fly-oidc-exec"
    );
    assert_eq!(
        links("see [a](docs/a.md#b) and [c](https://x)\n```\n[d](e)\n```\n"),
        ["docs/a.md#b", "https://x"]
    );
}

/// A fake STS whose clock a test moves forward.
fn sts_with_clock() -> (FakeSts, Arc<AtomicU64>) {
    let ahead = Arc::new(AtomicU64::new(0));
    let offset = ahead.clone();
    let sts = FakeSts::builder()
        .account_id("123456789012")
        .clock(move || {
            #[allow(clippy::disallowed_methods)] // the fake's clock, moved by the test
            let now = SystemTime::now();
            now + Duration::from_secs(offset.load(Ordering::SeqCst))
        })
        .start_blocking()
        .unwrap();
    (sts, ahead)
}

/// The tour's `fly-oidc exec -- aws sts get-caller-identity`: the child keeps the STS endpoint
/// (here `AWS_ENDPOINT_URL`), and the fake STS answers the AWS CLI with the assumed role of
/// the credentials it issued; credentials it did not issue, a wrong session token, expired
/// credentials and an unsigned request get AWS's errors.
#[test]
fn the_fake_sts_answers_get_caller_identity_for_the_credentials_it_issued() {
    if !fly_oidc_tests::require_tool("aws") {
        return;
    }
    let fly = crate::support::acme_web();
    let (sts, ahead) = sts_with_clock();
    let sandbox = Sandbox::new(&fly, &sts.url());
    let role = "arn:aws:iam::123456789012:role/tour";
    let out = sandbox.fly_oidc(&[
        "exec",
        "--aws-role-arn",
        role,
        "--",
        "aws",
        "sts",
        "get-caller-identity",
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let identity: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(identity["Account"], "123456789012", "{identity}");
    let arn = identity["Arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:sts::123456789012:assumed-role/tour/fly-web-"),
        "{arn}"
    );
    let session = arn.rsplit('/').next().unwrap();
    let user_id = identity["UserId"].as_str().unwrap();
    assert!(
        user_id.starts_with("AROA") && user_id.ends_with(&format!(":{session}")),
        "{user_id}"
    );
    let calls: Vec<_> = sts.requests().into_iter().map(|r| r.action).collect();
    assert_eq!(
        calls,
        [
            Some("AssumeRoleWithWebIdentity".to_owned()),
            Some("GetCallerIdentity".to_owned())
        ]
    );

    // The AWS CLI with given keys: the fake's own, then altered ones.
    let issued = sandbox.credential_process(role, &["--no-cache", "--duration-seconds", "900"]);
    let caller = |key: &str, secret: &str, token: Option<&str>| {
        let mut cmd = sandbox.command("aws");
        cmd.args(["sts", "get-caller-identity", "--output", "json"])
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret);
        if let Some(token) = token {
            cmd.env("AWS_SESSION_TOKEN", token);
        }
        cmd.output().unwrap()
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
    let (key, secret, token) = (
        text(&issued["AccessKeyId"]),
        text(&issued["SecretAccessKey"]),
        text(&issued["SessionToken"]),
    );
    let out = caller(&key, &secret, Some(&token));
    assert!(out.status.success(), "{}", describe(&out));
    let refused = |out: std::process::Output, code: &str| {
        assert!(!out.status.success(), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("({code})")), "{code}: {stderr}");
        assert!(
            !stderr.contains(&secret) && !stderr.contains(&token),
            "{stderr}"
        );
    };
    refused(
        caller("ASIANOTISSUEDBYTHIS", &secret, Some(&token)),
        "InvalidClientTokenId",
    );
    refused(
        caller(&key, &secret, Some("another-session-token")),
        "InvalidClientTokenId",
    );
    refused(caller(&key, &secret, None), "InvalidClientTokenId");
    ahead.store(901, Ordering::SeqCst);
    refused(caller(&key, &secret, Some(&token)), "ExpiredToken");
    // Unsigned (no credentials at all): AWS's MissingAuthenticationToken, over plain HTTP.
    let unsigned = fly_oidc_tests::http_request(
        "POST",
        &sts.url(),
        &["Content-Type: application/x-www-form-urlencoded"],
        b"Action=GetCallerIdentity&Version=2011-06-15",
    );
    assert!(
        unsigned.starts_with("HTTP/1.1 403")
            && unsigned.contains("<Code>MissingAuthenticationToken</Code>"),
        "{unsigned}"
    );
}
