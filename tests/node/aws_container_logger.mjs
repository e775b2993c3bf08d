// The AWS SDK for JavaScript v3's default credential chain, given a logger, as an app under
// `fly-oidc exec` runs it: its container provider reads AWS_CONTAINER_CREDENTIALS_FULL_URI and
// the authorization token (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, and the plain
// AWS_CONTAINER_AUTHORIZATION_TOKEN when it is set).
//
// Usage: node aws_container_logger.mjs
//
// Two versions of @aws-sdk/credential-providers: 3.879.0 (the npm alias
// `credential-providers-3879`), whose chain throws "Cannot read properties of undefined
// (reading 'lines')" when both token variables are set and the logger's methods use `this`,
// and the current one, which warns through the logger on every load when both are set. Each
// chain resolves credentials twice. Prints one JSON line:
// {"ok": bool, "results": [{"version", "ok", "accessKeyId", "warnings": [...], "error"}]}
// and exits 3 when any version failed or warned.
import { createRequire } from "node:module";
import * as current from "@aws-sdk/credential-providers";
import * as old from "credential-providers-3879";

const require = createRequire(import.meta.url);
const versionOf = (name) => require(`${name}/package.json`).version;

// A logger whose methods use `this`, as a class-based logger (pino's, winston's) does.
class Logger {
  constructor() {
    this.lines = [];
  }
  trace() {}
  debug() {}
  info() {}
  warn(...args) {
    this.lines.push(args.map(String).join(" "));
  }
  error(...args) {
    this.lines.push(args.map(String).join(" "));
  }
}

const results = [];
for (const [name, module] of [
  ["credential-providers-3879", old],
  ["@aws-sdk/credential-providers", current],
]) {
  const logger = new Logger();
  const result = { version: versionOf(name), ok: false, warnings: logger.lines };
  try {
    for (let i = 0; i < 2; i++) {
      const credentials = await module.fromNodeProviderChain({ logger })();
      result.accessKeyId = credentials.accessKeyId;
    }
    result.ok = logger.lines.length === 0;
  } catch (e) {
    result.error = String(e?.message ?? e);
  }
  results.push(result);
}
const ok = results.every((r) => r.ok);
console.log(JSON.stringify({ ok, results }));
process.exit(ok ? 0 : 3);
