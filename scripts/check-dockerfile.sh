#!/usr/bin/env bash
# Check examples/fly/Dockerfile without Docker (no engine, no registry here): run its build and
# install steps on this machine, with the image's filesystem mapped into a temporary prefix, and
# check what the image would hold:
#   - the builder's rust version is the workspace's rust-version; both stages use one Debian release;
#   - every RUN of the builder stage (cargo build --release --locked ..., install ...) and every
#     COPY, as written in the Dockerfile (absolute paths moved under the prefix);
#   - the runtime's RUN lines, except apt-get (it needs root and a Debian image: instead, this
#     checks that the CA bundle rustls loads exists on this machine);
#   - the installed binary runs (`fly-oidc --version`), needs no newer glibc than the runtime
#     image's Debian release has, and every credential_process line of the copied AWS config
#     parses (fly-oidc accepts its flags: it fails for want of a Fly token, exit 1, not with a
#     usage error, exit 2);
#   - the entrypoint writes a Google credential configuration from FLY_OIDC_GCP_PROVIDER and
#     runs CMD.
# The release build reuses target/ (a few minutes the first time). The prefix is removed on exit.
# Usage: scripts/check-dockerfile.sh [DOCKERFILE]
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKERFILE="${1:-examples/fly/Dockerfile}"
PREFIX=$(mktemp -d "${TMPDIR:-/tmp}/fly-oidc-dockerfile.XXXXXX")
trap 'rm -rf "$PREFIX"' EXIT

python3 - "$DOCKERFILE" "$PREFIX" <<'PY'
import json, os, re, shlex, shutil, subprocess, sys, tomllib

dockerfile, prefix = sys.argv[1], sys.argv[2]
repo = os.getcwd()
failures = []

def say(msg):
    print(f"check-dockerfile: {msg}", flush=True)

def fail(msg):
    failures.append(msg)
    say(f"FAIL: {msg}")

# --- parse: continuation lines joined, comments dropped -------------------------------
lines, buf = [], ""
for raw in open(dockerfile, encoding="utf-8"):
    line = raw.rstrip("\n")
    if not buf and line.lstrip().startswith("#"):
        continue
    if line.rstrip().endswith("\\"):
        buf += line.rstrip()[:-1] + " "
        continue
    buf += line
    if buf.strip():
        lines.append(buf.strip())
    buf = ""

args, stages, stage = {}, [], None
for line in lines:
    word, _, rest = line.partition(" ")
    word = word.upper()
    expand = lambda s: re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), s)
    if word == "ARG":
        name, _, default = rest.partition("=")
        if stage is None or name not in args:
            args[name.strip()] = default.strip()
    elif word == "FROM":
        parts = expand(rest).split()
        stage = {"image": parts[0], "name": parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else str(len(stages)),
                 "steps": [], "workdir": "/", "env": {}}
        stages.append(stage)
    elif stage is not None:
        stage["steps"].append((word, expand(rest)))

workspace = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]
builder, runtime = stages[0], stages[-1]
say(f"{dockerfile}: {len(stages)} stages: " + ", ".join(f"{s['name']} ({s['image']})" for s in stages))

# --- images --------------------------------------------------------------------------
m = re.fullmatch(r"rust:([\d.]+)-slim-(\w+)", builder["image"])
if not m:
    fail(f"the builder image {builder['image']} is not rust:<version>-slim-<debian release>")
else:
    rust_version, builder_release = m.groups()
    if rust_version != workspace["rust-version"]:
        fail(f"the builder's Rust {rust_version} is not the workspace's rust-version {workspace['rust-version']}")
    else:
        say(f"ok: builder Rust {rust_version} = the workspace's rust-version")
    m2 = re.fullmatch(r"debian:(\w+)-slim", runtime["image"])
    if not m2 or m2.group(1) != builder_release:
        fail(f"the runtime image {runtime['image']} is not debian:{builder_release}-slim (the builder's glibc)")
    else:
        say(f"ok: runtime {runtime['image']} shares the builder's Debian release")
local = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
say(f"note: this machine builds with {local} (the image with rust:{args.get('RUST_VERSION')}; "
    "cargo refuses a toolchain older than rust-version)")

# --- each stage's filesystem under the prefix -----------------------------------------
def root(st):
    return os.path.join(prefix, st["name"])

def host_path(st, path):
    """Where an absolute path of a stage's filesystem lives here (WORKDIR /src is the repo)."""
    if st["workdir"] != "/" and (path == st["workdir"] or path.startswith(st["workdir"].rstrip("/") + "/")):
        return os.path.join(repo, os.path.relpath(path, st["workdir"]))
    return os.path.join(root(st), path.lstrip("/"))

ABS = re.compile(r"(?<![\w./-])(/(?:out|usr/local|etc|src|app)(?:/[\w.@+-]*)*)")

def rewrite(st, text, quote=True):
    return ABS.sub(lambda m: (shlex.quote if quote else str)(host_path(st, m.group(1))), text)

