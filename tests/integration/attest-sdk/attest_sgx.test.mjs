// The official SDK (@azure/attestation) calls attestSgxEnclave with a real SGX ECDSA quote v3
// (tests/vectors/sgx/dcap-rs/quote_v3_sgx_00606a000000.bin) against `cloister serve
// --test-fixed-time 2025-03-01T00:00:00Z --collateral DIR` (Intel's 2025-02 collateral for that
// platform) and validates the token it gets back with its own checks: the ES256 signature with
// the signers from /certs, the issuer, and exp/nbf. The service's clock stands at the fixed time
// (the quote's certificates and collateral expire), so the SDK's clock is set there too (Date
// is mocked; TLS is not affected). See ../attest_sdk.sh.
//
// The platform's TCB is OutOfDate in that collateral: the default SgxEnclave policy (UpToDate
// only) refuses it, and a policy that also admits OutOfDate, set through the administration
// client (or given as draftPolicyForAttestation: an unsecured token), accepts it.
import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, it } from "node:test";

import { AttestationAdministrationClient, AttestationClient } from "@azure/attestation";

function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set (tests/integration/attest_sdk.sh sets it)`);
  }
  return v;
}

const URL_ = env("CLOISTER_HW_URL").replace(/\/+$/, "");
const ADMIN_TOKEN = env("CLOISTER_HW_TOKEN");
const QUOTE = fs.readFileSync(env("SGX_QUOTE_FILE"));
const FIXED = Number(env("SGX_FIXED_TIME")); // Unix seconds
env("NODE_EXTRA_CA_CERTS");

const MRENCLAVE = "a4f45c39dac622cb1dd32ddb35a52ec92db41d0fa88a1c911c49e59c534f61cd";
const MRSIGNER = "1bda23eb3a807dfe735ddcebbfa2eac05e04a00df2804296612f770b594180ba";

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

const allowOutOfDate = {
  version: "1.0.0",
  authorizationRules: {
    allOf: [
      { claim: "x-ms-attestation-type", equals: "sgx" },
      { claim: "x-ms-sgx-is-debuggable", equals: false },
      { claim: "x-ms-sgx-mrsigner", equals: MRSIGNER },
      {
        anyOf: [
          { claim: "attester_tcb_status", equals: "UpToDate" },
          { claim: "attester_tcb_status", equals: "OutOfDate" },
        ],
      },
    ],
  },
};

describe("@azure/attestation attestSgxEnclave with a real SGX quote", () => {
  const client = new AttestationClient(URL_, { validationOptions: strict });
  const admin = new AttestationAdministrationClient(URL_, credential, { validationOptions: strict });

  it("the default SgxEnclave policy refuses the OutOfDate platform, naming the claim", async (t) => {
    t.mock.timers.enable({ apis: ["Date"], now: (FIXED + 5) * 1000 });
    await assert.rejects(client.attestSgxEnclave(QUOTE), (e) => {
      assert.equal(e.statusCode, 400);
      assert.match(e.message, /attester_tcb_status/);
      assert.match(e.message, /OutOfDate/);
      return true;
    });
  });

  it("with OutOfDate admitted by policy, the SDK gets and validates the token", async (t) => {
    t.mock.timers.enable({ apis: ["Date"], now: (FIXED + 5) * 1000 });
    const set = await admin.setPolicy("SgxEnclave", JSON.stringify(allowOutOfDate));
    assert.equal(set.body.policyResolution, "Updated");
    try {
      const res = await client.attestSgxEnclave(QUOTE); // the SDK validates the token (strict)
      const body = res.body;
      assert.equal(body.verifierType, "sgx");
      assert.equal(body.mrEnclave, MRENCLAVE);
      assert.equal(body.mrSigner, MRSIGNER);
      assert.equal(body.isDebuggable, false);
      assert.equal(body.productId, 0);
      assert.equal(body.svn, 0);
      assert.equal(body.issuer, URL_);
      assert.ok(body.policyHash instanceof Uint8Array && body.policyHash.length === 32);

      const token = res.token;
      assert.equal(token.algorithm, "ES256");
      assert.equal(token.keyUrl, `${URL_}/certs`);
      const claims = token.getBody();
      assert.equal(claims["x-ms-attestation-type"], "sgx");
      assert.equal(claims["attester_tcb_status"], "OutOfDate");
      assert.equal(claims.iat, FIXED);
      const signers = await client.getAttestationSigners();
      assert.deepEqual(token.getTokenProblems(signers, strict), []);

      // The same token, judged by the SDK at a time after its exp: refused.
      t.mock.timers.reset();
      t.mock.timers.enable({ apis: ["Date"], now: (claims.exp + 60) * 1000 });
      assert.deepEqual(token.getTokenProblems(signers, strict), ["AttestationToken has expired."]);
      t.mock.timers.reset();
      t.mock.timers.enable({ apis: ["Date"], now: (FIXED + 5) * 1000 });
      // And with a changed claim the signature no longer holds.
      const [h, p, s] = token.serialize().split(".");
      const c = JSON.parse(Buffer.from(p, "base64url"));
      c["x-ms-sgx-mrenclave"] = "00".repeat(32);
      const Tok = token.constructor;
      const forged = new Tok(`${h}.${Buffer.from(JSON.stringify(c)).toString("base64url")}.${s}`);
      assert.deepEqual(forged.getTokenProblems(signers, strict), [
        "Attestation Token is not properly signed.",
      ]);
    } finally {
      await admin.resetPolicy("SgxEnclave");
    }
  });

  it("draftPolicyForAttestation: the draft decides, and the token is unsecured", async (t) => {
    t.mock.timers.enable({ apis: ["Date"], now: (FIXED + 5) * 1000 });
    // The stored policy is the default (UpToDate only); the draft admits OutOfDate.
    const res = await client.attestSgxEnclave(QUOTE, {
      draftPolicyForAttestation: JSON.stringify(allowOutOfDate),
    });
    assert.equal(res.token.algorithm, "none");
    assert.equal(res.body.mrEnclave, MRENCLAVE);
    assert.equal(res.token.getBody()["x-cloister-draft-policy"], true);
    // A draft that denies.
    const upToDateOnly = {
      version: "1.0.0",
      authorizationRules: { allOf: [{ claim: "attester_tcb_status", equals: "UpToDate" }] },
    };
    await assert.rejects(client.attestSgxEnclave(QUOTE, {
      draftPolicyForAttestation: JSON.stringify(upToDateOnly),
    }), (e) => e.statusCode === 400 && /draft/.test(e.message) && /attester_tcb_status/.test(e.message));
  });

  it("runtime data the quote does not bind, a changed quote and a broken draft policy are refused", async (t) => {
    t.mock.timers.enable({ apis: ["Date"], now: (FIXED + 5) * 1000 });
    await admin.setPolicy("SgxEnclave", JSON.stringify(allowOutOfDate));
    try {
      // The quote's report data is all zero: no runtime data hashes to it.
      await assert.rejects(client.attestSgxEnclave(QUOTE, { runTimeData: Buffer.from("hello") }),
        (e) => e.statusCode === 400 && /report data|runtime data|binding/i.test(e.message));
      const flipped = Buffer.from(QUOTE);
      flipped[48 + 64] ^= 0x01; // inside the signed enclave report body
      await assert.rejects(client.attestSgxEnclave(flipped), (e) => e.statusCode === 400);
      // A draft policy that does not parse is refused, naming the member.
      await assert.rejects(client.attestSgxEnclave(QUOTE, { draftPolicyForAttestation: "x" }),
        (e) => e.statusCode === 400 && /draftPolicyForAttestation/.test(e.message));
    } finally {
      await admin.resetPolicy("SgxEnclave");
    }
  });
});
