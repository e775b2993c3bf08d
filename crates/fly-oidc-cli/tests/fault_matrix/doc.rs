//! The generated table of `docs/FAULTS.md`, and the check that it lists exactly the rows
//! (`FAULT_MATRIX_BLESS=1` rewrites it).

use crate::row::{Expect, Row};
use std::fmt::Write as _;
use std::path::PathBuf;

const DOC_BEGIN: &str = "<!-- fault-matrix:begin: generated from crates/fly-oidc-cli/tests/fault_matrix/rows/; FAULT_MATRIX_BLESS=1 cargo test -p fly-oidc-cli --test fault_matrix -- faults_doc rewrites it -->";
const DOC_END: &str = "<!-- fault-matrix:end -->";

/// The rows as a Markdown table.
fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| cloud | token source | through | fault | expected | requests | bound in the test |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let expected = match &r.expect {
            Expect::Ok => "succeeds".to_owned(),
            Expect::Err(kind, says) => {
                let says: Vec<String> = says.iter().map(|s| format!("`{s}`")).collect();
                format!("`{kind}`: {}", says.join(", "))
            }
        };
        let requests: Vec<String> = r
            .attempts
            .iter()
            .map(|(counter, range)| match (range.start(), range.end()) {
                (lo, hi) if lo == hi => format!("{} {lo}", counter.label()),
                (lo, hi) => format!("{} {lo}–{hi}", counter.label()),
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {expected} | {} | {} s |",
            r.cloud_label(),
            r.source.label(),
            r.via.label(),
            r.fault,
            requests.join(", "),
            r.within.as_secs()
        );
    }
    out
}

/// `docs/FAULTS.md` lists exactly `rows` (with `FAULT_MATRIX_BLESS=1`: make it so).
pub fn check(rows: &[Row]) -> Result<(), String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/FAULTS.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = format!("{DOC_BEGIN}\n\n{}\n{DOC_END}", table(rows));
    let current = doc
        .find("<!-- fault-matrix:begin")
        .zip(doc.find(DOC_END))
        .map(|(b, e)| &doc[b..e + DOC_END.len()]);
    #[allow(clippy::disallowed_methods)] // the harness's own switch, not config under test
    let bless = std::env::var_os("FAULT_MATRIX_BLESS").is_some_and(|v| v == "1");
    if bless {
        let updated = match current {
            Some(old) => doc.replace(old, &generated),
            None => format!("{}\n{generated}\n", doc.trim_end()),
        };
        return std::fs::write(&path, updated).map_err(|e| format!("{}: {e}", path.display()));
    }
    if current == Some(generated.as_str()) {
        Ok(())
    } else {
        Err("docs/FAULTS.md does not list the matrix's rows; run \
             FAULT_MATRIX_BLESS=1 cargo test -p fly-oidc-cli --test fault_matrix -- faults_doc"
            .into())
    }
}
