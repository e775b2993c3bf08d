"""python google-auth under `fly-oidc exec`: google.auth.default() finds the metadata server.

Prints one JSON line: the credential class, the token, the account email and the project."""
import json

import google.auth
import google.auth.transport.requests

credentials, project = google.auth.default()
credentials.refresh(google.auth.transport.requests.Request())
# A second refresh reads the account info again (google-auth does it on every refresh).
credentials.refresh(google.auth.transport.requests.Request())
print(json.dumps({
    "class": type(credentials).__module__ + "." + type(credentials).__name__,
    "token": credentials.token,
    "email": credentials.service_account_email,
    "project": project,
}))
