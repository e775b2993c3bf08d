#!/usr/bin/env bash
# Check examples/fly/Dockerfile without Docker (no engine, no registry here): run its build and
# install steps on this machine, with the image's filesystem mapped into a temporary prefix, and
# check what would be uploaded and what the image would hold:
#   - the build context: the ignore file each builder reads (BuildKit: <Dockerfile>.dockerignore,
#     else <context>/.dockerignore; flyctl's own upload, used without BuildKit, and its size
#     warning: fly.toml's [build] ignorefile, else <context>/.dockerignore) leaves out target/,
#     .git and node_modules, measured on this checkout's files;
#   - the builder's rust version is the workspace's rust-version; both stages use one Debian release;
#   - every RUN of the builder stage and every COPY, as written in the Dockerfile (absolute paths
#     moved under the prefix), from a copy of the build context (what BuildKit would upload);
#     RUN --mount=type=cache is mounted for that RUN only, as BuildKit does (a cache is not in
#     the layer: a later step that reads it fails here as in Docker). The cache at
#     <WORKDIR>/target is this repository's target/, so the release build is shared with a
#     developer's; the RUN that runs `cargo build` must mount caches for target/ and the registry;
#   - the runtime's RUN lines, except apt-get (it needs root and a Debian image: instead, this
#     checks that the CA bundle rustls loads exists on this machine);
#   - the installed binary runs (`fly-oidc --version`), needs no newer glibc than the runtime
#     image's Debian release has, and every credential_process line of the copied AWS config
#     parses: off a Fly Machine (no socket where /.fly/api is moved by FLY_OIDC_DEFAULT_SOCKET)
#     it fails with "not on a Fly Machine", exit 1, not with a usage error or invalid setting, exit 2;
#   - the entrypoint writes a Google credential configuration from FLY_OIDC_GCP_PROVIDER and
#     runs CMD.
# The release build reuses target/ (minutes the first time). The prefix is removed on exit.
# Usage: scripts/check-dockerfile.sh [DOCKERFILE]
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKERFILE="${1:-examples/fly/Dockerfile}"
PREFIX=$(mktemp -d "${TMPDIR:-/tmp}/fly-oidc-dockerfile.XXXXXX")
trap 'rm -rf "$PREFIX"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 - "$DOCKERFILE" "$PREFIX" <<'PY'
import glob, json, os, posixpath, re, shlex, shutil, subprocess, sys, tomllib

dockerfile, prefix = sys.argv[1], sys.argv[2]
repo = os.getcwd()
failures = []

def say(msg):
    print(f"check-dockerfile: {msg}", flush=True)

def fail(msg):
    failures.append(msg)
    say(f"FAIL: {msg}")

# --- parse: continuation lines joined, comment lines dropped (also inside a continuation) ----
lines, buf = [], ""
for raw in open(dockerfile, encoding="utf-8"):
    line = raw.rstrip("\n")
    if line.lstrip().startswith("#"):
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
                 "steps": [], "workdir": "/", "env": {}, "caches": [], "context_at": []}
        stages.append(stage)
    elif stage is not None:
        stage["steps"].append((word, expand(rest)))

workspace = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]
builder, runtime = stages[0], stages[-1]
say(f"{dockerfile}: {len(stages)} stages: " + ", ".join(f"{s['name']} ({s['image']})" for s in stages))

# --- the build context: which ignore file each builder reads, and what it leaves ------------
# .dockerignore semantics (moby/patternmatcher, which BuildKit and flyctl use): one pattern a
# line, '#' lines are comments, '!' re-includes; '*' and '?' stop at '/', '**' crosses it; a
# pattern matches a path or any of its parents; the last pattern that matches wins.
def glob_regex(pattern):
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out += ".*" if i >= len(pattern) else "(.*/)?"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif c in "[]":
            out += c
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out)

def read_ignore(path):
    rules = []
    for raw in open(path, encoding="utf-8"):
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        negated = pattern.startswith("!")
        pattern = posixpath.normpath(pattern[1:].strip() if negated else pattern).lstrip("/") if pattern else ""
        if pattern and pattern != ".":
            literal = re.split(r"[*?\[\\]", pattern, maxsplit=1)[0]
            rules.append((negated, glob_regex(pattern), literal))
    return rules

