// The official @azure/keyvault-keys SDK against `cloister serve`: authentication (401 challenge),
// every key type and size, properties, versions, rotation, paging, soft delete / recover / purge,
// backup / restore, random bytes, and every CryptographyClient operation, including the ones the
// SDK does locally with the public key (RSA-OAEP encrypt and wrap, RS* verifyData) that the vault
// must then undo or agree with. Independent checks use node's own crypto on the returned JWKs.
//
// Env: CLOISTER_URL, CLOISTER_TOKEN, NODE_EXTRA_CA_CERTS (see common.mjs, ../sdk_interop.sh).
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { describe, it, before } from "node:test";

import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";

import {
  RECOVERY_LEVELS,
  RUN_ID,
  VAULT_URL,
  assertRecentDate,
  clientOptions,
  collect,
  collectPages,
  rawRequest,
  recorder,
  rejectsWithStatus,
  tokenCredential,
  uniqueName,
  wholeSeconds,
} from "./common.mjs";

const API_VERSION = "2025-07-01"; // what @azure/keyvault-keys 4.10.2 sends (LATEST_API_VERSION)
const rec = recorder();
const cred = tokenCredential();
const client = new KeyClient(VAULT_URL, cred, clientOptions(rec));

const b64u = (b) => Buffer.from(b).toString("base64url");
const sha = (alg, data) => crypto.createHash(alg).update(data).digest();
const HASH_OF = { RS256: "sha256", RS384: "sha384", RS512: "sha512", PS256: "sha256", PS384: "sha384", PS512: "sha512", ES256: "sha256", ES384: "sha384", ES512: "sha512" };
const EC_SIZES = { "P-256": { alg: "ES256", bytes: 32 }, "P-384": { alg: "ES384", bytes: 48 }, "P-521": { alg: "ES512", bytes: 66 } };

/** The requests recorded since the last rec.clear() whose path ends with `/suffix`. */
function sent(suffix) {
  return rec.lines().filter((l) => l.endsWith(`/${suffix}`));
}

function flip(bytes, index = 0) {
  const b = Buffer.from(bytes);
  b[index % b.length] ^= 0x01;
  return b;
}

/** A node KeyObject for the public part of a KeyVaultKey's JWK. */
function publicKeyOf(key) {
  const k = key.key;
  if (k.kty === "RSA" || k.kty === "RSA-HSM") {
    return crypto.createPublicKey({ key: { kty: "RSA", n: b64u(k.n), e: b64u(k.e) }, format: "jwk" });
  }
  return crypto.createPublicKey({ key: { kty: "EC", crv: k.crv, x: b64u(k.x), y: b64u(k.y) }, format: "jwk" });
}

/** Checks what every key bundle the vault returns must carry. */
function assertKeyShape(key, name, kty) {
  assert.equal(key.name, name);
  assert.equal(key.keyType, kty);
  assert.equal(key.key.kty, kty);
  assert.match(key.properties.version ?? "", /^[0-9a-f]{32}$/, "the version is 32 lowercase hex characters");
  assert.equal(key.id, `${VAULT_URL}/keys/${name}/${key.properties.version}`, "kid is https://host/keys/name/version");
  assert.equal(key.key.kid, key.id);
  assert.equal(key.properties.id, key.id);
  assert.equal(key.properties.name, name);
  assert.equal(key.properties.vaultUrl, VAULT_URL);
  assert.equal(typeof key.properties.enabled, "boolean");
  assertRecentDate(key.properties.createdOn, "createdOn");
  assertRecentDate(key.properties.updatedOn, "updatedOn");
  assert.ok(RECOVERY_LEVELS.includes(key.properties.recoveryLevel), `recoveryLevel ${key.properties.recoveryLevel} is a known value`);
  if (key.properties.recoveryLevel.includes("Recoverable")) {
    assert.ok(Number.isInteger(key.properties.recoverableDays) && key.properties.recoverableDays >= 7 && key.properties.recoverableDays <= 90,
      `recoverableDays ${key.properties.recoverableDays} is 7..90 for a recoverable level`);
  }
  for (const priv of ["d", "p", "q", "dp", "dq", "qi", "k", "t"]) {
    assert.equal(key.key[priv], undefined, `the vault never returns private member '${priv}'`);
  }
  assert.ok(Array.isArray(key.keyOperations) && key.keyOperations.length > 0, "key_ops is returned");
}

// Keys created once and shared by the tests below.
const made = { rsa: {}, ec: {}, oct: {} };
const createdNames = new Set();

