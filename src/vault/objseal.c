/*
 * Sealing of stored values: each value gets its own random 32-byte key (AES-256-GCM, random
 * 96-bit nonce: one message per key, so nonce reuse cannot happen), the key is wrapped by the
 * master-key provider, and the AAD binds the value to its (kind, name, version), so a value
 * copied into another row, or a row renamed, does not open.
 *
 * A stored row is hostile input: every size read back is checked before use, and any failure to
 * open is reported as an integrity failure without distinguishing which part was wrong.
 */
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>

#include "vault/vault_int.h"

static const char AAD_LABEL[] = "cloister-vault-object";
#define AAD_MAX (64 + CLST_VAULT_NAME_MAX + CLST_VAULT_VERSION_SIZE)

void
clst_vault_sealed_cleanup(struct clst_vault_sealed *s)
{
    if (s == NULL) {
        return;
    }
    free(s->ct);
    memset(s, 0, sizeof(*s));
}

static enum clst_status
put_lp(struct clst_buf *b, const void *data, size_t size)
{
    uint8_t len[4];
    if (size > UINT32_MAX) {
        return CLST_E_LIMIT;
    }
    clst_put_be32(len, (uint32_t)size);
    enum clst_status rc = clst_buf_append(b, len, sizeof(len));
    if (rc == CLST_OK) {
        rc = clst_buf_append(b, data, size);
    }
    return rc;
}

enum clst_status
clst_vault_objseal_aad(uint8_t alg, enum clst_vault_kind kind, const char *name,
                       const char *version, struct clst_buf *out)
{
    enum clst_status rc = put_lp(out, AAD_LABEL, sizeof(AAD_LABEL) - 1);
    if (rc == CLST_OK) {
        rc = clst_buf_append_byte(out, alg);
    }
    if (rc == CLST_OK) {
        rc = clst_buf_append_byte(out, (uint8_t)kind);
    }
    if (rc == CLST_OK) {
        rc = put_lp(out, name, strlen(name));
    }
    if (rc == CLST_OK) {
        rc = put_lp(out, version, strlen(version));
    }
    return rc;
}

static bool
args_ok(const struct clst_vault_masterkey *mk, enum clst_vault_kind kind, const char *name,
        const char *version)
{
    return mk != NULL && (kind == CLST_VAULT_KIND_KEY || kind == CLST_VAULT_KIND_SECRET) &&
           name != NULL && version != NULL && strlen(name) <= CLST_VAULT_NAME_MAX &&
           strlen(version) <= CLST_VAULT_VERSION_SIZE;
}

enum clst_status
clst_vault_objseal_seal(struct clst_vault_masterkey *mk, enum clst_vault_kind kind,
                        const char *name, const char *version, const uint8_t *pt, size_t pt_size,
                        struct clst_vault_sealed *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    uint8_t key[CLST_VAULT_OBJECT_KEY_SIZE];
    struct clst_vault_sealed s;
    struct clst_buf aad;

    memset(&s, 0, sizeof(s));
    clst_buf_init(&aad, AAD_MAX);
    if (!args_ok(mk, kind, name, version) || (pt == NULL && pt_size > 0) || out == NULL) {
        rc = clst_err_set(err, CLST_E_INVAL, "sealing a value: invalid argument");
        goto out;
    }
    if (pt_size > CLST_VAULT_VALUE_MAX) {
        rc = clst_err_set(err, CLST_E_LIMIT, "the value is %zu bytes; at most %d can be stored",
                          pt_size, CLST_VAULT_VALUE_MAX);
        goto out;
    }
    s.alg = CLST_VAULT_SEAL_AES256GCM_V1;
    s.nonce_size = CLST_GCM_NONCE_SIZE;
    s.tag_size = CLST_GCM_TAG_SIZE;
    /* At least one byte so that an empty value still has a distinct allocation. */
    s.ct = malloc(pt_size > 0 ? pt_size : 1);
    if (s.ct == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory sealing a value");
        goto out;
    }
    s.ct_size = pt_size;
    rc = clst_random(key, sizeof(key));
    if (rc == CLST_OK) {
        rc = clst_random(s.nonce, s.nonce_size);
    }
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "no random bytes for sealing a value");
        goto out;
    }
    rc = clst_vault_objseal_aad(s.alg, kind, name, version, &aad);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "encoding the value's associated data failed");
        goto out;
    }
    rc = clst_aes_gcm_seal(key, sizeof(key), s.nonce, s.nonce_size, aad.data, aad.size, pt, pt_size,
                           s.ct, s.tag, s.tag_size);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "encrypting a value failed (%s)", clst_status_str(rc));
        goto out;
    }
    rc = clst_vault_masterkey_wrap(mk, key, sizeof(key), s.wrapped, sizeof(s.wrapped),
                                   &s.wrapped_size, err);
    if (rc != CLST_OK) {
        goto out;
    }
    memcpy(s.mk_id, clst_vault_masterkey_id(mk), strlen(clst_vault_masterkey_id(mk)) + 1);
    *out = s;
    memset(&s, 0, sizeof(s)); /* ownership of ct moved to out */
    rc = CLST_OK;
