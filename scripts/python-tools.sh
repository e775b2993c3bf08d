# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/demo.sh: the Python tools the tests and the demo drive
# (moto_server, the AWS CLI, boto3, google-auth, gcp-storage-emulator), pinned, in a virtualenv
# at target/test-venv: never installed into your interpreter.
#   ensure_python_tools    create/update the venv (a no-op when up to date), put its bin first on PATH
PY_PACKAGES=(
  'moto[server]==5.2.1'
  'awscli==1.45.11'
  'boto3==1.43.11'
  'google-auth==2.63.0'
  'requests>=2.31'
  'gcp-storage-emulator==2026.7.19'
  'python-hcl2==8.1.4'
)
TEST_VENV="$(pwd)/target/test-venv"

_make_test_venv() {
  mkdir -p target
  if python3 -m venv "$TEST_VENV" >/dev/null 2>&1; then return 0; fi
  rm -rf "$TEST_VENV"
  # Debian without python3-venv: the virtualenv package, installed into a directory of its
  # own (pip --target), never into the interpreter's site-packages.
  echo "    python3 -m venv is unavailable (Debian: apt-get install python3-venv); using virtualenv from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check --target target/virtualenv-tool 'virtualenv>=20' \
    && PYTHONPATH=target/virtualenv-tool python3 -m virtualenv --quiet "$TEST_VENV"
}

ensure_python_tools() {
  local stamp="$TEST_VENV/.fly-oidc-packages"
  if [ -x "$TEST_VENV/bin/python3" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${PY_PACKAGES[*]}" ]; then
    echo "==> Python tools: up to date in target/test-venv"
  else
    echo "==> installing the Python tools into target/test-venv, not into your python3 (a minute or two, once)"
    if [ ! -x "$TEST_VENV/bin/python3" ] && ! _make_test_venv; then
      echo "error: cannot create a Python virtualenv: install python3-venv (or pip)" >&2
      return 1
    fi
    "$TEST_VENV/bin/python3" -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" || return 1
    printf '%s' "${PY_PACKAGES[*]}" >"$stamp"
  fi
  export VIRTUAL_ENV="$TEST_VENV"
  export PATH="$TEST_VENV/bin:$PATH"
  hash -r
}