describe("authentication", () => {
  it("answers an unauthenticated request with 401 and the Bearer challenge", async () => {
    const r = await rawRequest("GET", `/keys?api-version=${API_VERSION}`);
    assert.equal(r.status, 401);
    const challenge = r.headers["www-authenticate"];
    assert.match(challenge ?? "", /^Bearer authorization="https?:\/\/[^"\s]+", resource="https?:\/\/[^"\s]+"$/,
      `WWW-Authenticate is 'Bearer authorization="…", resource="…"' (got ${challenge})`);
    assert.match(r.headers["content-type"] ?? "", /^application\/json/);
    assert.equal(typeof r.json?.error?.code, "string", "401 body is {error:{code,message}}");
    assert.equal(typeof r.json?.error?.message, "string");
  });

  it("answers a POST without a body (the SDK's first, body-less request) with 401, not 400", async () => {
    const r = await rawRequest("POST", `/keys/${uniqueName("noauth")}/create?api-version=${API_VERSION}`, {
      headers: { "content-type": "application/json", "content-length": "0" },
    });
    assert.equal(r.status, 401);
    assert.ok(r.headers["www-authenticate"], "the challenge header is present");
  });

  it("rejects a token it did not issue", async () => {
    const r = await rawRequest("GET", `/keys?api-version=${API_VERSION}`, { headers: { authorization: "Bearer not-a-cloister-token" } });
    assert.equal(r.status, 401);
    const wrong = new KeyClient(VAULT_URL, tokenCredential("not-a-cloister-token"), clientOptions());
    await rejectsWithStatus(wrong.getKey("anything"), 401);
  });

  it("lets the SDK complete the challenge: body-less probe, 401, token for resource/.default, retry", async () => {
    const r = await rawRequest("GET", `/keys?api-version=${API_VERSION}`);
    const resource = /resource="([^"]+)"/.exec(r.headers["www-authenticate"])[1];
    const fresh = recorder();
    const c = tokenCredential();
    const kc = new KeyClient(VAULT_URL, c, clientOptions(fresh));
    const first = await kc.listPropertiesOfKeys().byPage().next();
    assert.equal(first.done, false);
    assert.deepEqual(fresh.requests.map((q) => [q.authorized, q.status]), [[false, 401], [true, 200]]);
    assert.equal(c.calls.length, 1);
    assert.deepEqual(c.calls[0].scopes, [`${resource}/.default`]);
    // Later requests carry the token straight away.
    fresh.clear();
    await kc.listPropertiesOfKeys().byPage().next();
    assert.deepEqual(fresh.requests.map((q) => [q.authorized, q.status]), [[true, 200]]);
  });

  it("needs disableChallengeResourceVerification for an IP-literal vault URL", async (t) => {
    const host = new URL(VAULT_URL).hostname;
    if (!/^[0-9.]+$|^\[/.test(host)) {
      // Only an IP literal can never end with ".<resource host>"; a DNS name may (see akv-rest.md).
      t.diagnostic(`vault host ${host} is a name, the check depends on --challenge-resource`);
      return;
    }
    const strict = new KeyClient(VAULT_URL, tokenCredential(), { retryOptions: { maxRetries: 0 } });
    await assert.rejects(strict.getKey("anything"), /does not match the requested domain/);
  });
});

