//! The command line that other programs run: the `command` of a Google credential
//! configuration.
//!
//! Programs that run a command line split it three ways:
//!
//! - Python google-auth and botocore (the AWS CLI, boto3) with shell rules (`shlex.split`);
//! - Node's google-auth-library on whitespace outside double quotes, then strips the quotes;
//! - the AWS SDKs for Rust, Go and JavaScript hand it to `sh -c`.
//!
//! [`join`] writes each part so that all three read it back the same: a part holding a space
//! or any character a shell treats specially is wrapped in double quotes, and a part holding a
//! character that double quotes do not make literal in every one of them (`"`, `\`, `$`, a
//! backtick, a newline) is refused.

use std::fmt;

/// Characters no double-quoted form carries through every consumer.
const REFUSED: [char; 6] = ['"', '\\', '$', '`', '\n', '\r'];

/// A part of a command line that cannot be written so every consumer reads it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unquotable {
    /// The part, as given.
    pub part: String,
    /// The first character that cannot be carried.
    pub character: char,
}

impl fmt::Display for Unquotable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} holds {:?}, which the programs that run this command line (Python google-auth and botocore split it with shell rules, Node's google-auth-library on whitespace outside double quotes, other AWS SDKs with sh -c) do not all read the same way",
            self.part, self.character
        )
    }
}

impl std::error::Error for Unquotable {}

/// Whether `c` may appear unquoted in every consumer.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '/' | '.' | '_' | '-' | '+' | '=' | ':' | ',' | '@' | '%')
}

/// `part` as one word of a command line: as is when every character is plain, else in
/// double quotes; an [`Unquotable`] error when it holds `"`, `\`, `$`, a backtick or a newline.
pub(crate) fn quote(part: &str) -> Result<String, Unquotable> {
    if let Some(character) = part.chars().find(|c| REFUSED.contains(c)) {
        return Err(Unquotable {
            part: part.to_owned(),
            character,
        });
    }
    if !part.is_empty() && part.chars().all(is_plain) {
        Ok(part.to_owned())
    } else {
        Ok(format!("\"{part}\""))
    }
}

/// The command line of `parts`, each [`quote`]d, separated by single spaces.
pub(crate) fn join<'a>(parts: impl IntoIterator<Item = &'a str>) -> Result<String, Unquotable> {
    let quoted: Result<Vec<String>, Unquotable> = parts.into_iter().map(quote).collect();
    Ok(quoted?.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_stay_as_they_are_and_others_are_double_quoted_or_refused() {
        assert_eq!(
            quote("/usr/local/bin/fly-oidc").unwrap(),
            "/usr/local/bin/fly-oidc"
        );
        assert_eq!(
            quote("/tmp/my tools/fly-oidc").unwrap(),
            "\"/tmp/my tools/fly-oidc\""
        );
        assert_eq!(
            quote("/opt/it's/fly-oidc").unwrap(),
            "\"/opt/it's/fly-oidc\""
        );
        let err = quote("/tmp/$HOME/fly-oidc").unwrap_err();
        assert_eq!(err.character, '$');
        let line = join(["/tmp/my tools/fly-oidc", "gcp", "executable"]).unwrap();
        assert_eq!(line, "\"/tmp/my tools/fly-oidc\" gcp executable");
    }

    #[test]
    fn every_refused_character_is_refused_and_shell_specials_are_quoted() {
        for c in REFUSED {
            let part = format!("/a{c}b");
            assert_eq!(quote(&part).unwrap_err().character, c, "{part:?}");
        }
        for special in [
            " ", "\t", ";", "&", "|", "(", "<", ">", "*", "?", "#", "~", "!", "'",
        ] {
            let part = format!("/a{special}b");
            assert_eq!(quote(&part).unwrap(), format!("\"{part}\""), "{part:?}");
        }
        assert_eq!(quote("").unwrap(), "\"\"");
        assert_eq!(
            quote("arn:aws:iam::123456789012:role/x=y,z@w").unwrap(),
            "arn:aws:iam::123456789012:role/x=y,z@w"
        );
    }
}
