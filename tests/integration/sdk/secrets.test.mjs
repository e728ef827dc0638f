// The official @azure/keyvault-secrets SDK against `cloister serve`: set / get / update / list /
// versions / delete / recover / purge, with paging, disabled secrets and error shapes.
//
// Env: CLOISTER_URL, CLOISTER_TOKEN, NODE_EXTRA_CA_CERTS (see common.mjs, ../sdk_interop.sh).
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { describe, it } from "node:test";

import { SecretClient } from "@azure/keyvault-secrets";

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

const API_VERSION = "2025-07-01"; // what @azure/keyvault-secrets 4.11.2 sends (LATEST_API_VERSION)
const rec = recorder();
const client = new SecretClient(VAULT_URL, tokenCredential(), clientOptions(rec));
const createdNames = new Set();

function assertSecretProperties(p, name) {
  assert.equal(p.name, name);
  assert.match(p.version ?? "", /^[0-9a-f]{32}$/, "the version is 32 lowercase hex characters");
  assert.equal(p.id, `${VAULT_URL}/secrets/${name}/${p.version}`, "id is https://host/secrets/name/version");
  assert.equal(p.vaultUrl, VAULT_URL);
  assert.equal(typeof p.enabled, "boolean");
  assertRecentDate(p.createdOn, "createdOn");
  assertRecentDate(p.updatedOn, "updatedOn");
  assert.ok(RECOVERY_LEVELS.includes(p.recoveryLevel), `recoveryLevel ${p.recoveryLevel} is a known value`);
  if (p.recoveryLevel.includes("Recoverable")) {
    assert.ok(Number.isInteger(p.recoverableDays) && p.recoverableDays >= 7 && p.recoverableDays <= 90);
  }
}

describe("authentication", () => {
  it("answers an unauthenticated request with 401 and the Bearer challenge", async () => {
    const r = await rawRequest("GET", `/secrets?api-version=${API_VERSION}`);
    assert.equal(r.status, 401);
    assert.match(r.headers["www-authenticate"] ?? "", /^Bearer authorization="[^"]+", resource="[^"]+"$/);
    assert.equal(typeof r.json?.error?.code, "string");
  });

  it("answers a PUT without a body (the SDK's first request) with 401, then accepts the retry", async () => {
    const r = await rawRequest("PUT", `/secrets/${uniqueName("noauth")}?api-version=${API_VERSION}`, {
      headers: { "content-type": "application/json", "content-length": "0" },
    });
    assert.equal(r.status, 401);
    const fresh = recorder();
    const sc = new SecretClient(VAULT_URL, tokenCredential(), clientOptions(fresh));
    const name = uniqueName("first");
    const s = await sc.setSecret(name, "first request");
    createdNames.add(name);
    assert.equal(s.value, "first request");
    assert.deepEqual(fresh.requests.map((q) => [q.method, q.authorized, q.status]), [["PUT", false, 401], ["PUT", true, 200]]);
  });

  it("rejects a token it did not issue", async () => {
    const wrong = new SecretClient(VAULT_URL, tokenCredential("not-a-cloister-token"), clientOptions());
    await rejectsWithStatus(wrong.getSecret("anything"), 401);
  });
});