describe("create and get", () => {
  for (const size of [2048, 3072, 4096]) {
    it(`creates an RSA ${size} key`, async () => {
      const name = uniqueName(`rsa${size}`);
      const key = await client.createRsaKey(name, { keySize: size });
      assertKeyShape(key, name, "RSA");
      assert.equal(key.properties.enabled, true);
      assert.equal(key.key.n.length, size / 8, "n has the key size");
      assert.deepEqual([...key.key.e], [1, 0, 1], "e is 65537");
      assert.equal(publicKeyOf(key).asymmetricKeyDetails.modulusLength, size);
      for (const op of ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]) {
        assert.ok(key.keyOperations.includes(op), `default key_ops include ${op}`);
      }
      made.rsa[size] = key;
      createdNames.add(name);
    });
  }
  for (const [crv, { bytes }] of Object.entries(EC_SIZES)) {
    it(`creates an EC ${crv} key`, async () => {
      const name = uniqueName(`ec${crv.slice(2)}`);
      const key = await client.createEcKey(name, { curve: crv });
      assertKeyShape(key, name, "EC");
      assert.equal(key.key.crv, crv);
      assert.equal(key.key.x.length, bytes);
      assert.equal(key.key.y.length, bytes);
      assert.equal(key.key.n, undefined);
      publicKeyOf(key); // the point is on the curve (node refuses it otherwise)
      for (const op of ["sign", "verify"]) {
        assert.ok(key.keyOperations.includes(op), `default key_ops include ${op}`);
      }
      made.ec[crv] = key;
      createdNames.add(name);
    });
  }
  for (const size of [128, 192, 256]) {
    it(`creates an oct (AES) ${size} key`, async () => {
      const name = uniqueName(`oct${size}`);
      const key = await client.createOctKey(name, { keySize: size });
      assertKeyShape(key, name, "oct");
      assert.equal(key.key.k, undefined, "symmetric key material is never returned");
      for (const op of ["encrypt", "decrypt", "wrapKey", "unwrapKey"]) {
        assert.ok(key.keyOperations.includes(op), `default key_ops include ${op}`);
      }
      made.oct[size] = key;
      createdNames.add(name);
    });
  }

  it("creates a key with tags, dates, key_ops, disabled, exportable with a release policy", async () => {
    const name = uniqueName("opts");
    const notBefore = wholeSeconds(new Date(Date.now() - 3600 * 1000));
    const expiresOn = wholeSeconds(new Date(Date.now() + 86400 * 1000));
    const policy = {
      version: "1.0.0",
      anyOf: [{ authority: "https://attest.cloister.invalid", allOf: [{ claim: "x-ms-attestation-type", equals: "sevsnpvm" }] }],
    };
    const key = await client.createRsaKey(name, {
      keySize: 2048,
      tags: { team: "data", "cost-center": "42" },
      enabled: false,
      notBefore,
      expiresOn,
      keyOps: ["sign", "verify"],
      exportable: true,
      releasePolicy: { encodedPolicy: Buffer.from(JSON.stringify(policy)) },
    });
    assertKeyShape(key, name, "RSA");
    const check = (k) => {
      assert.deepEqual(k.properties.tags, { team: "data", "cost-center": "42" });
      assert.equal(k.properties.enabled, false);
      assert.equal(k.properties.notBefore.getTime(), notBefore.getTime());
      assert.equal(k.properties.expiresOn.getTime(), expiresOn.getTime());
      assert.deepEqual([...k.keyOperations].sort(), ["sign", "verify"]);
      assert.equal(k.properties.exportable, true);
      const rp = k.properties.releasePolicy;
      assert.ok(rp?.encodedPolicy, "release_policy is returned");
      assert.deepEqual(JSON.parse(Buffer.from(rp.encodedPolicy).toString("utf8")), policy);
      if (rp.contentType !== undefined) {
        assert.match(rp.contentType, /^application\/json/);
      }
    };
    check(key);
    check(await client.getKey(name));
    createdNames.add(name);

    // A disabled key refuses operations (the vault says 403); enabling it makes it usable.
    const cc = new CryptographyClient(key, cred, clientOptions(rec));
    await rejectsWithStatus(cc.sign("RS256", sha("sha256", "x")), 403);
    const enabled = await client.updateKeyProperties(name, key.properties.version, { enabled: true });
    assert.equal(enabled.properties.enabled, true);
    const signed = await new CryptographyClient(enabled, cred, clientOptions(rec)).sign("RS256", sha("sha256", "x"));
    assert.equal(signed.result.length, 256);
    // key_ops lacks encrypt: the SDK refuses before sending anything.
    rec.clear();
    await assert.rejects(new CryptographyClient(enabled, cred, clientOptions(rec)).encrypt({ algorithm: "RSA-OAEP", plaintext: Buffer.from("x") }),
      /Operation encrypt is not supported/);
    assert.deepEqual(rec.lines(), []);
  });

  it("gets the latest version and a given version", async () => {
    const key = made.rsa[2048];
    const latest = await client.getKey(key.name);
    assert.equal(latest.id, key.id);
    assert.deepEqual([...latest.key.n], [...key.key.n]);
    const pinned = await client.getKey(key.name, { version: key.properties.version });
    assert.equal(pinned.id, key.id);
  });

  it("answers 404 KeyNotFound for an unknown key or version", async () => {
    await rejectsWithStatus(client.getKey(uniqueName("missing")), 404, "KeyNotFound");
    await rejectsWithStatus(client.getKey(made.rsa[2048].name, { version: "0123456789abcdef0123456789abcdef" }), 404, "KeyNotFound");
    const r = await rawRequest("GET", `/keys/${uniqueName("missing")}/?api-version=${API_VERSION}`, {
      headers: { authorization: `Bearer ${process.env.CLOISTER_TOKEN}` },
    });
    assert.equal(r.status, 404);
    assert.match(r.headers["content-type"] ?? "", /^application\/json/);
    assert.equal(r.json?.error?.code, "KeyNotFound");
    assert.equal(typeof r.json?.error?.message, "string");
  });

  it("refuses bad names and parameters with 400", async () => {
    await rejectsWithStatus(client.createRsaKey("bad_name"), 400);
    await rejectsWithStatus(client.createRsaKey(uniqueName("small"), { keySize: 1024 }), 400);
    await rejectsWithStatus(client.createEcKey(uniqueName("p192"), { curve: "P-192" }), 400);
    await rejectsWithStatus(client.createOctKey(uniqueName("oct64"), { keySize: 64 }), 400);
    await rejectsWithStatus(client.createKey(uniqueName("kty"), "bogus"), 400);
  });
});