def run_stage(st):
    say(f"stage {st['name']}:")
    env = dict(os.environ)
    env["PATH"] = os.path.join(root(st), "usr/local/bin") + os.pathsep + env["PATH"]
    for word, rest in st["steps"]:
        if word == "WORKDIR":
            st["workdir"] = rest
            if rest != "/src":
                fail(f"WORKDIR {rest}: this check maps only /src (the repository)")
        elif word == "COPY":
            parts = rest.split()
            source_stage = None
            if parts[0].startswith("--from="):
                source_stage = next(s for s in stages if s["name"] == parts[0][7:])
                parts = parts[1:]
            src, dst = parts[0], parts[1]
            if source_stage is None and src == "." and dst in (".", "./"):
                say("  COPY . .: the build context is this repository (nothing to copy)")
                continue
            origin = host_path(source_stage, src) if source_stage else os.path.join(repo, src)
            target = host_path(st, dst if not dst.endswith("/") else dst + os.path.basename(src))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(origin, target)
            say(f"  COPY {rest} -> {os.path.relpath(target, prefix)}")
        elif word == "ENV":
            name, _, value = rest.partition("=")
            st["env"][name] = value
            env[name] = rewrite(st, value, quote=False)
            say(f"  ENV {rest}")
        elif word == "RUN":
            if "apt-get" in rest:
                bundle = "/etc/ssl/certs/ca-certificates.crt"
                if "ca-certificates" not in rest:
                    fail("the runtime does not install ca-certificates")
                elif os.path.exists(bundle):
                    say(f"  RUN apt-get ... ca-certificates: skipped (needs root and Debian); {bundle} exists here")
                else:
                    fail(f"{bundle} is missing on this machine")
                continue
            command = rewrite(st, rest)
            say(f"  RUN {rest}")
            done = subprocess.run(["/bin/sh", "-ec", command], cwd=repo if st["workdir"] == "/src" else root(st), env=env)
            if done.returncode != 0:
                fail(f"RUN {rest} exited {done.returncode}")
        elif word in ("ENTRYPOINT", "CMD"):
            st[word.lower()] = json.loads(rest)
        elif word not in ("LABEL", "EXPOSE", "USER"):
            fail(f"{word}: this check does not know that instruction")
    return env

before = len(failures)
run_stage(builder)
if len(failures) == before:  # the build worked: check what the image would hold
    env = run_stage(runtime)
    binary = host_path(runtime, "/usr/local/bin/fly-oidc")
    # --- the installed binary -----------------------------------------------------------
    version = subprocess.run([binary, "--version"], capture_output=True, text=True)
    if version.returncode != 0 or workspace["version"] not in version.stdout:
        fail(f"fly-oidc --version: {version.stdout}{version.stderr}")
    else:
        say(f"ok: {version.stdout.strip()}")
    glibc = {"bookworm": "2.36", "trixie": "2.41", "bullseye": "2.31"}
    release = runtime["image"].split(":")[1].removesuffix("-slim")
    symbols = subprocess.run(["objdump", "-T", binary], capture_output=True, text=True).stdout
    needed = sorted({tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_([\d.]+)", symbols)})
    if needed:
        need = ".".join(map(str, needed[-1]))
        have = glibc.get(release)
        if have and needed[-1] > tuple(map(int, have.split("."))):
            fail(f"the binary needs glibc {need}; debian {release} has {have}")
        else:
            say(f"ok: the binary needs glibc {need} (debian {release} has {have})")
    # --- credential_process lines of the AWS config the image holds --------------------------
    config = env.get("AWS_CONFIG_FILE")
    if not config or not os.path.exists(config):
        fail(f"AWS_CONFIG_FILE {config} is not in the image")
    else:
        lines = [l.split("=", 1)[1].strip() for l in open(config) if l.startswith("credential_process")]
        bad = 0
        for line in lines:
            argv = shlex.split(line)
            argv[0] = host_path(runtime, argv[0])
            out = subprocess.run(argv + ["--no-cache"], capture_output=True, text=True,
                                 env={"PATH": env["PATH"], "HOME": prefix,
                                      "FLY_OIDC_SOCKET": os.path.join(prefix, "no-fly-api.sock")})
            if out.returncode != 1 or "socket" not in out.stderr:
                fail(f"credential_process = {line}: exit {out.returncode}: {out.stderr.strip()}")
                bad += 1
        if lines and not bad:
            say(f"ok: {len(lines)} credential_process lines in {os.path.relpath(config, prefix)} parse "
                "(each failed only for want of a Fly token)")
        elif not lines:
            fail(f"no credential_process line in {config}")
    # --- the entrypoint -------------------------------------------------------------------
    entry = runtime.get("entrypoint")
    if entry:
        script = host_path(runtime, entry[0])
        gcp_config = os.path.join(prefix, "gcp-credentials.json")
        out = subprocess.run([script, "/bin/sh", "-c", 'printf "%s %s" "$GOOGLE_APPLICATION_CREDENTIALS" "$GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES"'],
                             capture_output=True, text=True,
                             env={"PATH": env["PATH"], "HOME": prefix, "GOOGLE_APPLICATION_CREDENTIALS": gcp_config,
                                  "FLY_OIDC_GCP_PROVIDER": "projects/123456789012/locations/global/workloadIdentityPools/fly-pool/providers/acme"})
        try:
            written = json.load(open(gcp_config))
            command = written["credential_source"]["executable"]["command"]
        except (OSError, ValueError, KeyError) as e:
            written, command = None, None
            fail(f"the entrypoint wrote no credential configuration ({e}): {out.stderr.strip()}")
        if written is not None:
            if out.returncode != 0 or out.stdout != f"{gcp_config} 1":
                fail(f"the entrypoint did not run CMD with the Google variables: {out.stdout!r} {out.stderr.strip()}")
            elif not command.startswith(os.path.realpath(binary)) or not command.endswith("gcp executable"):
                fail(f"the configuration runs {command!r}")
            else:
                say("ok: the entrypoint wrote the credential configuration and ran CMD with GOOGLE_APPLICATION_CREDENTIALS")

if failures:
    say(f"{len(failures)} check(s) failed")
    sys.exit(1)
say("all checks passed (by hand: `docker build -f examples/fly/Dockerfile .` where a Docker engine runs)")
PY
