// The cloud attestation service's official JavaScript SDK (@azure/attestation, pinned in
// package-lock.json) against `cloister serve`: getOpenIdMetadata, getAttestationSigners, the SDK's
// own token validation (AttestationToken.getTokenProblems) of a token that `cloister attest`
// obtained, and the administration client's getPolicy / setPolicy / resetPolicy, each of which
// validates the service's signed answer with the signers from /certs. See ../attest_sdk.sh.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import { describe, it } from "node:test";

import {
  AttestationAdministrationClient,
  AttestationClient,
  createAttestationPolicyToken,
} from "@azure/attestation";

function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set (tests/integration/attest_sdk.sh sets it)`);
  }
  return v;
}

const URL_ = env("CLOISTER_URL").replace(/\/+$/, "");
const ADMIN_TOKEN = env("CLOISTER_TOKEN");
const TOKEN = fs.readFileSync(env("ATTEST_TOKEN_FILE"), "utf8").trim();
const CERTS = JSON.parse(fs.readFileSync(env("ATTEST_CERTS_FILE"), "utf8"));
env("NODE_EXTRA_CA_CERTS");

const credential = {
  async getToken() {
    return { token: ADMIN_TOKEN, expiresOnTimestamp: Date.now() + 3600 * 1000 };
  },
};
const strict = {
  validateToken: true,
  validateExpirationTime: true,
  validateNotBeforeTime: true,
  validateIssuer: true,
  expectedIssuer: URL_,
  timeValidationSlack: 0,
};

// The SDK's token class (AttestationTokenImpl) is not exported by name; every token it creates
// is one, so take the class from one of those.
const AttestationToken = createAttestationPolicyToken("probe").constructor;

function b64url(s) {
  return Buffer.from(s).toString("base64url");
}

describe("@azure/attestation against cloister serve", () => {
  const client = new AttestationClient(URL_, { validationOptions: strict });

  it("getOpenIdMetadata returns the issuer, the jwks_uri and ES256", async () => {
    const md = await client.getOpenIdMetadata();
    assert.equal(md.issuer, URL_);
    assert.equal(md.jwks_uri, `${URL_}/certs`);
    assert.ok(md.id_token_signing_alg_values_supported.includes("ES256"));
    assert.ok(md.claims_supported.includes("x-ms-attestation-type"));
    assert.ok(md.claims_supported.includes("x-ms-runtime"));
  });

  it("getAttestationSigners returns each key's kid and its x5c certificate", async () => {
    const signers = await client.getAttestationSigners();
    assert.equal(signers.length, CERTS.keys.length);
    for (const [i, s] of signers.entries()) {
      const jwk = CERTS.keys[i];
      assert.equal(s.keyId, jwk.kid);
      assert.equal(s.certificates.length, 1);
      assert.match(s.certificates[0], /^-----BEGIN CERTIFICATE-----\n/);
      const cert = new crypto.X509Certificate(s.certificates[0]);
      assert.ok(cert.verify(cert.publicKey), "the certificate is self-signed");
      const pub = cert.publicKey.export({ format: "jwk" });
      assert.deepEqual([pub.crv, pub.x, pub.y], [jwk.crv, jwk.x, jwk.y]);
    }
  });

  it("validates a token from POST /attest/SimEnclave with the SDK's own checks", async () => {
    const signers = await client.getAttestationSigners();
    const token = new AttestationToken(TOKEN);
    assert.deepEqual(token.getTokenProblems(signers, strict), []);
    assert.equal(token.algorithm, "ES256");
    assert.equal(token.type, "JWT");
    assert.equal(token.keyUrl, `${URL_}/certs`);
    assert.ok(signers.some((s) => s.keyId === token.keyId));
    assert.equal(token.issuer, URL_);
    const body = token.getBody();
    assert.equal(body["x-ms-attestation-type"], "sim");
    assert.equal(body["x-ms-ver"], "1.0");
    assert.match(body["x-cloister-sim-mrenclave"], /^[0-9a-f]{96}$/);
    assert.equal(typeof body["x-ms-policy-hash"], "string");
    assert.equal(body["x-ms-runtime"].keys[0].kid, "tee");
  });

  it("the SDK flags a changed payload, a foreign issuer, an unknown signer, expiry and nbf", async (t) => {
    const signers = await client.getAttestationSigners();
    const [h, p, s] = TOKEN.split(".");
    const claims = JSON.parse(Buffer.from(p, "base64url"));
    claims["x-cloister-sim-svn"] = 999;
    const tampered = new AttestationToken(`${h}.${b64url(JSON.stringify(claims))}.${s}`);
    assert.deepEqual(tampered.getTokenProblems(signers, strict), [
      "Attestation Token is not properly signed.",
    ]);
    const token = new AttestationToken(TOKEN);
    const wrongIssuer = token.getTokenProblems(signers, { ...strict, expectedIssuer: "https://evil.example" });
    assert.equal(wrongIssuer.length, 1);
    assert.match(wrongIssuer[0], /expected issuer/);
    // Signers that do not include the token's key: the SDK then falls back to a key in the
    // token's header, which has none, and either reports a problem or throws (jsrsasign's "key
    // shall be a ECDSA obj"); both mean the token is not accepted.
    const others = signers.map((x) => ({ ...x, keyId: "someone-else" }));
    let refused = false;
    try {
      refused = token.getTokenProblems(others, strict).length > 0;
    } catch {
      refused = true;
    }
    assert.ok(refused, "a token whose kid is not among the signers must not validate");

    t.mock.timers.enable({ apis: ["Date"], now: (claims.exp + 60) * 1000 });
    assert.deepEqual(token.getTokenProblems(signers, strict), ["AttestationToken has expired."]);
    t.mock.timers.reset();
    t.mock.timers.enable({ apis: ["Date"], now: (claims.nbf - 60) * 1000 });
    assert.deepEqual(token.getTokenProblems(signers, strict), ["AttestationToken is not yet valid."]);
    t.mock.timers.reset();
  });

  it("the administration client gets, sets and resets the SimEnclave policy", async () => {
    const admin = new AttestationAdministrationClient(URL_, credential, { validationOptions: strict });
    const initial = await admin.getPolicy("SimEnclave");
    const initialPolicy = JSON.parse(initial.body);
    assert.equal(initialPolicy.version, "1.0.0");
    assert.ok(JSON.stringify(initialPolicy).includes("x-cloister-sim-is-debuggable"));
    assert.equal(initial.token.getBody()["x-cloister-policy-default"], true);

    const mine = {
      version: "1.0.0",
      authorizationRules: { allOf: [{ claim: "x-cloister-sim-svn", greaterOrEquals: 1 }] },
    };
    const set = await admin.setPolicy("SimEnclave", JSON.stringify(mine));
    assert.equal(set.body.policyResolution, "Updated");
    assert.ok(set.body.policyTokenHash instanceof Uint8Array);
    assert.equal(set.body.policyTokenHash.length, 32);
    const after = await admin.getPolicy("SimEnclave");
    assert.deepEqual(JSON.parse(after.body), mine);

    await assert.rejects(admin.setPolicy("SimEnclave", '{"version":"1.0.0","authorizationRules":{"allOf":[{"claim":"x","equal":1}]}}'),
      /equal/);

    const reset = await admin.resetPolicy("SimEnclave");
    assert.equal(reset.body.policyResolution, "Removed");
    const back = await admin.getPolicy("SimEnclave");
    assert.deepEqual(JSON.parse(back.body), initialPolicy);
  });

  it("the administration client is refused without a valid bearer token", async () => {
    const bad = {
      async getToken() {
        return { token: "not-a-valid-token", expiresOnTimestamp: Date.now() + 3600 * 1000 };
      },
    };
    const admin = new AttestationAdministrationClient(URL_, bad, { validationOptions: strict });
    await assert.rejects(admin.getPolicy("SimEnclave"), (e) => e.statusCode === 401);
  });
});