describe("set, get, update", () => {
  it("sets a secret and gets it back, latest and by version", async () => {
    const name = uniqueName("s");
    const s = await client.setSecret(name, "hunter2");
    createdNames.add(name);
    assert.equal(s.name, name);
    assert.equal(s.value, "hunter2");
    assertSecretProperties(s.properties, name);
    assert.equal(s.properties.enabled, true);
    const latest = await client.getSecret(name);
    assert.equal(latest.value, "hunter2");
    assert.equal(latest.properties.id, s.properties.id);
    const pinned = await client.getSecret(name, { version: s.properties.version });
    assert.equal(pinned.value, "hunter2");
  });

  it("keeps content type, tags, dates and disabled state; values may be unicode and large", async () => {
    const name = uniqueName("opts");
    const notBefore = wholeSeconds(new Date(Date.now() - 3600 * 1000));
    const expiresOn = wholeSeconds(new Date(Date.now() + 86400 * 1000));
    const value = `ünïcødé ✓ 密钥 ${"x".repeat(20000)}`;
    const s = await client.setSecret(name, value, {
      contentType: "text/plain; charset=utf-8",
      tags: { env: "test", owner: "cloister" },
      notBefore,
      expiresOn,
    });
    createdNames.add(name);
    for (const got of [s, await client.getSecret(name)]) {
      assert.equal(got.value, value);
      assert.equal(got.properties.contentType, "text/plain; charset=utf-8");
      assert.deepEqual(got.properties.tags, { env: "test", owner: "cloister" });
      assert.equal(got.properties.notBefore.getTime(), notBefore.getTime());
      assert.equal(got.properties.expiresOn.getTime(), expiresOn.getTime());
    }
    const disabledName = uniqueName("off");
    const off = await client.setSecret(disabledName, "not readable", { enabled: false });
    createdNames.add(disabledName);
    assert.equal(off.properties.enabled, false);
    await rejectsWithStatus(client.getSecret(disabledName), 403);
  });

  it("creates versions and lists them", async () => {
    const name = uniqueName("ver");
    const v1 = await client.setSecret(name, "one");
    const v2 = await client.setSecret(name, "two");
    const v3 = await client.setSecret(name, "three");
    createdNames.add(name);
    assert.equal(new Set([v1, v2, v3].map((s) => s.properties.version)).size, 3);
    assert.equal((await client.getSecret(name)).value, "three");
    assert.equal((await client.getSecret(name, { version: v1.properties.version })).value, "one");
    const versions = await collect(client.listPropertiesOfSecretVersions(name));
    assert.deepEqual(versions.map((p) => p.version).sort(), [v1, v2, v3].map((s) => s.properties.version).sort());
    for (const p of versions) {
      assertSecretProperties(p, name);
    }
    const paged = await collectPages(client.listPropertiesOfSecretVersions(name).byPage({ maxPageSize: 2 }));
    assert.deepEqual(paged.pages.map((p) => p.length), [2, 1]);
    await rejectsWithStatus(client.getSecret(name, { version: "0123456789abcdef0123456789abcdef" }), 404, "SecretNotFound");
  });

  it("updates the properties of a version and of the latest (empty version)", async () => {
    const name = uniqueName("upd");
    const v1 = await client.setSecret(name, "v1", { tags: { a: "1" }, contentType: "text/plain" });
    const v2 = await client.setSecret(name, "v2");
    createdNames.add(name);
    const expiresOn = wholeSeconds(new Date(Date.now() + 30 * 86400 * 1000));
    const p1 = await client.updateSecretProperties(name, v1.properties.version, {
      enabled: false,
      tags: { b: "2" },
      contentType: "application/json",
      expiresOn,
    });
    assert.equal(p1.id, v1.properties.id, "an update keeps the version");
    assert.equal(p1.enabled, false);
    assert.deepEqual(p1.tags, { b: "2" }, "tags are replaced, not merged");
    assert.equal(p1.contentType, "application/json");
    assert.equal(p1.expiresOn.getTime(), expiresOn.getTime());
    assert.equal(p1.createdOn.getTime(), v1.properties.createdOn.getTime());
    await rejectsWithStatus(client.getSecret(name, { version: v1.properties.version }), 403);
    assert.equal((await client.getSecret(name)).value, "v2", "other versions are untouched");

    rec.clear();
    const p2 = await client.updateSecretProperties(name, "", { tags: { latest: "yes" } });
    assert.deepEqual(rec.lines(), [`PATCH /secrets/${name}/`]);
    assert.equal(p2.id, v2.properties.id);
    assert.deepEqual(p2.tags, { latest: "yes" });
    assert.equal(p2.enabled, true, "fields left out are kept");

    const back = await client.updateSecretProperties(name, v1.properties.version, { enabled: true });
    assert.equal(back.enabled, true);
    assert.equal(back.contentType, "application/json");
    assert.equal((await client.getSecret(name, { version: v1.properties.version })).value, "v1");
  });

  it("answers 404 SecretNotFound and 400 for bad names", async () => {
    await rejectsWithStatus(client.getSecret(uniqueName("missing")), 404, "SecretNotFound");
    await rejectsWithStatus(client.updateSecretProperties(uniqueName("missing"), "", { enabled: true }), 404, "SecretNotFound");
    await rejectsWithStatus(client.setSecret("bad_name", "x"), 400);
    const r = await rawRequest("GET", `/secrets/${uniqueName("missing")}/?api-version=${API_VERSION}`, {
      headers: { authorization: `Bearer ${process.env.CLOISTER_TOKEN}` },
    });
    assert.equal(r.status, 404);
    assert.match(r.headers["content-type"] ?? "", /^application\/json/);
    assert.equal(r.json?.error?.code, "SecretNotFound");
  });
});

describe("list", () => {
  it("lists secrets without values or versions, page by page", async () => {
    const listNames = [];
    for (let i = 0; i < 3; i++) {
      const name = uniqueName("list");
      await client.setSecret(name, `v${i}`, { tags: { i: String(i) } });
      createdNames.add(name);
      listNames.push(name);
    }
    const all = await collect(client.listPropertiesOfSecrets());
    const names = all.map((p) => p.name);
    assert.equal(new Set(names).size, names.length, "each secret appears once");
    for (const n of createdNames) {
      assert.ok(names.includes(n), `list contains ${n}`);
    }
    for (const p of all.filter((q) => q.name.includes(RUN_ID))) {
      assert.equal(p.id, `${VAULT_URL}/secrets/${p.name}`, "list items carry the secret id without a version");
      assert.equal(p.version, undefined);
      assertRecentDate(p.createdOn, "createdOn");
    }
    listNames.forEach((n, i) => assert.deepEqual(all.find((p) => p.name === n).tags, { i: String(i) }, "list items carry tags"));

    rec.clear();
    const { pages } = await collectPages(client.listPropertiesOfSecrets().byPage({ maxPageSize: 2 }));
    assert.ok(pages.length >= Math.ceil(all.length / 2));
    assert.ok(pages.every((p) => p.length <= 2));
    assert.deepEqual(pages.flat().map((p) => p.name).sort(), [...names].sort());
    assert.equal(new URL(rec.requests[0].url).searchParams.get("maxresults"), "2");
    // The raw list items carry no value.
    const raw = await rawRequest("GET", `/secrets?api-version=${API_VERSION}`, { headers: { authorization: `Bearer ${process.env.CLOISTER_TOKEN}` } });
    assert.equal(raw.status, 200);
    assert.ok(Array.isArray(raw.json.value));
    for (const item of raw.json.value) {
      assert.equal(item.value, undefined, "list items never carry the secret value");
      assert.equal(typeof item.id, "string");
    }
  });
});

