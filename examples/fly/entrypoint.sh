#!/bin/sh
# Start-up for a Fly app that uses Google Cloud through fly-oidc, then run the app (CMD).
#
# The workload identity pool provider is a deploy-time setting, not known when the image is
# built: set it as a Fly secret (or in fly.toml's [env]):
#   fly secrets set FLY_OIDC_GCP_PROVIDER=projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<id>
#   fly secrets set FLY_OIDC_GCP_SERVICE_ACCOUNT=<name>@<project>.iam.gserviceaccount.com   # optional
# With it set, this writes the executable-sourced credential configuration (to
# GOOGLE_APPLICATION_CREDENTIALS if set, else /etc/fly-oidc/gcp-credentials.json) and
# exports what Google's libraries and gcloud need to use it. Without it, nothing changes.
set -eu

if [ -n "${FLY_OIDC_GCP_PROVIDER:-}" ]; then
  config="${GOOGLE_APPLICATION_CREDENTIALS:-/etc/fly-oidc/gcp-credentials.json}"
  mkdir -p "$(dirname "$config")"
  # Reads FLY_OIDC_GCP_PROVIDER and FLY_OIDC_GCP_SERVICE_ACCOUNT; an invalid value stops
  # the Machine here with the reason in `fly logs`. Nothing is fetched: no token is needed yet.
  fly-oidc gcp credential-config --output "$config"
  export GOOGLE_APPLICATION_CREDENTIALS="$config"
  export GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1
fi

exec "$@"