describe("properties, versions, rotation, lists", () => {
  it("updates tags, enabled, notBefore, expiresOn and key_ops of a version and of the latest", async () => {
    const name = uniqueName("upd");
    const key = await client.createEcKey(name, { curve: "P-256", tags: { a: "1" } });
    createdNames.add(name);
    const notBefore = wholeSeconds(new Date(Date.now() - 7200 * 1000));
    const expiresOn = wholeSeconds(new Date(Date.now() + 7 * 86400 * 1000));
    const upd = await client.updateKeyProperties(name, key.properties.version, {
      tags: { b: "2", c: "3" },
      enabled: false,
      notBefore,
      expiresOn,
      keyOps: ["verify"],
    });
    assert.equal(upd.id, key.id, "an update keeps the version");
    for (const k of [upd, await client.getKey(name)]) {
      assert.deepEqual(k.properties.tags, { b: "2", c: "3" }, "tags are replaced, not merged");
      assert.equal(k.properties.enabled, false);
      assert.equal(k.properties.notBefore.getTime(), notBefore.getTime());
      assert.equal(k.properties.expiresOn.getTime(), expiresOn.getTime());
      assert.deepEqual([...k.keyOperations], ["verify"]);
      assert.ok(k.properties.updatedOn.getTime() >= k.properties.createdOn.getTime());
      assert.equal(k.properties.createdOn.getTime(), key.properties.createdOn.getTime(), "created does not change");
    }
    // Without a version the SDK sends PATCH /keys/{name}/ (empty version = latest).
    rec.clear();
    const latest = await client.updateKeyProperties(name, { enabled: true, tags: { d: "4" } });
    assert.deepEqual(rec.lines(), [`PATCH /keys/${name}/`]);
    assert.equal(latest.properties.enabled, true);
    assert.deepEqual(latest.properties.tags, { d: "4" });
    assert.deepEqual([...latest.keyOperations], ["verify"], "fields left out are kept");
    assert.equal(latest.properties.expiresOn.getTime(), expiresOn.getTime());
  });

  it("rejects updates of an unknown key with 404", async () => {
    await rejectsWithStatus(client.updateKeyProperties(uniqueName("missing"), { enabled: true }), 404, "KeyNotFound");
  });

  it("creates versions, rotates, and lists versions", async () => {
    const name = uniqueName("ver");
    const v1 = await client.createRsaKey(name, { keySize: 2048, tags: { gen: "1" } });
    const v2 = await client.createRsaKey(name, { keySize: 2048 });
    createdNames.add(name);
    assert.notEqual(v1.properties.version, v2.properties.version);
    assert.notDeepEqual([...v1.key.n], [...v2.key.n], "a new version has new key material");
    const v3 = await client.rotateKey(name);
    assert.equal(v3.name, name);
    assert.equal(v3.keyType, "RSA");
    assert.equal(v3.key.n.length, 256, "rotation keeps the key size");
    assert.notEqual(v3.properties.version, v2.properties.version);
    assert.notDeepEqual([...v3.key.n], [...v2.key.n]);
    assertKeyShape(v3, name, "RSA");
    assert.equal((await client.getKey(name)).id, v3.id, "the rotated version is the latest");
    assert.equal((await client.getKey(name, { version: v1.properties.version })).id, v1.id, "old versions stay readable");

    const versions = await collect(client.listPropertiesOfKeyVersions(name));
    assert.deepEqual(versions.map((p) => p.version).sort(), [v1, v2, v3].map((k) => k.properties.version).sort());
    for (const p of versions) {
      assert.equal(p.id, `${VAULT_URL}/keys/${name}/${p.version}`);
      assert.equal(p.name, name);
      assert.equal(p.enabled, true);
      assertRecentDate(p.createdOn, "createdOn");
    }
    const paged = await collectPages(client.listPropertiesOfKeyVersions(name).byPage({ maxPageSize: 1 }));
    assert.deepEqual(paged.pages.map((p) => p.length), [1, 1, 1], "maxresults=1 gives three pages of one");
    assert.deepEqual(paged.pages.flat().map((p) => p.version).sort(), versions.map((p) => p.version).sort());
    await rejectsWithStatus(client.rotateKey(uniqueName("missing")), 404, "KeyNotFound");
  });

  it("lists keys without versions in their ids, follows nextLink, and resumes from it", async () => {
    const all = await collect(client.listPropertiesOfKeys());
    const names = all.map((p) => p.name);
    assert.equal(new Set(names).size, names.length, "each key appears once");
    for (const n of createdNames) {
      assert.ok(names.includes(n), `list contains ${n}`);
    }
    for (const p of all.filter((q) => q.name.includes(RUN_ID))) {
      assert.equal(p.id, `${VAULT_URL}/keys/${p.name}`, "list items carry the key id without a version");
      assert.equal(p.version, undefined);
      assert.equal(typeof p.enabled, "boolean");
      assertRecentDate(p.createdOn, "createdOn");
      assert.ok(RECOVERY_LEVELS.includes(p.recoveryLevel));
    }
    const tagged = all.find((p) => p.name.startsWith("opts-") && p.name.includes(RUN_ID));
    assert.deepEqual(tagged.tags, { team: "data", "cost-center": "42" }, "list items carry tags");

    rec.clear();
    const { pages } = await collectPages(client.listPropertiesOfKeys().byPage({ maxPageSize: 2 }));
    assert.ok(pages.length >= Math.ceil(all.length / 2), `${pages.length} pages for ${all.length} keys`);
    for (const p of pages) {
      assert.ok(p.length <= 2, "no page is larger than maxresults");
    }
    assert.deepEqual(pages.flat().map((p) => p.name).sort(), [...names].sort(), "the pages add up to the list");
    const urls = rec.requests.map((r) => new URL(r.url));
    assert.equal(urls[0].pathname, "/keys");
    assert.equal(urls[0].searchParams.get("maxresults"), "2");
    assert.ok(urls.length >= 2, "the SDK followed nextLink");
    for (const u of urls.slice(1)) {
      assert.equal(u.origin, new URL(VAULT_URL).origin, "nextLink is an absolute URL on the vault");
      assert.ok(u.searchParams.get("api-version"), "every page request has an api-version");
    }
    // Resume from the nextLink of the first page (the continuation token of this SDK).
    const resumed = await client.listPropertiesOfKeys().byPage({ continuationToken: rec.requests[1].url }).next();
    assert.deepEqual(resumed.value.map((p) => p.name), pages[1].map((p) => p.name));
  });
});