describe("soft delete, recover, purge", () => {
  it("deletes, recovers, deletes again and purges", async () => {
    const name = uniqueName("del");
    const s = await client.setSecret(name, "deleted soon", { tags: { t: "1" } });

    rec.clear();
    const deleted = await (await client.beginDeleteSecret(name, { intervalInMs: 50 })).pollUntilDone();
    assert.deepEqual(rec.lines().slice(0, 2), [`DELETE /secrets/${name}`, `GET /deletedsecrets/${name}`]);
    assert.equal(deleted.name, name);
    assert.equal(deleted.properties.recoveryId, `${VAULT_URL}/deletedsecrets/${name}`);
    assert.equal(deleted.properties.id, s.properties.id);
    assertRecentDate(deleted.properties.deletedOn, "deletedOn");
    assert.ok(deleted.properties.scheduledPurgeDate > deleted.properties.deletedOn);
    assert.equal(deleted.value, undefined, "a deleted secret bundle carries no value");

    await rejectsWithStatus(client.getSecret(name), 404, "SecretNotFound");
    await rejectsWithStatus(client.setSecret(name, "x"), 409);
    const got = await client.getDeletedSecret(name);
    assert.equal(got.properties.recoveryId, `${VAULT_URL}/deletedsecrets/${name}`);
    assert.deepEqual(got.properties.tags, { t: "1" });
    const listed = await collect(client.listDeletedSecrets());
    const mine = listed.find((d) => d.name === name);
    assert.ok(mine, "listDeletedSecrets contains the secret");
    assert.equal(mine.properties.recoveryId, `${VAULT_URL}/deletedsecrets/${name}`);
    assertRecentDate(mine.properties.deletedOn, "deletedOn");
    const onePer = await collectPages(client.listDeletedSecrets().byPage({ maxPageSize: 1 }));
    assert.ok(onePer.pages.every((p) => p.length <= 1));
    assert.equal(onePer.pages.flat().length, listed.length);

    rec.clear();
    const recovered = await (await client.beginRecoverDeletedSecret(name, { intervalInMs: 50 })).pollUntilDone();
    assert.deepEqual(rec.lines().slice(0, 3), [`GET /secrets/${name}/`, `POST /deletedsecrets/${name}/recover`, `GET /secrets/${name}/`]);
    assert.equal(recovered.id, s.properties.id);
    assert.equal((await client.getSecret(name)).value, "deleted soon");
    await rejectsWithStatus(client.getDeletedSecret(name), 404, "SecretNotFound");

    await (await client.beginDeleteSecret(name, { intervalInMs: 50 })).pollUntilDone();
    rec.clear();
    await client.purgeDeletedSecret(name);
    assert.deepEqual(rec.requests.map((r) => [r.method, r.status]), [["DELETE", 204]]);
    await rejectsWithStatus(client.getDeletedSecret(name), 404, "SecretNotFound");
    await rejectsWithStatus(client.purgeDeletedSecret(name), 404);
    const again = await client.setSecret(name, "reborn");
    assert.notEqual(again.properties.id, s.properties.id);
    assert.equal((await collect(client.listPropertiesOfSecretVersions(name))).length, 1);
  });

  it("answers 404 for deleting, recovering or purging what is not there", async () => {
    await rejectsWithStatus((async () => (await client.beginDeleteSecret(uniqueName("missing"), { intervalInMs: 50 })).pollUntilDone())(), 404, "SecretNotFound");
    await rejectsWithStatus(client.getDeletedSecret(uniqueName("missing")), 404, "SecretNotFound");
    await rejectsWithStatus(client.purgeDeletedSecret(uniqueName("missing")), 404);
    const r = await rawRequest("POST", `/deletedsecrets/${uniqueName("missing")}/recover?api-version=${API_VERSION}`, {
      headers: { authorization: `Bearer ${process.env.CLOISTER_TOKEN}` },
    });
    assert.equal(r.status, 404);
    assert.equal(typeof r.json?.error?.code, "string");
  });

  it("keeps secrets apart from keys", async () => {
    const name = uniqueName("both");
    await client.setSecret(name, crypto.randomBytes(8).toString("hex"));
    createdNames.add(name);
    const r = await rawRequest("GET", `/keys/${name}/?api-version=${API_VERSION}`, { headers: { authorization: `Bearer ${process.env.CLOISTER_TOKEN}` } });
    assert.equal(r.status, 404, "a secret is not a key");
  });
});