def last_rule(rules, rel):
    """Index of the last pattern that matches rel or one of its parents, and whether it excludes."""
    parts = rel.split("/")
    paths = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    hit = None
    for i, (negated, regex, _) in enumerate(rules):
        if any(regex.fullmatch(p) for p in paths):
            hit = (i, not negated)
    return hit

def excluded(rules, rel):
    hit = last_rule(rules, rel)
    return bool(hit and hit[1])

def context_files(rules):
    """The files (relative paths) this checkout would upload, walking as the builders do: an
    excluded directory is skipped unless a later '!' pattern could re-include part of it."""
    kept = []
    for top, dirs, files in os.walk(repo):
        reltop = os.path.relpath(top, repo)
        reltop = "" if reltop == "." else reltop + "/"
        for d in list(dirs):
            rel = reltop + d
            hit = last_rule(rules, rel)
            if hit and hit[1]:
                reopen = [lit for negated, _, lit in rules[hit[0] + 1:] if negated]
                if not any(lit.startswith(rel + "/") or (rel + "/").startswith(lit) for lit in reopen):
                    dirs.remove(d)
            if os.path.islink(os.path.join(top, d)) and d in dirs:
                dirs.remove(d)
                files.append(d)
        kept += [reltop + f for f in files if not excluded(rules, reltop + f)]
    return kept

# What must never be uploaded: build output, the test tools, git's history.
HEAVY = re.compile(r"(^|/)(target|node_modules)(/|$)|^\.git(/|$)")
PROBES = ["target/release/fly-oidc", "target/test-venv/bin/python3", "target/debug/deps/x.rlib", ".git/HEAD",
          "tests/node/node_modules/google-auth-library/package.json", "fuzz/target/x", "crates/fly-oidc/target/x"]

def check_context(ignore, who, extra=()):
    """The context `who` would upload with ignore file `ignore` (None: no ignore file)."""
    rules = read_ignore(ignore) if ignore else []
    rules += [(False, glob_regex(p), p) for p in extra]
    files = context_files(rules)
    heavy = sorted({f[:HEAVY.search(f).end()].strip("/") for f in files if HEAVY.search(f)})
    probes = [p for p in PROBES if not excluded(rules, p) and not any(p.startswith(h + "/") for h in heavy)]
    size = sum(os.lstat(os.path.join(repo, f)).st_size for f in files)
    name = os.path.relpath(ignore, repo) if ignore else "no ignore file"
    if heavy or probes:
        fix = "add them to it" if ignore else "add a .dockerignore at the context's root that leaves them out"
        fail(f"{who}: {name} leaves in the build context {', '.join(heavy + probes)} "
             f"({len(files)} files, {size / 1e6:.1f} MB here): {fix}")
    else:
        say(f"ok: {who}: {name} leaves {len(files)} files, {size / 1e6:.1f} MB (no target/, .git, node_modules)")
    return rules

context_root = repo  # `fly deploy .` and `docker build -f examples/fly/Dockerfile .` from the root
dockerfile_ignore = dockerfile + ".dockerignore"
buildkit_ignore = dockerfile_ignore if os.path.exists(dockerfile_ignore) else (
    os.path.join(context_root, ".dockerignore") if os.path.exists(os.path.join(context_root, ".dockerignore")) else None)
context_rules = check_context(buildkit_ignore, "BuildKit (Depot, Fly's remote builder, docker build)")
# flyctl without BuildKit (its own tar of the context) and its context-size warning: the
# [build] ignorefile of the fly.toml, relative to it, else <context>/.dockerignore, else none
# (flyctl then leaves out only fly.toml).
flyctl_ignores = {}
for config in sorted(glob.glob(os.path.join(os.path.dirname(dockerfile), "fly*.toml"))):
    named = tomllib.load(open(config, "rb")).get("build", {}).get("ignorefile")
    if named:
        ignore = os.path.join(os.path.dirname(config), named)
    else:
        ignore = os.path.join(context_root, ".dockerignore")
    flyctl_ignores.setdefault(ignore if os.path.exists(ignore) else None, []).append(os.path.basename(config))
for ignore, configs in flyctl_ignores.items():
    check_context(ignore, f"flyctl's own upload ({', '.join(configs)})", () if ignore else ("fly.toml",))
if failures:  # not copied nor built: fix the ignore file first
    say(f"{len(failures)} check(s) failed")
    sys.exit(1)

