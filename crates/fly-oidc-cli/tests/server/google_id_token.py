"""python google-auth under `fly-oidc exec` with a service account: ID tokens from the
metadata server's `identity?audience=` endpoint, two ways.

Usage: python3 google_id_token.py AUDIENCE

- `google.oauth2.id_token.fetch_id_token(request, AUDIENCE)`: no credential file, so it
  pings the metadata server (GCE_METADATA_IP) and asks it;
- `google.auth.compute_engine.IDTokenCredentials(..., use_metadata_identity_endpoint=True)`,
  refreshed twice.

Prints one JSON line: {"fetched", "credentials", "second"} (the three ID tokens)."""
import json
import sys

import google.auth.compute_engine
import google.auth.transport.requests
import google.oauth2.id_token

audience = sys.argv[1]
request = google.auth.transport.requests.Request()
fetched = google.oauth2.id_token.fetch_id_token(request, audience)
credentials = google.auth.compute_engine.IDTokenCredentials(
    request, audience, use_metadata_identity_endpoint=True
)
credentials.refresh(request)
first = credentials.token
credentials.refresh(request)
print(json.dumps({"fetched": fetched, "credentials": first, "second": credentials.token}))
