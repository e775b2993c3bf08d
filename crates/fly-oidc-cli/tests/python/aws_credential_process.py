"""boto3 through `credential_process` profiles (run by `Sandbox::boto3_profiles`, crates/fly-oidc-cli/tests/cli/support.rs).

Usage: python3 aws_credential_process.py BUCKET PROFILE [PROFILE...]

Endpoints come from AWS_ENDPOINT_URL (moto_server) and the profiles from AWS_CONFIG_FILE.
Prints one JSON object: the caller ARN per profile, the credential method boto3 used, the
buckets listed after creating BUCKET with the first profile, and each profile's expiry.
"""

import json
import sys

import boto3


def main() -> None:
    bucket, profiles = sys.argv[1], sys.argv[2:]
    out = {"arns": {}, "methods": {}, "expiry_seconds": {}}
    for profile in profiles:
        session = boto3.Session(profile_name=profile)
        out["arns"][profile] = session.client("sts").get_caller_identity()["Arn"]
        creds = session.get_credentials()
        out["methods"][profile] = creds.method
        # RefreshableCredentials: seconds until expiry, as botocore sees it.
        out["expiry_seconds"][profile] = int(creds._seconds_remaining())
    s3 = boto3.Session(profile_name=profiles[0]).client("s3")
    s3.create_bucket(Bucket=bucket)
    out["buckets"] = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