# BuildKit's context, copied: COPY reads from it, so a file the ignore file leaves out is missing.
context_copy = os.path.join(prefix, "context")
for rel in context_files(context_rules):
    target = os.path.join(context_copy, rel)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy2(os.path.join(repo, rel), target, follow_symlinks=False)  # mtimes kept: cargo's fingerprints hold

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
    """Where an absolute path of a stage's filesystem lives here."""
    return os.path.join(root(st), path.lstrip("/"))

def in_image(st, path):
    """An absolute path of the stage's filesystem, from one relative to its WORKDIR."""
    return posixpath.normpath(posixpath.join(st["workdir"], path))

ABS = re.compile(r"(?<![\w./-])(/(?:out|usr/local|etc|src|app)(?:/[\w.@+-]*)*)")

def rewrite(st, text, quote=True):
    return ABS.sub(lambda m: (shlex.quote if quote else str)(host_path(st, m.group(1))), text)

# The rust image's CARGO_HOME: the crates cargo downloads go to its registry/.
CARGO_REGISTRY = "/usr/local/cargo/registry"

def cache_hint(st, text):
    """Why a step failed, when it reads a path an earlier RUN had as a cache mount."""
    for cache in st["caches"]:
        rel = posixpath.relpath(cache, st["workdir"])
        if cache in text or re.search(r"(?<![\w./-])" + re.escape(rel) + r"(/|\s|$)", text):
            return (f" ({cache} is a cache mount of an earlier RUN, not in the image's layer: "
                    "install or copy out of it in the RUN that builds)")
    return ""

def parse_mounts(st, rest):
    """RUN's leading --flags: the cache mounts' targets (absolute), and the command."""
    mounts = []
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        name, _, value = flag[2:].partition("=")
        if name != "mount":
            fail(f"RUN --{name}: this check does not know that flag")
            continue
        opts = dict(kv.partition("=")[::2] for kv in value.split(","))
        target = opts.get("target") or opts.get("dst") or opts.get("destination")
        if opts.get("type", "bind") != "cache" or not target:
            fail(f"RUN --mount={value}: this check simulates only type=cache mounts with a target")
            continue
        mounts.append((in_image(st, target), opts.get("id", target)))
    return mounts, rest

def cache_dir(st, target, cache_id):
    """The host directory that plays a cache mount: for <where the context was copied>/<dir>,
    the repository's own <dir> (target/: the release build is shared with this checkout's);
    else a directory of the prefix."""
    for at in st["context_at"]:
        if target.startswith(at.rstrip("/") + "/"):
            shared = os.path.join(repo, posixpath.relpath(target, at))
            os.makedirs(shared, exist_ok=True)
            return shared
    own = os.path.join(prefix, "caches", re.sub(r"[^\w.-]", "_", cache_id))
    os.makedirs(own, exist_ok=True)
    return own

