//! Runnable examples of federated cloud access from Fly.io Machines; see `examples/*.rs`
//! and run one with `cargo run -p fly-oidc-examples --example <name>`.

use std::error::Error;
use std::fmt;

/// Shows an error and its causes on one line, `error: cause: cause` (its `Display` chain,
/// not a `Debug` dump), as the examples print a failure.
#[derive(Debug)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            // Some errors repeat their cause in their own message: show it once.
            let text = cause.to_string();
            if !shown.contains(&text) {
                shown.push_str(": ");
                shown.push_str(&text);
            }
            source = cause.source();
        }
        f.write_str(&shown)
    }
}
