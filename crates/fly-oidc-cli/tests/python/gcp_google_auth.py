#!/usr/bin/env python3
"""Refresh Google credentials from a credential configuration with python google-auth.

Usage: gcp_google_auth.py [SCOPE...]

The configuration is found the way applications find it: google.auth.default() reads
GOOGLE_APPLICATION_CREDENTIALS. For an executable-sourced configuration, google-auth runs
`fly-oidc gcp executable` (GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 must be set),
exchanges its Fly token at the token_url and, if configured, impersonates the service
account. Prints one JSON line: {"ok": true, "token": ..., ...} or {"ok": false, "error": ...}.
"""
import json
import sys

import google.auth
import google.auth.transport.requests


def main() -> int:
    scopes = sys.argv[1:] or ["https://www.googleapis.com/auth/cloud-platform"]
    try:
        # Without scopes, default() does not look the project up at Cloud Resource
        # Manager (which is not faked); add them right after.
        credentials, _project = google.auth.default()
        credentials = credentials.with_scopes(scopes)
        credentials.refresh(google.auth.transport.requests.Request())
    except Exception as e:  # report every failure to the Rust test
        print(json.dumps({"ok": False, "type": type(e).__name__, "error": str(e)}))
        return 3
    print(
        json.dumps(
            {
                "ok": True,
                "type": f"{type(credentials).__module__}.{type(credentials).__name__}",
                "token": credentials.token,
                "expiry": credentials.expiry.isoformat() if credentials.expiry else None,
                "service_account_email": getattr(credentials, "service_account_email", None),
                "valid": credentials.valid,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