out:
    clst_wipe(key, sizeof(key));
    clst_buf_cleanup(&aad);
    clst_vault_sealed_cleanup(&s);
    return rc;
}

enum clst_status
clst_vault_objseal_open(struct clst_vault_masterkey *mk, enum clst_vault_kind kind,
                        const char *name, const char *version, const struct clst_vault_sealed *in,
                        struct clst_secret **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    uint8_t key[CLST_VAULT_OBJECT_KEY_SIZE];
    size_t key_size = 0;
    struct clst_secret *pt = NULL;
    struct clst_buf aad;
    const char *why = NULL;
    struct clst_err mkerr;

    clst_err_clear(&mkerr);
    clst_buf_init(&aad, AAD_MAX);
    if (!args_ok(mk, kind, name, version) || in == NULL || out == NULL) {
        rc = clst_err_set(err, CLST_E_INVAL, "opening a value: invalid argument");
        goto out;
    }
    /* Checks on the stored shape: each one is a sign that the row was altered. */
    if (in->alg != CLST_VAULT_SEAL_AES256GCM_V1) {
        why = "unknown sealing algorithm";
    } else if (in->nonce_size != CLST_GCM_NONCE_SIZE || in->tag_size != CLST_GCM_TAG_SIZE) {
        why = "nonce or tag of the wrong size";
    } else if (in->ct_size > CLST_VAULT_VALUE_MAX || (in->ct == NULL && in->ct_size > 0)) {
        why = "ciphertext of an impossible size";
    } else if (in->wrapped_size == 0 || in->wrapped_size > sizeof(in->wrapped)) {
        why = "wrapped key of an impossible size";
    } else if (strcmp(in->mk_id, clst_vault_masterkey_id(mk)) != 0) {
        /* The store has already checked the master key against the database, so this is
         * either an edited row or a value sealed under another master key. */
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the stored %s '%s' version %s failed its integrity check: it names "
                          "master key '%.64s', not the configured '%s' (possible tampering with "
                          "the vault database, or a value sealed under another master key)",
                          clst_vault_kind_name(kind), name, version, in->mk_id,
                          clst_vault_masterkey_id(mk));
        goto out;
    }
    if (why != NULL) {
        rc = CLST_E_VERIFY;
        goto out;
    }
    rc = clst_vault_masterkey_unwrap(mk, in->wrapped, in->wrapped_size, key, sizeof(key), &key_size,
                                     &mkerr);
    if (rc == CLST_E_VERIFY || rc == CLST_E_MALFORMED || rc == CLST_E_LIMIT ||
        (rc == CLST_OK && key_size != sizeof(key))) {
        why = "the object key does not unwrap under the master key";
        rc = CLST_E_VERIFY;
        goto out;
    }
    if (rc != CLST_OK) {
        /* The provider itself failed (an HSM that cannot be reached): not tampering. */
        rc = clst_err_set(err, rc, "unwrapping the key of %s '%s' failed: %s",
                          clst_vault_kind_name(kind), name, mkerr.msg);
        goto out;
    }
    rc = clst_vault_objseal_aad(in->alg, kind, name, version, &aad);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "encoding the value's associated data failed");
        goto out;
    }
    rc = clst_secret_new(in->ct_size, &pt);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "out of memory opening a value");
        goto out;
    }
    rc = clst_aes_gcm_open(key, sizeof(key), in->nonce, in->nonce_size, aad.data, aad.size, in->ct,
                           in->ct_size, in->tag, in->tag_size, pt->ptr);
    if (rc == CLST_E_VERIFY) {
        why = "the authentication tag does not match (ciphertext, nonce, tag, or the name, "
              "version or kind it is bound to, changed)";
        goto out;
    }
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "decrypting a value failed (%s)", clst_status_str(rc));
        goto out;
    }
    *out = pt;
    pt = NULL;
    rc = CLST_OK;
out:
    if (why != NULL) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the stored %s '%s' version %s failed its integrity check (possible "
                          "tampering with the vault database: %s); restore the database from a "
                          "backup and investigate",
                          clst_vault_kind_name(kind), name, version, why);
    }
    clst_wipe(key, sizeof(key));
    clst_secret_free(pt);
    clst_buf_cleanup(&aad);
    return rc;
}