describe("cryptography: RSA", () => {
  const plaintext = Buffer.from("Cloister interop: 32 bytes, ok!!");
  const styles = {
    // A client from a key id (the SDK GETs the key, then works locally where it can) ...
    2048: (key) => new CryptographyClient(key.id, cred, clientOptions(rec)),
    // ... one sharing the KeyClient's pipeline, with a version-less key URL (remote ops go to
    // /keys/{name}//{op}: an empty version segment) ...
    3072: (key) => client.getCryptographyClient(key.name),
    // ... and one from a KeyVaultKey (no GET at all).
    4096: (key) => new CryptographyClient(key, cred, clientOptions(rec)),
  };
  for (const size of [2048, 3072, 4096]) {
    describe(`RSA ${size}`, () => {
      let key;
      let cc;
      before(() => {
        key = made.rsa[size];
        assert.ok(key, `the RSA ${size} key was created`);
        cc = styles[size](key);
      });

      it("RSA-OAEP: encrypts locally, the vault decrypts; tampering is refused", async () => {
        rec.clear();
        const enc = await cc.encrypt({ algorithm: "RSA-OAEP", plaintext });
        assert.deepEqual(sent("encrypt"), [], "RSA-OAEP encryption is done locally by the SDK");
        assert.equal(enc.result.length, size / 8);
        const dec = await cc.decrypt({ algorithm: "RSA-OAEP", ciphertext: enc.result });
        assert.equal(sent("decrypt").length, 1, "decryption goes to the vault");
        assert.deepEqual(Buffer.from(dec.result), plaintext);
        await rejectsWithStatus(cc.decrypt({ algorithm: "RSA-OAEP", ciphertext: flip(enc.result, 7) }), 400);
        await rejectsWithStatus(cc.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: enc.result }), 400);
      });

      it("RSA-OAEP-256: the vault encrypts and decrypts, and decrypts node's own ciphertext", async () => {
        rec.clear();
        const enc = await cc.encrypt({ algorithm: "RSA-OAEP-256", plaintext });
        assert.equal(sent("encrypt").length, 1, "RSA-OAEP-256 is not done locally");
        assert.equal(enc.result.length, size / 8);
        assert.deepEqual(Buffer.from((await cc.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: enc.result })).result), plaintext);
        const mine = crypto.publicEncrypt({ key: publicKeyOf(key), padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, plaintext);
        assert.deepEqual(Buffer.from((await cc.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: mine })).result), plaintext);
        // The vault's ciphertext is really OAEP-256 under this key: node cannot tell, but the
        // vault must not decrypt it as plain OAEP (SHA-1).
        await rejectsWithStatus(cc.decrypt({ algorithm: "RSA-OAEP", ciphertext: mine }), 400);
      });

      it("wrapKey RSA-OAEP locally / unwrapKey in the vault; RSA-OAEP-256 both in the vault", async () => {
        const cek = crypto.randomBytes(32);
        rec.clear();
        const w1 = await cc.wrapKey("RSA-OAEP", cek);
        assert.deepEqual(sent("wrapkey"), [], "RSA-OAEP wrapping is done locally by the SDK");
        assert.deepEqual(Buffer.from((await cc.unwrapKey("RSA-OAEP", w1.result)).result), cek);
        assert.equal(sent("unwrapkey").length, 1);
        rec.clear();
        const w2 = await cc.wrapKey("RSA-OAEP-256", cek);
        assert.equal(sent("wrapkey").length, 1);
        assert.equal(w2.result.length, size / 8);
        assert.deepEqual(Buffer.from((await cc.unwrapKey("RSA-OAEP-256", w2.result)).result), cek);
        await rejectsWithStatus(cc.unwrapKey("RSA-OAEP-256", flip(w2.result, 3)), 400);
      });

      for (const alg of ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]) {
        it(`${alg}: the vault signs a digest and verifies; node agrees; a bad signature is false`, async () => {
          const data = Buffer.from(`message for ${alg} ${size}`);
          const digest = sha(HASH_OF[alg], data);
          rec.clear();
          const sig = await cc.sign(alg, digest);
          assert.equal(sent("sign").length, 1);
          assert.equal(sig.result.length, size / 8);
          const pss = alg.startsWith("PS");
          const nodeOk = crypto.verify(HASH_OF[alg], data, {
            key: publicKeyOf(key),
            padding: pss ? crypto.constants.RSA_PKCS1_PSS_PADDING : crypto.constants.RSA_PKCS1_PADDING,
            saltLength: pss ? crypto.constants.RSA_PSS_SALTLEN_DIGEST : undefined,
          }, sig.result);
          assert.equal(nodeOk, true, "node verifies the vault's signature (PSS salt length = digest length)");
          const v = await cc.verify(alg, digest, sig.result);
          assert.equal(v.result, true);
          assert.equal(sent("verify").length, 1, "verify (of a digest) goes to the vault");
          assert.equal((await cc.verify(alg, digest, flip(sig.result, 11))).result, false, "a bad signature verifies as false (200, not an error)");
          assert.equal((await cc.verify(alg, flip(digest), sig.result)).result, false);
        });
      }

      it("signData in the vault, verifyData locally (RS256)", async () => {
        const data = Buffer.from("signData / verifyData");
        rec.clear();
        const sig = await cc.signData("RS256", data);
        assert.equal(sent("sign").length, 1, "signData hashes locally and sends the digest");
        const ok = await cc.verifyData("RS256", data, sig.result);
        assert.equal(ok.result, true);
        assert.equal(sent("verify").length, 0, "RS256 verifyData is done locally by the SDK");
        assert.equal((await cc.verifyData("RS256", flip(data), sig.result)).result, false);
      });

      it("refuses wrong algorithms and digest sizes with 400", async () => {
        await rejectsWithStatus(cc.sign("RS256", crypto.randomBytes(20)), 400);
        await rejectsWithStatus(cc.sign("ES256", crypto.randomBytes(32)), 400);
        await rejectsWithStatus(cc.encrypt({ algorithm: "A128GCM", plaintext }), 400);
      });
    });
  }
});

