// Shared set-up for the SDK interop tests: environment, a credential that hands out the Cloister
// token, client options, a recorder of the HTTP requests the SDK really sends, and assertion
// helpers. See ../sdk_interop.sh for how the server is started.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import https from "node:https";

function requireEnv(name, what) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: it must hold ${what} (tests/integration/sdk_interop.sh sets it)`);
  }
  return v;
}

export const VAULT_URL = requireEnv("CLOISTER_URL", "the vault URL, e.g. https://127.0.0.1:8443").replace(/\/+$/, "");
export const TOKEN = requireEnv("CLOISTER_TOKEN", "a bearer token issued by Cloister");
export const CA_FILE = requireEnv("NODE_EXTRA_CA_CERTS", "the path of the Cloister CA certificate (DIR/ca.pem)");
if (!fs.existsSync(CA_FILE)) {
  throw new Error(`NODE_EXTRA_CA_CERTS=${CA_FILE} does not exist`);
}

/** A unique, valid vault object name (letters, digits and dashes). */
let counter = 0;
const RUN = crypto.randomBytes(3).toString("hex");
export function uniqueName(prefix) {
  counter += 1;
  return `${prefix}-${RUN}-${counter}`;
}
export const RUN_ID = RUN;

/**
 * A TokenCredential (the @azure/core-auth interface, duck-typed) that returns `token` and records
 * the scopes the SDK asked for. The SDK only calls it after the vault's 401 challenge.
 */
export function tokenCredential(token = TOKEN) {
  const cred = {
    calls: [],
    async getToken(scopes, options) {
      cred.calls.push({ scopes: [].concat(scopes), tenantId: options?.tenantId });
      return { token, expiresOnTimestamp: Date.now() + 3600 * 1000 };
    },
  };
  return cred;
}

/**
 * Records every request that goes over the wire (after the challenge policy and retries), so a
 * test can assert which operations the SDK did locally and which it sent to the vault.
 */
export function recorder() {
  const rec = {
    requests: [],
    clear() {
      rec.requests.length = 0;
    },
    /**
     * "METHOD /path" (query string removed) for every request since the last clear(), leaving
     * out the 401 answers to a new client's first, token-less request (the challenge probe).
     */
    lines() {
      return rec.requests.filter((r) => r.status !== 401).map((r) => `${r.method} ${new URL(r.url).pathname}`);
    },
    policy: {
      name: "cloisterTestRecorder",
      async sendRequest(request, next) {
        const response = await next(request);
        rec.requests.push({
          method: request.method,
          url: request.url,
          authorized: request.headers.has("authorization"),
          status: response.status,
        });
        return response;
      },
    },
  };
  return rec;
}

/** Client options every test uses: the challenge names a resource that is not our host. */
export function clientOptions(rec) {
  return {
    disableChallengeResourceVerification: true,
    // Keep failures quick: the default retries 5xx three times with exponential back-off.
    retryOptions: { maxRetries: 1, retryDelayInMs: 50, maxRetryDelayInMs: 200 },
    additionalPolicies: rec ? [{ policy: rec.policy, position: "perRetry" }] : [],
  };
}

/** Asserts that `promise` rejects with a RestError of HTTP status `status` (and `code` if given). */
export async function rejectsWithStatus(promise, status, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.statusCode, status, `expected HTTP ${status}, got ${err.statusCode}: ${err.message}`);
    if (code !== undefined) {
      assert.equal(err.code, code, `expected error code ${code}, got ${err.code}: ${err.message}`);
    }
    assert.ok(typeof err.message === "string" && err.message.length > 0, "the error has a message");
    return true;
  });
}

/** A raw HTTPS request (no SDK), for the authentication contract. */
export function rawRequest(method, path, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const url = new URL(VAULT_URL + path);
    const req = https.request(url, { method, headers, ca: fs.readFileSync(CA_FILE) }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    if (body !== undefined) {
      req.write(body);
    }
    req.end();
  });
}

/** Asserts that `d` is a Date within `slackSeconds` of now. */
export function assertRecentDate(d, what, slackSeconds = 300) {
  assert.ok(d instanceof Date && !Number.isNaN(d.getTime()), `${what} is a Date (got ${d})`);
  assert.ok(Math.abs(d.getTime() - Date.now()) < slackSeconds * 1000, `${what} (${d.toISOString()}) is close to now`);
}

/** Whole seconds, as the vault stores dates (Unix time). */
export function wholeSeconds(date) {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/** The recovery levels the vault may report (the service's DeletionRecoveryLevel values). */
export const RECOVERY_LEVELS = [
  "Purgeable",
  "Recoverable+Purgeable",
  "Recoverable",
  "Recoverable+ProtectedSubscription",
  "CustomizedRecoverable+Purgeable",
  "CustomizedRecoverable",
  "CustomizedRecoverable+ProtectedSubscription",
];

/** Collects an async iterable into an array. */
export async function collect(iter) {
  const out = [];
  for await (const x of iter) {
    out.push(x);
  }
  return out;
}

/** Collects a paged iterable page by page: { pages: [[...], ...], tokens: [...] }. */
export async function collectPages(pagedIter) {
  const pages = [];
  const tokens = [];
  for await (const p of pagedIter) {
    pages.push([...p]);
    tokens.push(p.continuationToken);
  }
  return { pages, tokens };
}
