//! Request routing: a pure function of the path and query, so it can be fuzzed.

/// The path of the default AWS role's ECS container-credentials endpoint.
pub(crate) const AWS_DEFAULT_PATH: &str = "/v1/aws/credentials";
/// The prefix of each role's own endpoint: `/v1/aws/roles/<role-name>`.
pub(crate) const AWS_ROLE_PREFIX: &str = "/v1/aws/roles/";
/// The prefix of the GCE metadata endpoints.
const METADATA_PREFIX: &str = "/computeMetadata/v1/";
/// The health endpoint.
const HEALTHZ_PATH: &str = "/healthz";

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/`: the metadata server's root (SDKs probe it to detect "on GCE").
    Root,
    /// `/healthz`.
    Healthz,
    /// An ECS container-credentials endpoint: the default role (`None`) or a role by name.
    Aws {
        /// The role name from `/v1/aws/roles/<role-name>`.
        role: Option<String>,
    },
    /// A `/computeMetadata/v1/...` endpoint.
    Metadata(Meta),
    /// Anything else.
    NotFound,
}

/// A GCE metadata endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Meta {
    /// A directory listing (`/computeMetadata/v1/`, `instance/`, `project/`...), with its text.
    Listing(&'static str),
    /// `instance/service-accounts/`.
    Accounts {
        /// `?recursive=true`.
        recursive: bool,
    },
    /// `instance/service-accounts/<account>/`.
    Account {
        /// `default` or an email.
        account: String,
        /// `?recursive=true`.
        recursive: bool,
    },
    /// `instance/service-accounts/<account>/token`.
    Token {
        /// `default` or an email.
        account: String,
        /// `?scopes=a,b` (comma-separated), when given.
        scopes: Option<Vec<String>>,
    },
    /// `instance/service-accounts/<account>/email`.
    Email {
        /// `default` or an email.
        account: String,
    },
    /// `instance/service-accounts/<account>/scopes`.
    Scopes {
        /// `default` or an email.
        account: String,
    },
    /// `instance/service-accounts/<account>/aliases`.
    Aliases {
        /// `default` or an email.
        account: String,
    },
    /// `instance/service-accounts/<account>/identity?audience=A`.
    Identity {
        /// `default` or an email.
        account: String,
        /// The ID token's audience.
        audience: Option<String>,
    },
    /// `project/project-id`.
    ProjectId,
    /// `project/numeric-project-id`.
    NumericProjectId,
    /// `universe/universe-domain`.
    UniverseDomain,
    /// Any other path under `/computeMetadata/v1/`.
    Unknown,
}

/// Longest path or query we look at; anything longer is not one of ours.
const MAX_PART: usize = 4096;

/// Route a request by its path and query. Never panics; unknown query parameters are ignored.
pub(crate) fn route(path: &str, query: Option<&str>) -> Route {
    if path.len() > MAX_PART || query.is_some_and(|q| q.len() > MAX_PART) {
        return Route::NotFound;
    }
    match path {
        "/" => return Route::Root,
        HEALTHZ_PATH => return Route::Healthz,
        AWS_DEFAULT_PATH => return Route::Aws { role: None },
        "/computeMetadata/v1" | "/computeMetadata/" | "/computeMetadata" => {
            return Route::Metadata(Meta::Listing("v1/\n"));
        }
        _ => {}
    }
    if let Some(name) = path.strip_prefix(AWS_ROLE_PREFIX) {
        return if fly_oidc_aws::is_role_name(name) {
            Route::Aws {
                role: Some(name.to_owned()),
            }
        } else {
            Route::NotFound
        };
    }
    match path.strip_prefix(METADATA_PREFIX) {
        Some(rest) => Route::Metadata(metadata(rest, &Query::parse(query))),
        None => Route::NotFound,
    }
}

#[derive(Default)]
struct Query {
    recursive: bool,
    scopes: Option<Vec<String>>,
    audience: Option<String>,
}

impl Query {
    fn parse(query: Option<&str>) -> Self {
        let mut parsed = Query::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match &*key {
                "recursive" => parsed.recursive = value.eq_ignore_ascii_case("true"),
                "scopes" => {
                    let scopes: Vec<String> = value
                        .split([',', ' '])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if !scopes.is_empty() {
                        parsed.scopes = Some(scopes);
                    }
                }
                "audience" => parsed.audience = Some(value.into_owned()),
                _ => {}
            }
        }
        parsed
    }
}

fn metadata(rest: &str, query: &Query) -> Meta {
    match rest {
        "" => return Meta::Listing("instance/\nproject/\nuniverse/\n"),
        "instance" | "instance/" => return Meta::Listing("service-accounts/\n"),
        "project" | "project/" => return Meta::Listing("numeric-project-id\nproject-id\n"),
        "universe" | "universe/" => return Meta::Listing("universe-domain\n"),
        "project/project-id" => return Meta::ProjectId,
        "project/numeric-project-id" => return Meta::NumericProjectId,
        "universe/universe-domain" => return Meta::UniverseDomain,
        "instance/service-accounts" | "instance/service-accounts/" => {
            return Meta::Accounts {
                recursive: query.recursive,
            };
        }
        _ => {}
    }
    let Some(account_path) = rest.strip_prefix("instance/service-accounts/") else {
        return Meta::Unknown;
    };
    let (account, leaf) = account_path.split_once('/').unwrap_or((account_path, ""));
    if account.is_empty() || leaf.contains('/') {
        return Meta::Unknown;
    }
    let account = account.to_owned();
    match leaf {
        "" => Meta::Account {
            account,
            recursive: query.recursive,
        },
        "token" => Meta::Token {
            account,
            scopes: query.scopes.clone(),
        },
        "email" => Meta::Email { account },
        "scopes" => Meta::Scopes { account },
        "aliases" => Meta::Aliases { account },
        "identity" => Meta::Identity {
            account,
            // An empty audience is no audience: answered 400 here, never sent to IAM.
            audience: query.audience.clone().filter(|a| !a.trim().is_empty()),
        },
        _ => Meta::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/", Some("x=1")), Route::Root);
        assert_eq!(route(AWS_DEFAULT_PATH, None), Route::Aws { role: None });
        assert_eq!(
            route("/v1/aws/roles/reader", None),
            Route::Aws {
                role: Some("reader".into())
            }
        );
        assert_eq!(route("/v1/aws/roles/a/b", None), Route::NotFound);
        assert_eq!(
            route(
                "/computeMetadata/v1/instance/service-accounts/default/token",
                Some("scopes=a,b&audience=x&foo=bar")
            ),
            Route::Metadata(Meta::Token {
                account: "default".into(),
                scopes: Some(vec!["a".into(), "b".into()])
            })
        );
        assert_eq!(
            route(
                "/computeMetadata/v1/instance/service-accounts/default/",
                Some("recursive=true")
            ),
            Route::Metadata(Meta::Account {
                account: "default".into(),
                recursive: true
            })
        );
        assert_eq!(
            route("/computeMetadata/v1/instance/zone", None),
            Route::Metadata(Meta::Unknown)
        );
        assert_eq!(route("/latest/meta-data/", None), Route::NotFound);
    }
}