describe("cryptography: EC", () => {
  for (const [crv, { alg, bytes }] of Object.entries(EC_SIZES)) {
    it(`${crv}: ${alg} sign and verify in the vault (raw r||s); node agrees; wrong algorithm refused`, async () => {
      const key = made.ec[crv];
      assert.ok(key, `the ${crv} key was created`);
      const cc = client.getCryptographyClient(key.name, { keyVersion: key.properties.version });
      const data = Buffer.from(`message for ${crv}`);
      const digest = sha(HASH_OF[alg], data);
      rec.clear();
      const sig = await cc.sign(alg, digest);
      assert.equal(sig.result.length, 2 * bytes, "the signature is r||s, each the size of the curve's order");
      assert.ok(crypto.verify(HASH_OF[alg], data, { key: publicKeyOf(key), dsaEncoding: "ieee-p1363" }, sig.result), "node verifies it");
      assert.equal((await cc.verify(alg, digest, sig.result)).result, true);
      assert.equal((await cc.verify(alg, digest, flip(sig.result, 5))).result, false);
      const mine = crypto.sign(HASH_OF[alg], data, { key: crypto.generateKeyPairSync("ec", { namedCurve: crv }).privateKey, dsaEncoding: "ieee-p1363" });
      assert.equal((await cc.verify(alg, digest, mine)).result, false, "a signature by another key is false");
      const sd = await cc.signData(alg, data);
      assert.equal((await cc.verifyData(alg, data, sd.result)).result, true);
      assert.equal(sent("verify").length, 4, "EC verification always goes to the vault");
      const other = alg === "ES256" ? "ES384" : "ES256";
      await rejectsWithStatus(cc.sign(other, sha(HASH_OF[other], data)), 400);
      rec.clear();
      await assert.rejects(cc.encrypt({ algorithm: "RSA-OAEP", plaintext: data }), /Operation encrypt is not supported/,
        "key_ops of an EC key lack encrypt: the SDK refuses locally");
      assert.deepEqual(rec.lines().filter((l) => l.startsWith("POST")), []);
    });
  }
});