def run_stage(st):
    say(f"stage {st['name']}:")
    env = {k: v for k, v in os.environ.items() if k not in ("CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR")}
    env["PATH"] = os.path.join(root(st), "usr/local/bin") + os.pathsep + env["PATH"]
    for word, rest in st["steps"]:
        if word == "WORKDIR":
            st["workdir"] = in_image(st, rest)
            os.makedirs(host_path(st, st["workdir"]), exist_ok=True)
        elif word == "COPY":
            parts = rest.split()
            source_stage = None
            if parts[0].startswith("--from="):
                source_stage = next(s for s in stages if s["name"] == parts[0][7:])
                parts = parts[1:]
            src, dst = parts[0], parts[1]
            dst_abs = in_image(st, dst) + ("/" if dst.endswith("/") else "")
            if source_stage:
                origin = host_path(source_stage, in_image(source_stage, src))
            else:
                origin = os.path.normpath(os.path.join(context_copy, src))
            if dst_abs.endswith("/") and not (src == "." or os.path.isdir(origin)):
                dst_abs += os.path.basename(src)
            target = host_path(st, dst_abs)
            if not os.path.lexists(origin):
                why = (cache_hint(source_stage, src) if source_stage else
                       " (not in the build context: does the ignore file leave it out?)")
                fail(f"COPY {rest}: {src} does not exist{why}")
                continue
            if os.path.isdir(origin):
                shutil.copytree(origin, target, symlinks=True, dirs_exist_ok=True)
                if not source_stage and src == ".":
                    st["context_at"].append(dst_abs.rstrip("/") or "/")
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(origin, target)
            say(f"  COPY {rest} -> {os.path.relpath(target, prefix)}")
        elif word == "ENV":
            name, _, value = rest.partition("=")
            st["env"][name] = value
            env[name] = rewrite(st, value, quote=False)
            say(f"  ENV {rest}")
        elif word == "RUN":
            mounts, command = parse_mounts(st, rest)
            if "apt-get" in command:
                bundle = "/etc/ssl/certs/ca-certificates.crt"
                if "ca-certificates" not in command:
                    fail("the runtime does not install ca-certificates")
                elif os.path.exists(bundle):
                    say(f"  RUN apt-get ... ca-certificates: skipped (needs root and Debian); {bundle} exists here")
                else:
                    fail(f"{bundle} is missing on this machine")
                continue
            if re.search(r"\bcargo (build|install)\b", command):
                cached = {t for t, _ in mounts}
                wanted = [CARGO_REGISTRY] + ([in_image(st, "target")] if re.search(r"\bcargo build\b", command) else [])
                missing = [w for w in wanted if w not in cached]
                if missing:  # not run: it would compile every dependency again here too
                    fail(f"RUN {' '.join(command.split())}: no cache mount for {', '.join(missing)}: "
                         "a redeploy would download or compile every dependency again")
                    continue
                else:
                    say(f"  ok: the cargo RUN mounts caches for {', '.join(wanted)}")
            # Mount each cache for this RUN only (BuildKit hides what the layer has there).
            mounted = []
            for target, cache_id in mounts:
                point = host_path(st, target)
                hidden = point + ".layer" if os.path.lexists(point) else None
                if hidden:
                    os.rename(point, hidden)
                os.makedirs(os.path.dirname(point), exist_ok=True)
                os.symlink(cache_dir(st, target, cache_id), point)
                mounted.append((point, hidden))
                where = os.readlink(point)
                say(f"  RUN --mount=type=cache,target={target}: " + (
                    f"this repository's {os.path.relpath(where, repo)}/" if not os.path.relpath(where, repo).startswith("..")
                    else "an empty directory of the prefix"))
            say(f"  RUN {' '.join(command.split())}")
            try:
                done = subprocess.run(["/bin/sh", "-ec", rewrite(st, command)], cwd=host_path(st, st["workdir"]), env=env)
            finally:
                for point, hidden in mounted:
                    os.unlink(point)
                    if hidden:
                        os.rename(hidden, point)
            if done.returncode != 0:
                fail(f"RUN {' '.join(command.split())} exited {done.returncode}{cache_hint(st, command)}")
            st["caches"] += [t for t, _ in mounts]
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
    if not shutil.which("objdump"):
        fail("objdump (Debian: binutils) is needed to read the glibc version the binary needs")
    symbols = subprocess.run(["objdump", "-T", binary], capture_output=True, text=True).stdout if shutil.which("objdump") else ""
    needed = sorted({tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_([\d.]+)", symbols)})
    if needed:
        need = ".".join(map(str, needed[-1]))
        have = glibc.get(release)
        if have and needed[-1] > tuple(map(int, have.split("."))):
            fail(f"the binary needs glibc {need}; debian {release} has {have}")
        else:
            say(f"ok: the binary needs glibc {need} (debian {release} has {have})")
    # --- credential_process lines of the AWS config the image holds --------------------------
    # Off a Fly Machine: FLY_OIDC_DEFAULT_SOCKET (the binary's test hook) moves the default
    # /.fly/api to a path that does not exist, as on a machine that is not a Fly Machine. An
    # explicit FLY_OIDC_SOCKET would be an invalid setting (exit 2), which is not the point.
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
                                      "FLY_OIDC_DEFAULT_SOCKET": os.path.join(prefix, "no-fly-api")})
            if out.returncode != 1 or "not on a Fly Machine" not in out.stderr:
                fail(f"credential_process = {line}: exit {out.returncode}, not 1 with \"not on a Fly Machine\": "
                     f"{out.stderr.strip()}")
                bad += 1
        if lines and not bad:
            say(f"ok: {len(lines)} credential_process lines in {os.path.relpath(config, prefix)} parse "
                "(each failed only with \"not on a Fly Machine\", exit 1)")
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
