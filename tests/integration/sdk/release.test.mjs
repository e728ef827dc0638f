// Secure key release through the official @azure/keyvault-keys SDK (KeyClient.createKey with
// exportable + releasePolicy, getKey, updateKeyProperties, releaseKey) against `cloister serve`.
// The release JWS the SDK hands back (it does not parse it) is then opened with node's crypto
// alone: its signature against the x5c leaf, the leaf against the vault's CA, and key_hsm
// (RSA-OAEP of an AES key || AES-KWP of the key) with the TEE's private key; the released key
// must decrypt what the vault encrypts.
//
// Env (set by ../key_release.sh): CLOISTER_URL, CLOISTER_TOKEN, NODE_EXTRA_CA_CERTS,
// SKR_TOKEN (file: an attestation token whose x-ms-runtime.keys holds the TEE key),
// SKR_TOKEN_OTHER (file: a token of another mrenclave), SKR_TEE_KEY (file: the TEE's private key,
// PEM), SKR_POLICY (file: the release policy JSON).
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import { describe, it } from "node:test";

import { KeyClient } from "@azure/keyvault-keys";

import { CA_FILE, VAULT_URL, clientOptions, rejectsWithStatus, tokenCredential, uniqueName } from "./common.mjs";

function envFile(name) {
  const p = process.env[name];
  if (!p || !fs.existsSync(p)) {
    throw new Error(`${name} must name a file (tests/integration/key_release.sh sets it)`);
  }
  return fs.readFileSync(p, "utf8").trim();
}

const TOKEN = envFile("SKR_TOKEN");
const TOKEN_OTHER = envFile("SKR_TOKEN_OTHER");
const TEE_KEY = crypto.createPrivateKey(envFile("SKR_TEE_KEY"));
const POLICY = envFile("SKR_POLICY");
const client = new KeyClient(VAULT_URL, tokenCredential(), clientOptions());
const OAEP_HASH = { CKM_RSA_AES_KEY_WRAP: "sha1", RSA_AES_KEY_WRAP_256: "sha256", RSA_AES_KEY_WRAP_384: "sha384" };

/** Verifies a release JWS with node only and returns its payload and the unwrapped key bytes. */
function openRelease(jws) {
  const [h, p, s] = jws.split(".");
  assert.ok(h && p && s, "a compact JWS");
  const header = JSON.parse(Buffer.from(h, "base64url"));
  assert.equal(header.alg, "RS256");
  assert.ok(Array.isArray(header.x5c) && header.x5c.length >= 1, "x5c in the header");
  const leaf = new crypto.X509Certificate(Buffer.from(header.x5c[0], "base64"));
  const ca = new crypto.X509Certificate(fs.readFileSync(CA_FILE));
  assert.ok(leaf.verify(ca.publicKey), "the signing certificate is issued by the vault's CA");
  assert.equal(header["x5t#S256"], crypto.createHash("sha256").update(leaf.raw).digest("base64url"));
  const ok = crypto.verify("sha256", Buffer.from(`${h}.${p}`), leaf.publicKey, Buffer.from(s, "base64url"));
  assert.ok(ok, "the JWS signature verifies with the x5c leaf");
  const payload = JSON.parse(Buffer.from(p, "base64url"));
  const key = payload.response.key.key;
  const kh = JSON.parse(Buffer.from(key.key_hsm, "base64url"));
  assert.equal(kh.schema_version, "1.0");
  assert.equal(kh.header.alg, "dir");
  assert.equal(kh.header.enc, payload.request.enc);
  const ct = Buffer.from(kh.ciphertext, "base64url");
  const mod = 256; // the TEE key is RSA-2048
  const aes = crypto.privateDecrypt(
    { key: TEE_KEY, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[payload.request.enc] },
    ct.subarray(0, mod),
  );
  assert.equal(aes.length, 32);
  const d = crypto.createDecipheriv("id-aes256-wrap-pad", aes, Buffer.from("A65959A6", "hex"));
  const material = Buffer.concat([d.update(ct.subarray(mod)), d.final()]);
  return { header, payload, key, material };
}