describe("cryptography: oct (AES)", () => {
  for (const size of [128, 192, 256]) {
    it(`${size}: A${size}GCM encrypt/decrypt with and without AAD, A${size}KW wrap/unwrap, tampering refused`, async () => {
      const key = made.oct[size];
      assert.ok(key, `the oct ${size} key was created`);
      const cc = client.getCryptographyClient(key.name);
      const gcm = `A${size}GCM`;
      const kw = `A${size}KW`;
      const plaintext = Buffer.from("AES-GCM through the vault, 39 bytes...");
      rec.clear();
      const e1 = await cc.encrypt({ algorithm: gcm, plaintext });
      assert.equal(sent("encrypt").length, 1, "AES is always done by the vault");
      assert.equal(e1.iv.length, 12, "the vault generates a 96-bit IV");
      assert.equal(e1.authenticationTag.length, 16, "a 128-bit tag");
      assert.equal(e1.result.length, plaintext.length);
      const d1 = await cc.decrypt({ algorithm: gcm, ciphertext: e1.result, iv: e1.iv, authenticationTag: e1.authenticationTag });
      assert.deepEqual(Buffer.from(d1.result), plaintext);
      const e2 = await cc.encrypt({ algorithm: gcm, plaintext });
      assert.notDeepEqual(Buffer.from(e2.iv), Buffer.from(e1.iv), "a fresh IV per encryption");

      const aad = Buffer.from("header bound to the ciphertext");
      const e3 = await cc.encrypt({ algorithm: gcm, plaintext, additionalAuthenticatedData: aad });
      const d3 = await cc.decrypt({ algorithm: gcm, ciphertext: e3.result, iv: e3.iv, authenticationTag: e3.authenticationTag, additionalAuthenticatedData: aad });
      assert.deepEqual(Buffer.from(d3.result), plaintext);
      await rejectsWithStatus(cc.decrypt({ algorithm: gcm, ciphertext: e3.result, iv: e3.iv, authenticationTag: e3.authenticationTag, additionalAuthenticatedData: flip(aad) }), 400);
      await rejectsWithStatus(cc.decrypt({ algorithm: gcm, ciphertext: e3.result, iv: e3.iv, authenticationTag: e3.authenticationTag }), 400);
      await rejectsWithStatus(cc.decrypt({ algorithm: gcm, ciphertext: e1.result, iv: e1.iv, authenticationTag: flip(e1.authenticationTag) }), 400);
      await rejectsWithStatus(cc.decrypt({ algorithm: gcm, ciphertext: flip(e1.result), iv: e1.iv, authenticationTag: e1.authenticationTag }), 400);
      await rejectsWithStatus(cc.decrypt({ algorithm: gcm, ciphertext: e1.result, iv: flip(e1.iv), authenticationTag: e1.authenticationTag }), 400);

      for (const len of [16, 24, 32]) {
        const cek = crypto.randomBytes(len);
        const w = await cc.wrapKey(kw, cek);
        assert.equal(w.result.length, len + 8, "RFC 3394 adds 8 bytes");
        assert.deepEqual(Buffer.from((await cc.unwrapKey(kw, w.result)).result), cek);
        await rejectsWithStatus(cc.unwrapKey(kw, flip(w.result, 9)), 400);
      }
      const wrongGcm = size === 256 ? "A128GCM" : "A256GCM";
      const wrongKw = size === 256 ? "A128KW" : "A256KW";
      await rejectsWithStatus(cc.encrypt({ algorithm: wrongGcm, plaintext }), 400);
      await rejectsWithStatus(cc.wrapKey(wrongKw, crypto.randomBytes(32)), 400);
      await rejectsWithStatus(cc.encrypt({ algorithm: "RSA-OAEP-256", plaintext }), 400);
      rec.clear();
      await assert.rejects(cc.sign("RS256", sha("sha256", "x")), /Operation sign is not supported/);
      assert.deepEqual(rec.lines().filter((l) => l.startsWith("POST")), []);
    });
  }
});

describe("key_ops enforced by the vault", () => {
  it("refuses an operation the key no longer allows even when the SDK's copy is stale", async () => {
    const name = uniqueName("ops");
    const key = await client.createRsaKey(name, { keySize: 2048 });
    createdNames.add(name);
    const stale = new CryptographyClient(key, cred, clientOptions(rec)); // keeps the old key_ops
    await client.updateKeyProperties(name, key.properties.version, { keyOps: ["verify"] });
    await assert.rejects(stale.sign("RS256", sha("sha256", "x")), (err) => {
      assert.ok([400, 403].includes(err.statusCode), `sign without the sign op is refused with 403 (or 400), got ${err.statusCode}`);
      return true;
    });
    await assert.rejects(stale.unwrapKey("RSA-OAEP", crypto.randomBytes(256)), (err) => [400, 403].includes(err.statusCode));
  });
});

describe("backup and restore", () => {
  it("backs up all versions, restores them after a purge, and refuses conflicts and garbage", async () => {
    const name = uniqueName("bak");
    const v1 = await client.createRsaKey(name, { keySize: 2048, tags: { keep: "me" } });
    const v2 = await client.rotateKey(name);
    const cc1 = client.getCryptographyClient(name, { keyVersion: v1.properties.version });
    const secret = Buffer.from("decryptable after restore");
    const ct = (await cc1.encrypt({ algorithm: "RSA-OAEP", plaintext: secret })).result;

    const backup = await client.backupKey(name);
    assert.ok(backup instanceof Uint8Array && backup.length > 0, "backupKey returns bytes");
    await rejectsWithStatus(client.restoreKeyBackup(backup), 409);

    await (await client.beginDeleteKey(name, { intervalInMs: 50 })).pollUntilDone();
    await rejectsWithStatus(client.restoreKeyBackup(backup), 409); // the name is soft-deleted
    await client.purgeDeletedKey(name);
    await rejectsWithStatus(client.getKey(name), 404);
    await rejectsWithStatus(client.backupKey(name), 404);

    await rejectsWithStatus(client.restoreKeyBackup(flip(backup, Math.floor(backup.length / 2))), 400);
    await rejectsWithStatus(client.restoreKeyBackup(Buffer.from("not a backup")), 400);
    const restored = await client.restoreKeyBackup(backup);
    assert.equal(restored.name, name);
    assert.equal(restored.id, v2.id, "restore brings back the same version ids");
    assert.deepEqual(restored.properties.tags, v2.properties.tags);
    const versions = await collect(client.listPropertiesOfKeyVersions(name));
    assert.deepEqual(versions.map((p) => p.version).sort(), [v1.properties.version, v2.properties.version].sort());
    assert.deepEqual(Buffer.from((await cc1.decrypt({ algorithm: "RSA-OAEP", ciphertext: ct })).result), secret, "the restored key material is the same");
    createdNames.add(name);
  });
});

