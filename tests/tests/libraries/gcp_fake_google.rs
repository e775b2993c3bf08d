//! The fake Google STS + IAM Credentials checks requests the way Google does, so tests
//! against it mean something: raw HTTP requests that Google would reject are rejected with
//! Google's error shapes.

#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use fly_oidc_tests::gcp::{Fakes, SA};
use serde_json::Value;

const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// POST `body` to `url` (http://127.0.0.1:PORT/path); returns the status and JSON body.
fn post(url: &str, content_type: &str, auth: Option<&str>, body: &str) -> (u16, Value) {
    let content_type = format!("Content-Type: {content_type}");
    let auth = auth.map(|a| format!("Authorization: {a}"));
    let headers: Vec<&str> = [Some(content_type.as_str()), auth.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let answer = fly_oidc_tests::http_request("POST", url, &headers, body.as_bytes());
    let status = fly_oidc_tests::http_status(&answer).unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn the_sts_checks_parameters_signature_and_claims() {
    let Fakes { fly, google } = Fakes::start().await;
    let audience = google.sts_audience();
    let jwt = fly.mint(Some(&google.token_audience()));
    let good = [
        ("grant_type", GRANT),
        ("audience", audience.as_str()),
        ("requested_token_type", ACCESS),
        ("subject_token_type", JWT),
        ("scope", "https://www.googleapis.com/auth/cloud-platform"),
        ("subject_token", jwt.as_str()),
    ];
    let with = |name: &str, value: &str| -> String {
        form(
            &good
                .iter()
                .map(|&(k, v)| if k == name { (k, value) } else { (k, v) })
                .collect::<Vec<_>>(),
        )
    };
    let sts = google.sts_url();
    let expect = |body: String, status: u16, error: &str, text: &str| {
        let (got, json) = post(&sts, FORM, None, &body);
        assert_eq!(got, status, "{json}");
        assert_eq!(json["error"], error, "{json}");
        assert!(
            json["error_description"].as_str().unwrap().contains(text),
            "{json}"
        );
    };
    expect(
        with("grant_type", "client_credentials"),
        400,
        "unsupported_grant_type",
        "grant_type",
    );
    expect(
        with("requested_token_type", JWT),
        400,
        "invalid_request",
        "requested_token_type",
    );
    expect(
        with(
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:saml2",
        ),
        400,
        "invalid_request",
        "subject_token_type",
    );
    expect(
        with("audience", "my-provider"),
        400,
        "invalid_request",
        "full resource name of the Identity Provider",
    );
    let (head, payload_and_sig) = jwt.split_once('.').unwrap();
    let (_, sig) = payload_and_sig.split_once('.').unwrap();
    let forged_claims = fly.mint_with(Some("https://evil.example"), |_| {});
    let forged_payload = forged_claims.split('.').nth(1).unwrap();
    expect(
        with("subject_token", &format!("{head}.{forged_payload}.{sig}")),
        400,
        "invalid_grant",
        "signature",
    );
    let (status, json) = post(&sts, "text/plain", None, &form(&good));
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // The good request works, as JSON too.
    let (status, json) = post(&sts, FORM, None, &form(&good));
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["issued_token_type"], ACCESS);
    assert_eq!(json["expires_in"], 3599);
    let federated = json["access_token"].as_str().unwrap().to_owned();
    let as_json: serde_json::Map<String, Value> = good
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    let (status, _) = post(
        &sts,
        "application/json",
        None,
        &Value::Object(as_json).to_string(),
    );
    assert_eq!(status, 200);

    // IAM: bearer, scope, lifetime, permission.
    let iam = google.impersonation_url(SA);
    let bearer = format!("Bearer {federated}");
    let body = r#"{"scope":["https://www.googleapis.com/auth/cloud-platform"],"lifetime":"3600s","delegates":null}"#;
    let (status, json) = post(&iam, "application/json", Some("Bearer nope"), body);
    assert_eq!(status, 401);
    assert_eq!(json["error"]["status"], "UNAUTHENTICATED");
    let (status, json) = post(&iam, "application/json", Some(&bearer), r#"{"scope":[]}"#);
    assert_eq!(
        (status, json["error"]["status"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    let (status, json) = post(
        &iam,
        "application/json",
        Some(&bearer),
        r#"{"scope":["x"],"lifetime":"7200s"}"#,
    );
    assert_eq!(
        (status, json["error"]["status"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    let other = google.impersonation_url("other@p.iam.gserviceaccount.com");
    let (status, json) = post(&other, "application/json", Some(&bearer), body);
    assert_eq!(status, 403);
    assert_eq!(json["error"]["code"], 403);
    assert_eq!(json["error"]["status"], "PERMISSION_DENIED");
    let (status, json) = post(&iam, "application/json", Some(&bearer), body);
    assert_eq!(status, 200, "{json}");
    let sa_token = json["accessToken"].as_str().unwrap();
    assert!(fly_oidc::time::parse_rfc3339(json["expireTime"].as_str().unwrap()).is_some());
    // An impersonated token cannot impersonate again.
    let (status, _) = post(
        &iam,
        "application/json",
        Some(&format!("Bearer {sa_token}")),
        body,
    );
    assert_eq!(status, 401);

    // Introspection.
    let (status, json) = post(
        &google.introspect_url(),
        FORM,
        None,
        &form(&[("token", &federated)]),
    );
    assert_eq!(status, 200);
    assert_eq!(json["active"], true);
    assert_eq!(
        json["username"],
        "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/fly-pool/subject/acme:my-app:quiet-sun-4242"
    );
    let (_, json) = post(
        &google.introspect_url(),
        FORM,
        None,
        &form(&[("token", "x")]),
    );
    assert_eq!(json["active"], false);
    let (status, json) = post(&format!("{}/v1/nope", google.url()), FORM, None, "");
    assert_eq!(
        (status, json["error"]["status"].as_str()),
        (404, Some("NOT_FOUND"))
    );
}