describe("secure key release through the SDK", () => {
  it("creates an exportable key with a release policy and releases it to the TEE", async () => {
    const name = uniqueName("skr");
    const created = await client.createKey(name, "RSA", {
      keySize: 2048,
      exportable: true,
      releasePolicy: { encodedPolicy: new TextEncoder().encode(POLICY) },
    });
    assert.equal(created.properties.exportable, true);
    assert.deepEqual(JSON.parse(Buffer.from(created.properties.releasePolicy.encodedPolicy).toString()), JSON.parse(POLICY));

    const result = await client.releaseKey(name, TOKEN);
    assert.equal(typeof result.value, "string");
    const { payload, key, material } = openRelease(result.value);
    assert.equal(payload.request.enc, "CKM_RSA_AES_KEY_WRAP");
    assert.equal(key.kid, created.key.kid);
    assert.equal(key.kty, "RSA");
    assert.equal(key.d, undefined);
    const priv = crypto.createPrivateKey({ key: material, format: "der", type: "pkcs8" });
    // the released key is the vault's: it has the same modulus and decrypts what the vault encrypts
    assert.equal(crypto.createPublicKey(priv).export({ format: "jwk" }).n, Buffer.from(created.key.n).toString("base64url"));
    const crypt = client.getCryptographyClient(name);
    const enc = await crypt.encrypt({ algorithm: "RSA-OAEP-256", plaintext: Buffer.from("for the TEE only") });
    const plain = crypto.privateDecrypt({ key: priv, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, enc.result);
    assert.equal(plain.toString(), "for the TEE only");
  });

  it("releases a given version with RSA_AES_KEY_WRAP_256 and a matching nonce check", async () => {
    const name = uniqueName("skr-v");
    const k1 = await client.createKey(name, "oct", { keySize: 256, exportable: true, releasePolicy: { encodedPolicy: new TextEncoder().encode(POLICY) } });
    await client.createKey(name, "oct", { keySize: 256, exportable: true, releasePolicy: { encodedPolicy: new TextEncoder().encode(POLICY) } });
    const r = await client.releaseKey(name, TOKEN, { version: k1.properties.version, algorithm: "RSA_AES_KEY_WRAP_256" });
    const { payload, key, material } = openRelease(r.value);
    assert.equal(payload.request.enc, "RSA_AES_KEY_WRAP_256");
    assert.equal(key.kid, k1.key.kid);
    assert.equal(material.length, 32);
    // the token carries no nonce: a request nonce cannot match (a replayed token is refused)
    await rejectsWithStatus(client.releaseKey(name, TOKEN, { nonce: "fresh-nonce" }), 403, "Forbidden");
  });

  it("refuses another enclave, naming the rule and the claim", async () => {
    const name = uniqueName("skr-deny");
    await client.createKey(name, "EC", { exportable: true, releasePolicy: { encodedPolicy: new TextEncoder().encode(POLICY) } });
    await assert.rejects(client.releaseKey(name, TOKEN_OTHER), (err) => {
      assert.equal(err.statusCode, 403);
      assert.match(err.message, /anyOf\[0\]\.allOf\[\d\]/);
      assert.match(err.message, /x-cloister-sim-mrenclave/);
      return true;
    });
    await rejectsWithStatus(client.releaseKey(name, "not.a.token"), 403, "Forbidden");
    await rejectsWithStatus(client.releaseKey(uniqueName("missing"), TOKEN), 404, "KeyNotFound");
  });

  it("enforces the cloud's exportable/policy rules and immutable policies", async () => {
    const name = uniqueName("skr-rules");
    await rejectsWithStatus(client.createKey(name, "RSA", { exportable: true }), 400, "BadParameter");
    const plain = await client.createKey(name, "RSA", {});
    assert.notEqual(plain.properties.exportable, true);
    await rejectsWithStatus(client.releaseKey(name, TOKEN), 403, "Forbidden");
    const fixed = uniqueName("skr-fixed");
    await client.createKey(fixed, "RSA", {
      exportable: true,
      releasePolicy: { encodedPolicy: new TextEncoder().encode(POLICY), immutable: true },
    });
    const other = JSON.parse(POLICY);
    other.anyOf[0].allOf.push({ claim: "x-cloister-sim-svn", greaterOrEquals: 1 });
    await rejectsWithStatus(
      client.updateKeyProperties(fixed, { releasePolicy: { encodedPolicy: new TextEncoder().encode(JSON.stringify(other)) } }),
      409,
      "Conflict",
    );
    const got = await client.getKey(fixed);
    assert.equal(got.properties.releasePolicy.immutable, true);
  });
});
