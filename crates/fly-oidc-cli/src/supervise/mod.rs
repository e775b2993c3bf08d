//! Supervising what `fly-oidc exec` and `serve` run beside their credential server: `exec`'s
//! child ([`child`], with a terminal of its own for `--user`: `pty`) and its environment
//! ([`env_plan`]), `serve`'s env file and its lock ([`env_file`]), the private directory both
//! keep in the runtime directory ([`private_dir`]), and `--user`/`--file-owner`
//! ([`user`]).

pub(crate) mod child;
pub(crate) mod env_file;
pub(crate) mod env_plan;
pub(crate) mod private_dir;
mod pty;
pub(crate) mod user;