describe("soft delete, recover, purge", () => {
  it("deletes (poller done at once), recovers, deletes again and purges", async () => {
    const name = uniqueName("del");
    const key = await client.createEcKey(name, { curve: "P-384", tags: { x: "y" } });

    rec.clear();
    const poller = await client.beginDeleteKey(name, { intervalInMs: 50 });
    const deleted = await poller.pollUntilDone();
    assert.deepEqual(rec.lines().slice(0, 2), [`DELETE /keys/${name}`, `GET /deletedkeys/${name}`],
      "the delete poller sends DELETE, then GETs the deleted key until it is 200");
    assert.equal(deleted.name, name);
    assert.equal(deleted.id, key.id, "the deleted key bundle carries the kid of the latest version");
    assert.equal(deleted.properties.recoveryId, `${VAULT_URL}/deletedkeys/${name}`);
    assertRecentDate(deleted.properties.deletedOn, "deletedOn");
    assert.ok(deleted.properties.scheduledPurgeDate > deleted.properties.deletedOn, "scheduledPurgeDate is after deletedOn");
    assert.deepEqual(deleted.properties.tags, { x: "y" });

    await rejectsWithStatus(client.getKey(name), 404, "KeyNotFound");
    await rejectsWithStatus(client.getCryptographyClient(name).sign("ES384", sha("sha384", "x")), 404);
    await rejectsWithStatus(client.createEcKey(name), 409);
    await rejectsWithStatus((async () => (await client.beginDeleteKey(name, { intervalInMs: 50 })).pollUntilDone())(), 404, "KeyNotFound");

    const got = await client.getDeletedKey(name);
    assert.equal(got.properties.recoveryId, `${VAULT_URL}/deletedkeys/${name}`);
    assert.equal(got.id, key.id);
    assert.equal(got.key.crv, "P-384");
    assert.equal(got.properties.deletedOn.getTime(), deleted.properties.deletedOn.getTime());

    const listed = await collect(client.listDeletedKeys());
    const mine = listed.find((d) => d.name === name);
    assert.ok(mine, "listDeletedKeys contains the key");
    assert.equal(mine.properties.recoveryId, `${VAULT_URL}/deletedkeys/${name}`);
    assertRecentDate(mine.properties.deletedOn, "deletedOn");
    assert.ok(mine.properties.scheduledPurgeDate instanceof Date);
    const onePer = await collectPages(client.listDeletedKeys().byPage({ maxPageSize: 1 }));
    assert.ok(onePer.pages.every((p) => p.length <= 1));
    assert.equal(onePer.pages.flat().length, listed.length);

    rec.clear();
    const rpoller = await client.beginRecoverDeletedKey(name, { intervalInMs: 50 });
    const recovered = await rpoller.pollUntilDone();
    assert.deepEqual(rec.lines().slice(0, 3), [`GET /keys/${name}/`, `POST /deletedkeys/${name}/recover`, `GET /keys/${name}/`],
      "the recover poller GETs the key (404), recovers, then GETs the key until it is 200");
    assert.equal(recovered.id, key.id, "recovery brings back the same version");
    assert.equal((await client.getKey(name)).id, key.id);
    await rejectsWithStatus(client.getDeletedKey(name), 404, "KeyNotFound");
    await rejectsWithStatus(client.purgeDeletedKey(name), 404);

    await (await client.beginDeleteKey(name, { intervalInMs: 50 })).pollUntilDone();
    rec.clear();
    await client.purgeDeletedKey(name);
    assert.deepEqual(rec.requests.map((r) => [r.method, r.status]), [["DELETE", 204]], "purge answers 204");
    await rejectsWithStatus(client.getDeletedKey(name), 404, "KeyNotFound");
    assert.equal((await collect(client.listDeletedKeys())).find((d) => d.name === name), undefined);
    await rejectsWithStatus(client.purgeDeletedKey(name), 404);
    const again = await client.createEcKey(name, { curve: "P-256" });
    assert.notEqual(again.id, key.id, "after a purge the name is free and starts over");
    assert.equal((await collect(client.listPropertiesOfKeyVersions(name))).length, 1);
    createdNames.add(name);
  });

  it("answers 404 for recovering or purging a key that is not deleted", async () => {
    await rejectsWithStatus(client.getDeletedKey(uniqueName("missing")), 404, "KeyNotFound");
    await rejectsWithStatus(client.purgeDeletedKey(uniqueName("missing")), 404);
    const r = await rawRequest("POST", `/deletedkeys/${uniqueName("missing")}/recover?api-version=${API_VERSION}`, {
      headers: { authorization: `Bearer ${process.env.CLOISTER_TOKEN}` },
    });
    assert.equal(r.status, 404);
  });
});

describe("random bytes", () => {
  it("returns the requested number of random bytes, 1..128", async () => {
    const a = await client.getRandomBytes(32);
    const b = await client.getRandomBytes(32);
    assert.ok(a instanceof Uint8Array);
    assert.equal(a.length, 32);
    assert.notDeepEqual(Buffer.from(a), Buffer.from(b));
    assert.equal((await client.getRandomBytes(1)).length, 1);
    assert.equal((await client.getRandomBytes(128)).length, 128);
    await rejectsWithStatus(client.getRandomBytes(0), 400);
    await rejectsWithStatus(client.getRandomBytes(129), 400);
  });
});
