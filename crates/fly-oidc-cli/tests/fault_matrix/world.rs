//! The fakes and files of one row, with its fault injected.

use crate::row::{Counter, Denial, Inject, Row, Source, Via, json_error};
use crate::support::chmod;
use crate::{AWS_AUDIENCE, TIMEOUT};
use fly_oidc::{BuildError, Env, FlyOidcClient, ProviderConfig};
use fly_oidc_aws::FlyOidcCredentialsProvider;
use fly_oidc_gcp::GcpTokenProvider;
use fly_oidc_testkit::aws_sts::FakeSts;
use fly_oidc_testkit::google::{self, FakeGoogle};
use fly_oidc_testkit::{FakeFlyApi, Fault};
use fly_oidc_tests::Secrets;
use fly_oidc_tests::gcp::SA;
use fly_oidc_tests::{aws, fast_retry};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// The row's config, for any of the three builders (the token client's, the AWS provider's,
/// the GCP provider's): an empty environment, the row's connect and request timeouts
/// ([`TIMEOUT`]) and the shared fast retries.
fn row_config() -> ProviderConfig {
    ProviderConfig::default()
        .with_env(Env::from_slice(&[]))
        .with_connect_timeout(TIMEOUT)
        .with_timeout(TIMEOUT)
        .with_retry(fast_retry())
}

