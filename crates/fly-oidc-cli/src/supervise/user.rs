//! `--user USER[:GROUP]` and `--file-owner USER[:GROUP]`, resolved in this machine's user
//! and group databases ([`resolve_owner`]).

use fly_oidc_server::FileOwner;
use std::path::PathBuf;

/// A user resolved from `USER[:GROUP]`: what running a process as that user needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResolvedUser {
    /// The user's login name.
    pub(crate) name: String,
    /// The user's home directory.
    pub(crate) home: PathBuf,
    /// The user's uid, and the group's gid (the user's primary group when none is named).
    pub(crate) owner: FileOwner,
}

/// Resolve `USER[:GROUP]` (names or numeric ids) in this machine's passwd and group databases.
/// An empty `GROUP` means the user's primary group.
///
/// # Errors
/// When a database cannot be read or names no such user or group: the reason and the fix,
/// without the spec or the setting's name (the caller adds them).
pub(crate) fn resolve_owner(spec: &str) -> Result<ResolvedUser, String> {
    use nix::unistd::{Gid, Group, Uid, User};
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = match user_part.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(user_part),
    };
    let user = lookup
        .map_err(|e| format!("cannot read the user database: {e}"))?
        .ok_or_else(|| {
            format!(
                "no user {user_part:?} on this machine (create it in the image, e.g. `useradd {user_part}`)"
            )
        })?;
    let gid = match group_part {
        None | Some("") => user.gid,
        Some(group) => {
            let lookup = match group.parse::<u32>() {
                Ok(gid) => Group::from_gid(Gid::from_raw(gid)),
                Err(_) => Group::from_name(group),
            };
            lookup
                .map_err(|e| format!("cannot read the group database: {e}"))?
                .ok_or_else(|| format!("no group {group:?}"))?
                .gid
        }
    };
    Ok(ResolvedUser {
        name: user.name,
        home: user.dir,
        owner: FileOwner {
            uid: user.uid.as_raw(),
            gid: gid.as_raw(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_root_by_name_and_number() {
        let by_name = resolve_owner("root").expect("root exists");
        assert_eq!(by_name.owner, FileOwner { uid: 0, gid: 0 });
        assert_eq!(by_name.name, "root");
        assert_eq!(resolve_owner("0:0").expect("uid 0"), by_name);
    }

    #[test]
    fn unknown_user_and_group_are_named() {
        let err = resolve_owner("no-such-user-fly-oidc").unwrap_err();
        assert!(
            err.to_string()
                .contains("no user \"no-such-user-fly-oidc\"")
        );
        assert!(err.to_string().contains("useradd"));
        let err = resolve_owner("root:no-such-group-fly-oidc").unwrap_err();
        assert_eq!(err.to_string(), "no group \"no-such-group-fly-oidc\"");
    }
}
