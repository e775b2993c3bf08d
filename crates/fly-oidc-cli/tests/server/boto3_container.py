"""boto3's default chain under `fly-oidc exec`: the container provider, then STS.

Prints one JSON line: the provider boto3 chose and the caller ARN."""
import json

import boto3

session = boto3.Session()
credentials = session.get_credentials()
arn = session.client("sts").get_caller_identity()["Arn"]
print(json.dumps({"method": credentials.method, "arn": arn}))
