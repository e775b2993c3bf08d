//! POSIX shell quoting, for the lines we print or write for a shell to read (`export` lines,
//! set-up commands, env files).

/// `value` as one POSIX shell word: in single quotes, with `'` written as `'\''`. Nothing
/// inside single quotes is special to a shell, so any value reads back as given.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// The line `export NAME='value'` (with its newline), `value` quoted by [`shell_quote`]:
/// what `fly-oidc aws env` prints and `fly-oidc serve --env-file` writes.
///
/// ```
/// assert_eq!(fly_oidc::shell_export("A", "it's"), "export A='it'\\''s'\n");
/// ```
pub fn shell_export(name: &str, value: &str) -> String {
    format!("export {name}={}\n", shell_quote(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_neutralises_metacharacters() {
        for nasty in ["$(id)", "`id`", "a b", "x'; rm -rf /; '", "\n", "", "\\"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", shell_quote(nasty)))
                .env_clear()
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), nasty);
        }
    }
}