/// The fakes and files of one row.
pub struct World {
    pub fly: FakeFlyApi,
    pub sts: Option<FakeSts>,
    pub google: Option<FakeGoogle>,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub api_url: String,
    pub api_token: Option<String>,
    pub token_file: PathBuf,
    /// The STS endpoint, and Google's STS URL, when not the fakes'.
    pub sts_url: Option<String>,
    pub google_sts_url: Option<String>,
    /// Whether the binary runs as uid/gid 65534.
    pub nobody: bool,
    /// Secrets the row made up (a wrong API token).
    extra_secrets: Vec<(&'static str, String)>,
}

impl World {
    /// Start the fakes the row needs and inject its fault.
    pub async fn new(row: &Row) -> World {
        // The defaults: org `acme`, app `my-app` (the hints the rows expect name them).
        let fly = FakeFlyApi::start().await.unwrap();
        let sts = if row.via.needs_sts() {
            let mut b = FakeSts::builder()
                .trust(fly.issuer(), fly.jwks())
                .audience(AWS_AUDIENCE);
            if let Inject::StsSubject(pattern) = &row.inject {
                b = b.subject(*pattern);
            }
            Some(b.start().await.unwrap())
        } else {
            None
        };
        let google = if row.via.needs_google() {
            let mut b = FakeGoogle::builder(&fly);
            if !matches!(row.inject, Inject::GoogleNoGrant) {
                b = b.service_account(SA);
            }
            if let Inject::GoogleIssuer(issuer) = &row.inject {
                b = b.issuer(*issuer);
            }
            Some(b.start().await.unwrap())
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("fault-matrix-")
            .tempdir()
            .unwrap();
        let mut world = World {
            socket: fly.socket_path().to_owned(),
            api_url: fly.url(),
            api_token: Some(fly.api_token().to_owned()),
            token_file: dir.path().join("oidc_token"),
            sts_url: None,
            google_sts_url: None,
            fly,
            sts,
            google,
            dir,
            nobody: false,
            extra_secrets: Vec::new(),
        };
        world.apply(row);
        world
    }

    /// The audience the row's consumer asks for.
    pub fn audience(&self, via: Via) -> Option<String> {
        match via {
            Via::Aws | Via::CliAws => Some(AWS_AUDIENCE.to_owned()),
            Via::Gcp | Via::CliGcpToken | Via::CliGcpExec | Via::CliGcpConfig => Some(format!(
                "https://iam.googleapis.com/{}",
                google::default_provider("acme")
            )),
            Via::Client | Via::CliToken => None,
        }
    }

    fn apply(&mut self, row: &Row) {
        if row.source == Source::File {
            self.write_token_file(row);
        }
        match &row.inject {
            Inject::Fly(n, fault) => self.fly.fail_next(*n, fault.clone()),
            Inject::NoSocket => self.socket = self.dir.path().join("missing/api.sock"),
            Inject::Refused => self.api_url = closed_port_url(),
            Inject::StsUnreachable => self.sts_url = Some(closed_port_url()),
            Inject::GoogleStsUnreachable => {
                self.google_sts_url = Some(format!("{}/v1/token", closed_port_url()))
            }
            Inject::NoApiToken => self.api_token = None,
            Inject::FlyEchoesBearer => {
                let body = json_error(&format!(
                    "unauthorized request: Authorization: Bearer {}",
                    self.fly.api_token()
                ));
                self.fly.fail_next(1, Fault::Status(401, body));
            }
            Inject::WrongApiToken => {
                let wrong = "fm2_wrong-token-0123456789abcdef0123456789abcdef";
                self.extra_secrets
                    .push(("the wrong Fly API token", wrong.to_owned()));
                self.api_token = Some(wrong.to_owned());
            }
            Inject::AsNobody(denial) => self.deny(*denial),
            Inject::Sts(n, fault) => self.sts.as_ref().unwrap().fail_next(*n, fault.clone()),
            Inject::GoogleSts(n, fault) => {
                self.google.as_ref().unwrap().fail_next(*n, fault.clone())
            }
            Inject::GoogleIam(n, fault) => self
                .google
                .as_ref()
                .unwrap()
                .fail_next_iam(*n, fault.clone()),
            Inject::FileMissing
            | Inject::FileGarbage
            | Inject::FileOversized
            | Inject::FileExpired
            | Inject::StsSubject(_)
            | Inject::GoogleIssuer(_)
            | Inject::GoogleNoGrant
            | Inject::Cli { .. } => {}
        }
    }

    fn write_token_file(&self, row: &Row) {
        let audience = self.audience(row.via);
        let content = match &row.inject {
            Inject::FileMissing => return,
            Inject::FileGarbage => "<html>not a token</html>\n".to_owned(),
            Inject::FileOversized => "a".repeat(100_000),
            Inject::FileExpired => {
                #[allow(clippy::disallowed_methods)] // the fake's clock is the system's
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                self.fly.mint_with(audience.as_deref(), |claims| {
                    claims.insert("iat".into(), (now - 660).into());
                    claims.insert("nbf".into(), (now - 660).into());
                    claims.insert("exp".into(), (now - 60).into());
                })
            }
            _ => self.fly.mint(audience.as_deref()),
        };
        std::fs::write(&self.token_file, content).unwrap();
    }

    fn deny(&mut self, denial: Denial) {
        self.nobody = true;
        // The fake's socket directory: root's, 0700.
        chmod(self.fly.socket_path().parent().unwrap(), 0o700);
        // Our directory: open to everyone, holding a symlink and the token file.
        chmod(self.dir.path(), 0o755);
        match denial {
            Denial::SocketDir => {}
            Denial::SocketConnect => {
                let link = self.dir.path().join("api.sock");
                std::os::unix::fs::symlink(self.fly.socket_path(), &link).unwrap();
                self.socket = link;
            }
            Denial::TokenFile => chmod(&self.token_file, 0o600),
        }
    }

    /// The requests `counter`'s fake received.
    pub fn count(&self, counter: Counter) -> usize {
        match counter {
            Counter::Fly => self.fly.request_count(),
            Counter::Sts => self.sts.as_ref().map_or(0, FakeSts::request_count),
            Counter::GoogleSts => self.google.as_ref().map_or(0, FakeGoogle::request_count),
            Counter::GoogleIam => self
                .google
                .as_ref()
                .map_or(0, FakeGoogle::iam_request_count),
        }
    }

    /// Every secret the fakes issued or were given, after the row ran.
    pub fn secrets(&self) -> Secrets {
        let mut s = Secrets::of_fly(&self.fly);
        for (what, value) in &self.extra_secrets {
            s.add(what, value.clone());
        }
        if let Some(sts) = &self.sts {
            s = s.sts(sts);
        }
        if let Some(google) = &self.google {
            s = s.google(google);
        }
        s
    }

    /// A token client for `source` with the row's timeouts and the shared fast retries.
    pub fn fly_client(&self, source: Source) -> Result<FlyOidcClient, BuildError> {
        let b = FlyOidcClient::builder().configure(&row_config());
        let b = match source {
            Source::Socket => b.socket(&self.socket),
            Source::Http => {
                let b = b.api_url(&self.api_url);
                match &self.api_token {
                    Some(t) => b.api_token(t.as_str()),
                    None => b,
                }
            }
            Source::File => b.token_file(&self.token_file),
            Source::Default => b.default_socket(&self.socket),
        };
        b.build()
    }

    /// The AWS provider: the shared `aws::provider` builder (role, endpoint, fast backoff)
    /// with the row's Fly client, STS endpoint and timeouts.
    pub fn aws_provider(&self, source: Source) -> Result<FlyOidcCredentialsProvider, BuildError> {
        let sts = self.sts.as_ref().unwrap();
        let endpoint = self.sts_url.clone().unwrap_or_else(|| sts.url());
        let fly = self.fly_client(source)?;
        let config = row_config().with_fly_client(fly);
        aws::provider(&self.fly, &endpoint)
            .configure(&config)
            .build()
    }

    /// The GCP provider impersonating [`SA`], with the row's Fly client, Google STS URL and
    /// timeouts.
    pub fn gcp_provider(&self, source: Source) -> Result<GcpTokenProvider, BuildError> {
        let google = self.google.as_ref().unwrap();
        let sts_url = self
            .google_sts_url
            .clone()
            .unwrap_or_else(|| google.sts_url());
        let b = GcpTokenProvider::builder()
            .configure(&row_config().with_fly_client(self.fly_client(source)?))
            .provider(google.provider())
            .service_account(SA)
            .sts_url(sts_url)
            .iam_url(google.iam_url());
        b.build()
    }
}

/// `http://127.0.0.1:<a port nothing listens on>`.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}
