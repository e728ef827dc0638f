/*
 * The vault store's front end: everything that is the same whatever the backend. It validates
 * input, assigns versions and timestamps, seals values (objseal.c), authenticates every row a
 * backend returns with an HMAC under the database's integrity key, and issues and checks paging
 * tokens. Backends (store_sqlite.c) only move rows.
 *
 * The integrity key: 32 random bytes made when the database is first opened, stored in the meta
 * row "store.integrity_key" wrapped by the master key (with the master key's id, so a wrong key
 * is named as such), and unwrapped once at open. Two keys are derived from it with HKDF-SHA256:
 * one for row MACs, one for paging tokens.
 *
 * This file holds no mutable state after open, so it is thread-safe as long as the backend and
 * the master-key provider are.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, strnlen */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>

#include "vault/vault_int.h"

#define INTEGRITY_KEY_NAME    "store.integrity_key"
#define INTEGRITY_BLOB_FORMAT 1
#define RESERVED_META_PREFIX  "store."
#define DERIVED_KEY_SIZE      32
#define TOKEN_FORMAT          1
#define TOKEN_MAC_SIZE        16
#define TOKEN_BYTES_MAX       ((CLST_VAULT_TOKEN_MAX / 4) * 3)
#define LISTING_PRINCIPALS    4
#define MAC_INPUT_MAX         (256 * 1024)
#define CAS_ATTEMPTS          8
#define SECONDS_PER_DAY       86400
#define RETENTION_DAYS_MAX    365

struct clst_vault_store {
    const struct clst_vault_backend_ops *ops;
    void *be;
    struct clst_vault_masterkey *mk;
    const struct clst_clock *clock;
    /* [0, 32): row MAC key; [32, 64): paging token key. */
    struct clst_secret *keys;
};

static const uint8_t *
mac_key(const struct clst_vault_store *s)
{
    return s->keys->ptr;
}

static const uint8_t *
page_key(const struct clst_vault_store *s)
{
    return s->keys->ptr + DERIVED_KEY_SIZE;
}

/* ---- names and validation ------------------------------------------------------------------- */

const char *
clst_vault_kind_name(enum clst_vault_kind kind)
{
    switch (kind) {
    case CLST_VAULT_KIND_KEY:
        return "key";
    case CLST_VAULT_KIND_SECRET:
        return "secret";
    }
    return "object";
}

static bool
kind_valid(enum clst_vault_kind kind)
{
    return kind == CLST_VAULT_KIND_KEY || kind == CLST_VAULT_KIND_SECRET;
}

static bool
is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool
clst_vault_name_valid(const char *name)
{
    if (name == NULL) {
        return false;
    }
    size_t n = 0;
    for (; name[n] != '\0'; n++) {
        if (n >= CLST_VAULT_NAME_MAX || !(is_alnum(name[n]) || name[n] == '-')) {
            return false;
        }
    }
    return n > 0;
}

bool
clst_vault_version_valid(const char *version)
{
    if (version == NULL) {
        return false;
    }
    size_t n = 0;
    for (; version[n] != '\0'; n++) {
        char c = version[n];
        if (n >= CLST_VAULT_VERSION_SIZE || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return n == CLST_VAULT_VERSION_SIZE;
}

bool
clst_vault_scope_valid(const char *scope)
{
    if (scope == NULL) {
        return false;
    }
    if (strcmp(scope, "/") == 0) {
        return true;
    }
    if (strncmp(scope, "/keys/", 6) == 0) {
        return clst_vault_name_valid(scope + 6);
    }
    if (strncmp(scope, "/secrets/", 9) == 0) {
        return clst_vault_name_valid(scope + 9);
    }
    return false;
}

void
clst_vault_name_fold(const char *name, char out[static CLST_VAULT_NAME_MAX + 1])
{
    size_t i = 0;
    for (; name[i] != '\0' && i < CLST_VAULT_NAME_MAX; i++) {
        char c = name[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[i] = '\0';
}

/* 1..max characters, each allowed by `ok`. */
static bool
text_valid(const char *s, size_t max, bool (*ok)(char))
{
    if (s == NULL) {
        return false;
    }
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (n >= max || !ok(s[n])) {
            return false;
        }
    }
    return n > 0;
}

static bool
id_char(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

static bool
printable_char(char c)
{
    return c >= 0x20 && c <= 0x7e;
}

static bool
kty_char(char c)
{
    return is_alnum(c) || c == '-';
}

/* NULL, or at most max bytes. */
static bool
opt_text_fits(const char *s, size_t max)
{
    return s == NULL || strlen(s) <= max;
}

/* Copies a string known to fit. */
static void
copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- cleanup -------------------------------------------------------------------------------- */

void
clst_vault_object_cleanup(struct clst_vault_object *obj)
{
    if (obj == NULL) {
        return;
    }
    free(obj->tags);
    free(obj->key_ops);
    free(obj->public_data);
    free(obj->release_policy);
    free(obj->content_type);
    memset(obj, 0, sizeof(*obj));
}

void
clst_vault_object_list_cleanup(struct clst_vault_object_list *list)
{
    if (list == NULL) {
        return;
    }
    for (size_t i = 0; i < list->count; i++) {
        clst_vault_object_cleanup(&list->items[i]);
    }
    free(list->items);
    free(list->next);
    memset(list, 0, sizeof(*list));
}

void
clst_vault_principal_cleanup(struct clst_vault_principal *p)
{
    if (p == NULL) {
        return;
    }
    free(p->roles);
    clst_wipe(p->token_hash, sizeof(p->token_hash));
    memset(p, 0, sizeof(*p));
}

void
clst_vault_principal_list_cleanup(struct clst_vault_principal_list *list)
{
    if (list == NULL) {
        return;
    }
    for (size_t i = 0; i < list->count; i++) {
        clst_vault_principal_cleanup(&list->items[i]);
    }
    free(list->items);
    free(list->next);
    memset(list, 0, sizeof(*list));
}

void
clst_vault_version_row_cleanup(struct clst_vault_version_row *row)
{
    if (row == NULL) {
        return;
    }
    clst_vault_object_cleanup(&row->meta);
    clst_vault_sealed_cleanup(&row->seal);
    memset(row, 0, sizeof(*row));
}

/* ---- canonical encodings for MACs ----------------------------------------------------------- */

/* Every field has a fixed size or a length prefix, and optional text a presence byte, so the
 * encoding is injective. */
static enum clst_status
enc_lp(struct clst_buf *b, const void *data, size_t size)
{
    uint8_t len[4];
    if (size > UINT32_MAX) {
        return CLST_E_LIMIT;
    }
    clst_put_be32(len, (uint32_t)size);
    enum clst_status rc = clst_buf_append(b, len, sizeof(len));
    return rc == CLST_OK ? clst_buf_append(b, data, size) : rc;
}

static enum clst_status
enc_str(struct clst_buf *b, const char *s)
{
    return enc_lp(b, s, strlen(s));
}

static enum clst_status
enc_opt(struct clst_buf *b, const char *s)
{
    if (s == NULL) {
        return clst_buf_append_byte(b, 0);
    }
    enum clst_status rc = clst_buf_append_byte(b, 1);
    return rc == CLST_OK ? enc_str(b, s) : rc;
}

static enum clst_status
enc_i64(struct clst_buf *b, int64_t v)
{
    uint8_t be[8];
    clst_put_be64(be, (uint64_t)v);
    return clst_buf_append(b, be, sizeof(be));
}

static enum clst_status
enc_u8(struct clst_buf *b, unsigned v)
{
    return clst_buf_append_byte(b, (uint8_t)v);
}

static enum clst_status
finish_mac(const struct clst_vault_store *s, enum clst_status rc, struct clst_buf *b,
           uint8_t mac[static CLST_VAULT_MAC_SIZE])
{
    if (rc == CLST_OK) {
        rc = clst_hmac(CLST_HASH_SHA256, mac_key(s), DERIVED_KEY_SIZE, b->data, b->size, mac);
    }
    clst_buf_cleanup(b);
    return rc;
}

/* How object and version MACs start: a label, the kind and the case-folded name. */
static enum clst_status
enc_object_head(struct clst_buf *b, const char *label, enum clst_vault_kind kind, const char *name)
{
    char folded[CLST_VAULT_NAME_MAX + 1];
    clst_vault_name_fold(name, folded);
    enum clst_status rc = enc_str(b, label);
    if (rc == CLST_OK) {
        rc = enc_u8(b, (unsigned)kind);
    }
    if (rc == CLST_OK) {
        rc = enc_str(b, folded);
    }
    return rc;
}

static enum clst_status
mac_object_row(const struct clst_vault_store *s, const struct clst_vault_object_row *o,
               uint8_t mac[static CLST_VAULT_MAC_SIZE])
{
    struct clst_buf b;
    clst_buf_init(&b, MAC_INPUT_MAX);
    enum clst_status rc = enc_object_head(&b, "object-row", o->kind, o->name);
    if (rc == CLST_OK) {
        rc = enc_i64(&b, o->deleted_date);
    }
    if (rc == CLST_OK) {
        rc = enc_i64(&b, o->scheduled_purge_date);
    }
    return finish_mac(s, rc, &b, mac);
}

/* Covers every field of a version except its value (sealed separately) and deletion state
 * (in the object row). */
static enum clst_status
mac_version(const struct clst_vault_store *s, const struct clst_vault_object *m,
            uint8_t mac[static CLST_VAULT_MAC_SIZE])
{
    struct clst_buf b;
    clst_buf_init(&b, MAC_INPUT_MAX);
    enum clst_status rc = enc_object_head(&b, "version-row", m->kind, m->name);
    if (rc == CLST_OK) {
        rc = enc_str(&b, m->version);
    }
    if (rc == CLST_OK) {
        rc = enc_u8(&b, m->attrs.enabled ? 1 : 0);
    }
    if (rc == CLST_OK) {
        rc = enc_i64(&b, m->attrs.nbf);
    }
    if (rc == CLST_OK) {
        rc = enc_i64(&b, m->attrs.exp);
    }
    if (rc == CLST_OK) {
        rc = enc_i64(&b, m->attrs.created);
    }
    if (rc == CLST_OK) {
        rc = enc_i64(&b, m->attrs.updated);
    }
    if (rc == CLST_OK) {
        rc = enc_u8(&b, m->attrs.exportable ? 1 : 0);
    }
    if (rc == CLST_OK) {
        rc = enc_str(&b, m->attrs.recovery_level);
    }
    if (rc == CLST_OK) {
        rc = enc_i64(&b, m->attrs.recoverable_days);
    }
    if (rc == CLST_OK) {
        rc = enc_opt(&b, m->tags);
    }
    if (rc == CLST_OK) {
        rc = enc_str(&b, m->kty);
    }
    if (rc == CLST_OK) {
        rc = enc_opt(&b, m->key_ops);
    }
    if (rc == CLST_OK) {
        /* Absent and empty public data are the same thing. */
        rc = enc_lp(&b, m->public_size > 0 ? m->public_data : (const uint8_t *)"", m->public_size);
    }
    if (rc == CLST_OK) {
        rc = enc_opt(&b, m->release_policy);
    }
    if (rc == CLST_OK) {
        rc = enc_u8(&b, m->policy_immutable ? 1 : 0);
    }
    if (rc == CLST_OK) {
        rc = enc_opt(&b, m->content_type);
    }
    return finish_mac(s, rc, &b, mac);
}

static int
role_cmp(const void *a, const void *b)
{
    const struct clst_vault_role_assignment *x = a;
    const struct clst_vault_role_assignment *y = b;
    int c = strcmp(x->role, y->role);
    return c != 0 ? c : strcmp(x->scope, y->scope);
}

/* p->roles must be sorted (role_cmp). */
static enum clst_status
mac_principal(const struct clst_vault_store *s, const struct clst_vault_principal *p,
              uint8_t mac[static CLST_VAULT_MAC_SIZE])
{
    struct clst_buf b;
    clst_buf_init(&b, MAC_INPUT_MAX);
    enum clst_status rc = enc_str(&b, "principal");
    if (rc == CLST_OK) {
        rc = enc_str(&b, p->id);
    }
    if (rc == CLST_OK) {
        rc = enc_str(&b, p->name);
    }
    if (rc == CLST_OK) {
        rc = enc_lp(&b, p->token_hash, sizeof(p->token_hash));
    }
    if (rc == CLST_OK) {
        rc = enc_u8(&b, p->enabled ? 1 : 0);
    }
    if (rc == CLST_OK) {
        rc = enc_i64(&b, p->created);
    }
    if (rc == CLST_OK) {
        rc = enc_i64(&b, p->updated);
    }
    if (rc == CLST_OK) {
        rc = enc_i64(&b, (int64_t)p->role_count);
    }
    for (size_t i = 0; rc == CLST_OK && i < p->role_count; i++) {
        rc = enc_str(&b, p->roles[i].role);
        if (rc == CLST_OK) {
            rc = enc_str(&b, p->roles[i].scope);
        }
    }
    return finish_mac(s, rc, &b, mac);
}

static enum clst_status
mac_meta(const struct clst_vault_store *s, const char *name, const uint8_t *value, size_t size,
         uint8_t mac[static CLST_VAULT_MAC_SIZE])
{
    struct clst_buf b;
    clst_buf_init(&b, MAC_INPUT_MAX);
    enum clst_status rc = enc_str(&b, "meta");
    if (rc == CLST_OK) {
        rc = enc_str(&b, name);
    }
    if (rc == CLST_OK) {
        rc = enc_lp(&b, size > 0 ? value : (const uint8_t *)"", size);
    }
    return finish_mac(s, rc, &b, mac);
}

static bool
mac_matches(const struct clst_vault_mac *stored, const uint8_t expect[static CLST_VAULT_MAC_SIZE])
{
    return stored->size == CLST_VAULT_MAC_SIZE &&
           clst_ct_equal(stored->bytes, expect, CLST_VAULT_MAC_SIZE);
}

static enum clst_status
tampered(struct clst_err *err, const char *what, const char *name, const char *version)
{
    return clst_err_set(err, CLST_E_VERIFY,
                        "the stored %s '%s'%s%s failed its integrity check (possible tampering "
                        "with the vault database: its MAC does not match); restore the database "
                        "from a backup and investigate",
                        what, name, version != NULL ? " version " : "",
                        version != NULL ? version : "");
}

/* ---- row verification ----------------------------------------------------------------------- */

static enum clst_status
verify_object_row(const struct clst_vault_store *s, const struct clst_vault_object_row *o,
                  struct clst_err *err)
{
    uint8_t mac[CLST_VAULT_MAC_SIZE];
    enum clst_status rc = mac_object_row(s, o, mac);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "computing a row MAC failed");
    }
    if (!mac_matches(&o->mac, mac)) {
        return tampered(err, clst_vault_kind_name(o->kind), o->name, NULL);
    }
    return CLST_OK;
}

/* Checks both MACs of a version row and copies the deletion dates into its metadata. */
static enum clst_status
verify_version_row(const struct clst_vault_store *s, struct clst_vault_version_row *row,
                   struct clst_err *err)
{
    uint8_t mac[CLST_VAULT_MAC_SIZE];
    char a[CLST_VAULT_NAME_MAX + 1];
    char b[CLST_VAULT_NAME_MAX + 1];

    clst_vault_name_fold(row->object.name, a);
    clst_vault_name_fold(row->meta.name, b);
    if (row->object.kind != row->meta.kind || strcmp(a, b) != 0) {
        return clst_err_set(err, CLST_E_INTERNAL,
                            "the storage backend returned a version row "
                            "that does not belong to its object");
    }
    enum clst_status rc = verify_object_row(s, &row->object, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = mac_version(s, &row->meta, mac);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "computing a row MAC failed");
    }
    if (!mac_matches(&row->mac, mac)) {
        return tampered(err, clst_vault_kind_name(row->meta.kind), row->meta.name,
                        row->meta.version);
    }
    row->meta.deleted_date = row->object.deleted_date;
    row->meta.scheduled_purge_date = row->object.scheduled_purge_date;
    return CLST_OK;
}

/* ---- open and close ------------------------------------------------------------------------- */

static enum clst_status
derive_keys(struct clst_vault_store *s, const uint8_t ikey[static CLST_VAULT_OBJECT_KEY_SIZE])
{
    static const char mac_info[] = "cloister-vault row mac v1";
    static const char page_info[] = "cloister-vault page token v1";
    enum clst_status rc = clst_secret_new(2 * DERIVED_KEY_SIZE, &s->keys);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = clst_hkdf(CLST_HASH_SHA256, NULL, 0, ikey, CLST_VAULT_OBJECT_KEY_SIZE,
                   (const uint8_t *)mac_info, sizeof(mac_info) - 1, s->keys->ptr, DERIVED_KEY_SIZE);
    if (rc == CLST_OK) {
        rc = clst_hkdf(CLST_HASH_SHA256, NULL, 0, ikey, CLST_VAULT_OBJECT_KEY_SIZE,
                       (const uint8_t *)page_info, sizeof(page_info) - 1,
                       s->keys->ptr + DERIVED_KEY_SIZE, DERIVED_KEY_SIZE);
    }
    return rc;
}

/* blob = u8 format || lp(master key id) || lp(wrapped integrity key) */
static enum clst_status
make_integrity_blob(struct clst_vault_masterkey *mk, const uint8_t *ikey, struct clst_buf *blob,
                    struct clst_err *err)
{
    uint8_t wrapped[CLST_VAULT_WRAPPED_MAX];
    size_t wrapped_size = 0;
    enum clst_status rc = clst_vault_masterkey_wrap(mk, ikey, CLST_VAULT_OBJECT_KEY_SIZE, wrapped,
                                                    sizeof(wrapped), &wrapped_size, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = clst_buf_append_byte(blob, INTEGRITY_BLOB_FORMAT);
    if (rc == CLST_OK) {
        rc = enc_str(blob, clst_vault_masterkey_id(mk));
    }
    if (rc == CLST_OK) {
        rc = enc_lp(blob, wrapped, wrapped_size);
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "encoding the integrity key failed");
    }
    return CLST_OK;
}

static enum clst_status
open_integrity_blob(struct clst_vault_masterkey *mk, const struct clst_buf *blob,
                    uint8_t ikey[static CLST_VAULT_OBJECT_KEY_SIZE], struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(blob->data, blob->size);
    uint8_t format = 0;
    uint32_t id_size = 0;
    uint32_t wrapped_size = 0;
    const uint8_t *id = NULL;
    const uint8_t *wrapped = NULL;
    size_t out_size = 0;
    struct clst_err mkerr;

    if (!clst_cursor_u8(&c, &format) || format != INTEGRITY_BLOB_FORMAT ||
        !clst_cursor_be32(&c, &id_size) || id_size > CLST_VAULT_MKID_MAX ||
        !clst_cursor_take(&c, id_size, &id) || !clst_cursor_be32(&c, &wrapped_size) ||
        !clst_cursor_take(&c, wrapped_size, &wrapped) || !clst_cursor_empty(&c)) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the vault database's integrity key record is damaged (possible "
                            "tampering); restore the database from a backup");
    }
    const char *want = clst_vault_masterkey_id(mk);
    if (strlen(want) != id_size || memcmp(want, id, id_size) != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "this vault database was created under master key '%.*s', but the "
                            "configured master key is '%s'; configure the master key file this "
                            "vault was created with",
                            (int)id_size, (const char *)id, want);
    }
    clst_err_clear(&mkerr);
    enum clst_status rc = clst_vault_masterkey_unwrap(
        mk, wrapped, wrapped_size, ikey, CLST_VAULT_OBJECT_KEY_SIZE, &out_size, &mkerr);
    if (rc == CLST_OK && out_size != CLST_VAULT_OBJECT_KEY_SIZE) {
        rc = CLST_E_VERIFY;
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc == CLST_E_VERIFY ? CLST_E_VERIFY : rc,
                            "the vault database's integrity key cannot be unwrapped with master "
                            "key '%s' (%s); restore the database or the key file from a backup",
                            want, mkerr.msg[0] != '\0' ? mkerr.msg : clst_status_str(rc));
    }
    return CLST_OK;
}

static enum clst_status
load_integrity_key(struct clst_vault_store *s, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    uint8_t ikey[CLST_VAULT_OBJECT_KEY_SIZE];
    struct clst_buf blob;
    struct clst_vault_mac unused;

    clst_buf_init(&blob, 1024);
    for (int attempt = 0; attempt < 2; attempt++) {
        clst_buf_reset(&blob);
        rc = s->ops->meta_get(s->be, INTEGRITY_KEY_NAME, &blob, &unused, err);
        if (rc == CLST_OK) {
            rc = open_integrity_blob(s->mk, &blob, ikey, err);
            break;
        }
        if (rc != CLST_E_NOTFOUND) {
            break;
        }
        /* A new database: make the key. Another process may be doing the same; if_absent makes
         * one of them win and the other reads the winner's key on its second pass. */
        rc = clst_random(ikey, sizeof(ikey));
        if (rc != CLST_OK) {
            rc = clst_err_set(err, rc, "no random bytes for the integrity key");
            break;
        }
        rc = make_integrity_blob(s->mk, ikey, &blob, err);
        if (rc != CLST_OK) {
            break;
        }
        rc = s->ops->meta_put(s->be, INTEGRITY_KEY_NAME, blob.data, blob.size, NULL, true, err);
        if (rc != CLST_E_CONFLICT) {
            break;
        }
        clst_err_clear(err);
    }
    if (rc == CLST_OK) {
        rc = derive_keys(s, ikey);
        if (rc != CLST_OK) {
            rc = clst_err_set(err, rc, "deriving the store's keys failed");
        }
    }
    clst_wipe(ikey, sizeof(ikey));
    clst_buf_cleanup(&blob);
    return rc;
}

enum clst_status
clst_vault_store_new(const struct clst_vault_backend_ops *ops, void *be,
                     struct clst_vault_masterkey *mk, const struct clst_clock *clock,
                     struct clst_vault_store **out, struct clst_err *err)
{
    if (ops == NULL || be == NULL || mk == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store: missing argument");
    }
    struct clst_vault_store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory opening the vault store");
    }
    enum clst_status rc = clst_vault_cache_wrap(ops, be, &s->ops, &s->be, err);
    if (rc != CLST_OK) {
        free(s);
        return rc;
    }
    s->mk = mk;
    s->clock = clock != NULL ? clock : clst_clock_system();
    rc = load_integrity_key(s, err);
    if (rc != CLST_OK) {
        clst_secret_free(s->keys);
        clst_vault_cache_unwrap(s->ops, s->be);
        free(s);
        return rc;
    }
    *out = s;
    return CLST_OK;
}

bool
clst_vault_store_cache_stats(struct clst_vault_store *s, struct clst_vault_cache_stats *out)
{
    return s != NULL && out != NULL && clst_vault_cache_stats(s->ops, s->be, out);
}

void
clst_vault_store_close(struct clst_vault_store *s)
{
    if (s == NULL) {
        return;
    }
    s->ops->close(s->be);
    clst_secret_free(s->keys);
    free(s);
}

enum clst_status
clst_vault_store_info(struct clst_vault_store *s, struct clst_vault_store_info *out,
                      struct clst_err *err)
{
    if (s == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store info: missing argument");
    }
    struct clst_vault_store_info info;
    memset(&info, 0, sizeof(info));
    enum clst_status rc = s->ops->info(s->be, &info, err);
    if (rc != CLST_OK) {
        return rc;
    }
    copy_str(info.masterkey_id, sizeof(info.masterkey_id), clst_vault_masterkey_id(s->mk));
    *out = info;
    return CLST_OK;
}

enum clst_status
clst_vault_store_check(struct clst_vault_store *s, struct clst_err *err)
{
    if (s == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store check: missing argument");
    }
    return s->ops->check(s->be, err);
}

/* ---- objects -------------------------------------------------------------------------------- */

static enum clst_status
check_name(enum clst_vault_kind kind, const char *name, struct clst_err *err)
{
    if (!kind_valid(kind)) {
        return clst_err_set(err, CLST_E_INVAL, "unknown object kind %d", (int)kind);
    }
    if (!clst_vault_name_valid(name)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "%s name '%.*s' is not valid: use 1 to %d characters of 0-9, a-z, "
                            "A-Z and '-'",
                            clst_vault_kind_name(kind), 140, name != NULL ? name : "(null)",
                            CLST_VAULT_NAME_MAX);
    }
    return CLST_OK;
}

/* NULL or "" = latest; otherwise a valid version. */
static enum clst_status
check_version_ref(const char *version, struct clst_err *err)
{
    if (version == NULL || version[0] == '\0' || clst_vault_version_valid(version)) {
        return CLST_OK;
    }
    return clst_err_set(err, CLST_E_INVAL,
                        "version '%.40s' is not valid: a version is %d lower-case hex characters",
                        version, CLST_VAULT_VERSION_SIZE);
}

/* The mutable fields (shared by put and update). */
static enum clst_status
check_fields(const struct clst_vault_object *o, struct clst_err *err)
{
    bool key = o->kind == CLST_VAULT_KIND_KEY;
    if (!opt_text_fits(o->tags, CLST_VAULT_TAGS_MAX)) {
        return clst_err_set(err, CLST_E_LIMIT, "tags exceed %d bytes", CLST_VAULT_TAGS_MAX);
    }
    if (o->attrs.nbf < 0 || o->attrs.exp < 0) {
        return clst_err_set(err, CLST_E_INVAL, "nbf and exp must be Unix times (or 0 for none)");
    }
    if (strnlen(o->attrs.recovery_level, sizeof(o->attrs.recovery_level)) >=
        sizeof(o->attrs.recovery_level)) {
        return clst_err_set(err, CLST_E_INVAL, "recovery level is not terminated");
    }
    if (o->attrs.recoverable_days < 0) {
        return clst_err_set(err, CLST_E_INVAL, "recoverable days must not be negative");
    }
    if (key) {
        if (!opt_text_fits(o->key_ops, CLST_VAULT_KEY_OPS_MAX)) {
            return clst_err_set(err, CLST_E_LIMIT, "key_ops exceed %d bytes",
                                CLST_VAULT_KEY_OPS_MAX);
        }
        if (!opt_text_fits(o->release_policy, CLST_VAULT_POLICY_MAX)) {
            return clst_err_set(err, CLST_E_LIMIT, "the release policy exceeds %d bytes",
                                CLST_VAULT_POLICY_MAX);
        }
        if (o->policy_immutable && o->release_policy == NULL) {
            return clst_err_set(err, CLST_E_INVAL,
                                "an immutable release policy needs a release policy");
        }
        if (o->content_type != NULL) {
            return clst_err_set(err, CLST_E_INVAL, "keys have no content type");
        }
    } else {
        if (o->key_ops != NULL || o->release_policy != NULL || o->policy_immutable ||
            o->attrs.exportable) {
            return clst_err_set(err, CLST_E_INVAL,
                                "secrets have no key_ops, release policy or exportable flag");
        }
        if (!opt_text_fits(o->content_type, CLST_VAULT_CONTENT_TYPE_MAX)) {
            return clst_err_set(err, CLST_E_LIMIT, "the content type exceeds %d bytes",
                                CLST_VAULT_CONTENT_TYPE_MAX);
        }
    }
    return CLST_OK;
}

static enum clst_status
check_object(const struct clst_vault_object *o, struct clst_err *err)
{
    enum clst_status rc = check_name(o->kind, o->name, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (o->version[0] != '\0' && !clst_vault_version_valid(o->version)) {
        return check_version_ref(o->version, err);
    }
    if (o->kind == CLST_VAULT_KIND_KEY) {
        if (!text_valid(o->kty, CLST_VAULT_KTY_MAX, kty_char)) {
            return clst_err_set(err, CLST_E_INVAL,
                                "a key needs a key type (kty) of 1 to %d characters",
                                CLST_VAULT_KTY_MAX);
        }
        if (o->public_size > CLST_VAULT_PUBLIC_MAX ||
            (o->public_size > 0 && o->public_data == NULL)) {
            return clst_err_set(err, CLST_E_LIMIT, "public key data exceeds %d bytes",
                                CLST_VAULT_PUBLIC_MAX);
        }
    } else if (o->kty[0] != '\0' || o->public_size > 0) {
        return clst_err_set(err, CLST_E_INVAL, "secrets have no key type or public key data");
    }
    return check_fields(o, err);
}

static enum clst_status
new_version_id(char out[static CLST_VAULT_VERSION_SIZE + 1])
{
    uint8_t raw[CLST_VAULT_VERSION_SIZE / 2];
    enum clst_status rc = clst_random(raw, sizeof(raw));
    if (rc == CLST_OK) {
        rc = clst_hex_to_str(raw, sizeof(raw), out, CLST_VAULT_VERSION_SIZE + 1);
    }
    return rc;
}

enum clst_status
clst_vault_store_put(struct clst_vault_store *s, const struct clst_vault_object *in,
                     const uint8_t *value, size_t value_size, char *out_version,
                     struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_vault_version_row row;
    struct clst_vault_object_row obj;
    char folded[CLST_VAULT_NAME_MAX + 1];

    memset(&row, 0, sizeof(row));
    memset(&obj, 0, sizeof(obj));
    if (s == NULL || in == NULL || (value == NULL && value_size > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "vault store put: missing argument");
    }
    rc = check_object(in, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (value_size > CLST_VAULT_VALUE_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "the %s value is %zu bytes; at most %d are allowed",
                            clst_vault_kind_name(in->kind), value_size, CLST_VAULT_VALUE_MAX);
    }
    /* The metadata is the caller's (borrowed pointers); only the copy's scalars are changed, and
     * row.meta is never cleaned up as an owner. */
    row.meta = *in;
    if (in->version[0] == '\0') {
        rc = new_version_id(row.meta.version);
        if (rc != CLST_OK) {
            return clst_err_set(err, rc, "no random bytes for a version id");
        }
    }
    int64_t now = clst_clock_now(s->clock);
    row.meta.attrs.created = now;
    row.meta.attrs.updated = now;
    row.meta.deleted_date = 0;
    row.meta.scheduled_purge_date = 0;
    if (row.meta.public_size == 0) {
        row.meta.public_data = NULL;
    }
    rc = mac_version(s, &row.meta, row.mac.bytes);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "computing a row MAC failed");
    }
    row.mac.size = CLST_VAULT_MAC_SIZE;
    obj.kind = in->kind;
    copy_str(obj.name, sizeof(obj.name), in->name);
    rc = mac_object_row(s, &obj, obj.mac.bytes);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "computing a row MAC failed");
    }
    obj.mac.size = CLST_VAULT_MAC_SIZE;
    clst_vault_name_fold(in->name, folded);
    rc = clst_vault_objseal_seal(s->mk, in->kind, folded, row.meta.version, value, value_size,
                                 &row.seal, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = s->ops->version_insert(s->be, &obj, &row, err);
    if (rc == CLST_OK && out_version != NULL) {
        memcpy(out_version, row.meta.version, CLST_VAULT_VERSION_SIZE + 1);
    }
    clst_vault_sealed_cleanup(&row.seal);
    return rc;
}

enum clst_status
clst_vault_store_get(struct clst_vault_store *s, enum clst_vault_kind kind, const char *name,
                     const char *version, struct clst_vault_object *out,
                     struct clst_secret **out_value, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_vault_version_row row;
    struct clst_secret *value = NULL;
    char folded[CLST_VAULT_NAME_MAX + 1];

    memset(&row, 0, sizeof(row));
    if (s == NULL || (out == NULL && out_value == NULL)) {
        return clst_err_set(err, CLST_E_INVAL, "vault store get: missing argument");
    }
    rc = check_name(kind, name, err);
    if (rc == CLST_OK) {
        rc = check_version_ref(version, err);
    }
    if (rc != CLST_OK) {
        return rc;
    }
    rc = s->ops->version_get(s->be, kind, name, version != NULL ? version : "", false,
                             out_value != NULL, &row, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = verify_version_row(s, &row, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (out_value != NULL) {
        clst_vault_name_fold(row.meta.name, folded);
        rc = clst_vault_objseal_open(s->mk, kind, folded, row.meta.version, &row.seal, &value, err);
        if (rc != CLST_OK) {
            goto out;
        }
    }
    if (out != NULL) {
        *out = row.meta;
        memset(&row.meta, 0, sizeof(row.meta)); /* ownership moved */
    }
    if (out_value != NULL) {
        *out_value = value;
        value = NULL;
    }
    rc = CLST_OK;
out:
    clst_secret_free(value);
    clst_vault_version_row_cleanup(&row);
    return rc;
}

static enum clst_status
dup_opt(const char *src, char **dst)
{
    *dst = NULL;
    if (src == NULL) {
        return CLST_OK;
    }
    *dst = strdup(src);
    return *dst == NULL ? CLST_E_NOMEM : CLST_OK;
}

/* Replaces the fields of `fields` in m (owned) by copies of those of c. */
static enum clst_status
apply_changes(struct clst_vault_object *m, const struct clst_vault_object *c, unsigned fields)
{
    char *tmp = NULL;
    if (fields & CLST_VAULT_UPDATE_ENABLED) {
        m->attrs.enabled = c->attrs.enabled;
    }
    if (fields & CLST_VAULT_UPDATE_NBF) {
        m->attrs.nbf = c->attrs.nbf;
    }
    if (fields & CLST_VAULT_UPDATE_EXP) {
        m->attrs.exp = c->attrs.exp;
    }
    if (fields & CLST_VAULT_UPDATE_EXPORTABLE) {
        m->attrs.exportable = c->attrs.exportable;
    }
    if (fields & CLST_VAULT_UPDATE_TAGS) {
        if (dup_opt(c->tags, &tmp) != CLST_OK) {
            return CLST_E_NOMEM;
        }
        free(m->tags);
        m->tags = tmp;
    }
    if (fields & CLST_VAULT_UPDATE_KEY_OPS) {
        if (dup_opt(c->key_ops, &tmp) != CLST_OK) {
            return CLST_E_NOMEM;
        }
        free(m->key_ops);
        m->key_ops = tmp;
    }
    if (fields & CLST_VAULT_UPDATE_POLICY) {
        if (dup_opt(c->release_policy, &tmp) != CLST_OK) {
            return CLST_E_NOMEM;
        }
        free(m->release_policy);
        m->release_policy = tmp;
        m->policy_immutable = c->policy_immutable;
    }
    if (fields & CLST_VAULT_UPDATE_CONTENT_TYPE) {
        if (dup_opt(c->content_type, &tmp) != CLST_OK) {
            return CLST_E_NOMEM;
        }
        free(m->content_type);
        m->content_type = tmp;
    }
    return CLST_OK;
}

static bool
opt_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

enum clst_status
clst_vault_store_update(struct clst_vault_store *s, enum clst_vault_kind kind, const char *name,
                        const char *version, const struct clst_vault_object *changes,
                        unsigned fields, struct clst_vault_object *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_vault_version_row row;

    memset(&row, 0, sizeof(row));
    if (s == NULL || changes == NULL || (fields & ~CLST_VAULT_UPDATE_ALL) != 0) {
        return clst_err_set(err, CLST_E_INVAL, "vault store update: invalid argument");
    }
    rc = check_name(kind, name, err);
    if (rc == CLST_OK) {
        rc = check_version_ref(version, err);
    }
    if (rc != CLST_OK) {
        return rc;
    }
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        clst_vault_version_row_cleanup(&row);
        rc = s->ops->version_get(s->be, kind, name, version != NULL ? version : "", false, false,
                                 &row, err);
        if (rc != CLST_OK) {
            goto out;
        }
        rc = verify_version_row(s, &row, err);
        if (rc != CLST_OK) {
            goto out;
        }
        if ((fields & CLST_VAULT_UPDATE_POLICY) && row.meta.policy_immutable &&
            (!changes->policy_immutable ||
             !opt_equal(changes->release_policy, row.meta.release_policy))) {
            rc = clst_err_set(err, CLST_E_CONFLICT,
                              "the release policy of key '%s' version %s is immutable; it cannot "
                              "be changed or made mutable (create a new key version instead)",
                              row.meta.name, row.meta.version);
            goto out;
        }
        struct clst_vault_mac old_mac = row.mac;
        if (apply_changes(&row.meta, changes, fields) != CLST_OK) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory updating a %s",
                              clst_vault_kind_name(kind));
            goto out;
        }
        rc = check_fields(&row.meta, err);
        if (rc != CLST_OK) {
            goto out;
        }
        row.meta.attrs.updated = clst_clock_now(s->clock);
        rc = mac_version(s, &row.meta, row.mac.bytes);
        if (rc != CLST_OK) {
            rc = clst_err_set(err, rc, "computing a row MAC failed");
            goto out;
        }
        row.mac.size = CLST_VAULT_MAC_SIZE;
        rc = s->ops->version_update(s->be, &row, &old_mac, err);
        if (rc != CLST_E_CONFLICT) {
            break;
        }
        /* Another writer changed the row since we read it: read it again and re-apply. */
        clst_err_clear(err);
    }
    if (rc == CLST_E_CONFLICT) {
        rc = clst_err_set(err, CLST_E_CONFLICT,
                          "the %s '%s' kept changing while being updated; try again",
                          clst_vault_kind_name(kind), name);
    }
    if (rc == CLST_OK && out != NULL) {
        *out = row.meta;
        memset(&row.meta, 0, sizeof(row.meta));
    }
out:
    clst_vault_version_row_cleanup(&row);
    return rc;
}

/* ---- paging tokens -------------------------------------------------------------------------- */

/*
 * token = base64url( u8 format || u8 listing || u8 kind || lp(scope) || i64 after_seq ||
 *                    lp(after_name) || HMAC-SHA256(page key, all before)[0..16) )
 * scope is the folded object name for version listings, else empty. The MAC makes the token
 * opaque and unforgeable; the listing fields make it unusable in another listing.
 */
static enum clst_status
token_encode(const struct clst_vault_store *s, unsigned listing, unsigned kind, const char *scope,
             int64_t after_seq, const char *after_name, char **out)
{
    struct clst_buf raw;
    struct clst_buf text;
    uint8_t mac[CLST_SHA256_SIZE];
    enum clst_status rc;

    clst_buf_init(&raw, TOKEN_BYTES_MAX);
    clst_buf_init(&text, CLST_VAULT_TOKEN_MAX);
    rc = enc_u8(&raw, TOKEN_FORMAT);
    if (rc == CLST_OK) {
        rc = enc_u8(&raw, listing);
    }
    if (rc == CLST_OK) {
        rc = enc_u8(&raw, kind);
    }
    if (rc == CLST_OK) {
        rc = enc_str(&raw, scope);
    }
    if (rc == CLST_OK) {
        rc = enc_i64(&raw, after_seq);
    }
    if (rc == CLST_OK) {
        rc = enc_str(&raw, after_name);
    }
    if (rc == CLST_OK) {
        rc = clst_hmac(CLST_HASH_SHA256, page_key(s), DERIVED_KEY_SIZE, raw.data, raw.size, mac);
    }
    if (rc == CLST_OK) {
        rc = clst_buf_append(&raw, mac, TOKEN_MAC_SIZE);
    }
    if (rc == CLST_OK) {
        rc = clst_b64url_encode(raw.data, raw.size, &text);
    }
    if (rc == CLST_OK) {
        rc = clst_buf_terminate(&text);
    }
    if (rc == CLST_OK) {
        size_t n = 0;
        *out = (char *)clst_buf_steal(&text, &n);
        if (*out == NULL) {
            rc = CLST_E_NOMEM;
        }
    }
    clst_buf_cleanup(&raw);
    clst_buf_cleanup(&text);
    return rc;
}

static enum clst_status
bad_token(struct clst_err *err)
{
    return clst_err_set(err, CLST_E_MALFORMED,
                        "the continuation token is not valid for this listing (it was altered, "
                        "truncated or comes from another listing); start the listing again "
                        "without a token");
}

/* Decodes a token of this listing into after_seq/after_name (cap CLST_VAULT_NAME_MAX+1 or
 * CLST_VAULT_PRINCIPAL_ID_MAX+1). */
static enum clst_status
token_decode(const struct clst_vault_store *s, const char *token, unsigned listing, unsigned kind,
             const char *scope, int64_t *after_seq, char *after_name, size_t after_cap,
             struct clst_err *err)
{
    enum clst_status rc = CLST_E_MALFORMED;
    struct clst_buf raw;
    uint8_t mac[CLST_SHA256_SIZE];
    uint8_t format = 0, t_listing = 0, t_kind = 0;
    uint32_t scope_size = 0, name_size = 0;
    uint64_t seq = 0;
    const uint8_t *t_scope = NULL, *t_name = NULL;

    clst_buf_init(&raw, TOKEN_BYTES_MAX);
    size_t len = strnlen(token, CLST_VAULT_TOKEN_MAX + 1);
    if (len > CLST_VAULT_TOKEN_MAX || clst_b64url_decode(token, len, &raw) != CLST_OK ||
        raw.size < TOKEN_MAC_SIZE) {
        rc = bad_token(err);
        goto out;
    }
    size_t body = raw.size - TOKEN_MAC_SIZE;
    if (clst_hmac(CLST_HASH_SHA256, page_key(s), DERIVED_KEY_SIZE, raw.data, body, mac) !=
        CLST_OK) {
        rc = clst_err_set(err, CLST_E_CRYPTO, "checking the continuation token failed");
        goto out;
    }
    if (!clst_ct_equal(mac, raw.data + body, TOKEN_MAC_SIZE)) {
        rc = bad_token(err);
        goto out;
    }
    struct clst_cursor c = clst_cursor_make(raw.data, body);
    if (!clst_cursor_u8(&c, &format) || !clst_cursor_u8(&c, &t_listing) ||
        !clst_cursor_u8(&c, &t_kind) || !clst_cursor_be32(&c, &scope_size) ||
        !clst_cursor_take(&c, scope_size, &t_scope) || !clst_cursor_be64(&c, &seq) ||
        !clst_cursor_be32(&c, &name_size) || !clst_cursor_take(&c, name_size, &t_name) ||
        !clst_cursor_empty(&c)) {
        rc = bad_token(err);
        goto out;
    }
    if (format != TOKEN_FORMAT || t_listing != listing || t_kind != kind ||
        scope_size != strlen(scope) || memcmp(t_scope, scope, scope_size) != 0 ||
        name_size >= after_cap || seq > INT64_MAX) {
        rc = bad_token(err);
        goto out;
    }
    memcpy(after_name, t_name, name_size);
    after_name[name_size] = '\0';
    *after_seq = (int64_t)seq;
    rc = CLST_OK;
out:
    clst_buf_cleanup(&raw);
    return rc;
}

static enum clst_status
page_size(size_t max_results, size_t *out, struct clst_err *err)
{
    if (max_results > CLST_VAULT_PAGE_MAX) {
        return clst_err_set(err, CLST_E_INVAL, "maxresults must be 1 to %d (got %zu)",
                            CLST_VAULT_PAGE_MAX, max_results);
    }
    *out = max_results == 0 ? CLST_VAULT_PAGE_MAX : max_results;
    return CLST_OK;
}

static enum clst_status
list_objects(struct clst_vault_store *s, enum clst_vault_listing listing, enum clst_vault_kind kind,
             const char *name, size_t max_results, const char *token,
             struct clst_vault_object_list *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_vault_version_row *rows = NULL;
    size_t count = 0;
    size_t limit = 0;
    int64_t after_seq = 0;
    char after_name[CLST_VAULT_NAME_MAX + 1] = "";
    char scope[CLST_VAULT_NAME_MAX + 1] = "";
    struct clst_vault_object_list list;

    memset(&list, 0, sizeof(list));
    if (s == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store list: missing argument");
    }
    if (!kind_valid(kind)) {
        return clst_err_set(err, CLST_E_INVAL, "unknown object kind %d", (int)kind);
    }
    if (listing == CLST_VAULT_LIST_VERSIONS) {
        rc = check_name(kind, name, err);
        if (rc != CLST_OK) {
            return rc;
        }
        clst_vault_name_fold(name, scope);
    }
    rc = page_size(max_results, &limit, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (token != NULL && token[0] != '\0') {
        rc = token_decode(s, token, (unsigned)listing, (unsigned)kind, scope, &after_seq,
                          after_name, sizeof(after_name), err);
        if (rc != CLST_OK) {
            return rc;
        }
    }
    /* One more than a page tells whether another page follows. */
    rc = s->ops->list(s->be, listing, kind, name, after_name, after_seq, limit + 1, &rows, &count,
                      err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (count > limit + 1) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "the storage backend returned too many rows");
        goto out;
    }
    size_t n = count > limit ? limit : count;
    list.items = calloc(n > 0 ? n : 1, sizeof(*list.items));
    if (list.items == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory listing %ss",
                          clst_vault_kind_name(kind));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        bool want_deleted = listing == CLST_VAULT_LIST_DELETED;
        if (rows[i].meta.kind != kind || (rows[i].object.deleted_date != 0) != want_deleted) {
            rc = clst_err_set(err, CLST_E_INTERNAL, "the storage backend returned a wrong row");
            goto out;
        }
        rc = verify_version_row(s, &rows[i], err);
        if (rc != CLST_OK) {
            goto out;
        }
        list.items[i] = rows[i].meta;
        memset(&rows[i].meta, 0, sizeof(rows[i].meta));
        list.count = i + 1;
    }
    if (count > limit) {
        const struct clst_vault_version_row *last = &rows[limit - 1];
        char last_name[CLST_VAULT_NAME_MAX + 1];
        clst_vault_name_fold(list.items[limit - 1].name, last_name);
        rc = token_encode(s, (unsigned)listing, (unsigned)kind, scope,
                          listing == CLST_VAULT_LIST_VERSIONS ? last->seq : 0,
                          listing == CLST_VAULT_LIST_VERSIONS ? "" : last_name, &list.next);
        if (rc != CLST_OK) {
            rc = clst_err_set(err, rc, "making a continuation token failed");
            goto out;
        }
    }
    *out = list;
    memset(&list, 0, sizeof(list));
    rc = CLST_OK;
out:
    for (size_t i = 0; i < count; i++) {
        clst_vault_version_row_cleanup(&rows[i]);
    }
    free(rows);
    clst_vault_object_list_cleanup(&list);
    return rc;
}

enum clst_status
clst_vault_store_list(struct clst_vault_store *s, enum clst_vault_kind kind, size_t max_results,
                      const char *token, struct clst_vault_object_list *out, struct clst_err *err)
{
    return list_objects(s, CLST_VAULT_LIST_LIVE, kind, NULL, max_results, token, out, err);
}

enum clst_status
clst_vault_store_list_versions(struct clst_vault_store *s, enum clst_vault_kind kind,
                               const char *name, size_t max_results, const char *token,
                               struct clst_vault_object_list *out, struct clst_err *err)
{
    return list_objects(s, CLST_VAULT_LIST_VERSIONS, kind, name, max_results, token, out, err);
}

enum clst_status
clst_vault_store_list_deleted(struct clst_vault_store *s, enum clst_vault_kind kind,
                              size_t max_results, const char *token,
                              struct clst_vault_object_list *out, struct clst_err *err)
{
    return list_objects(s, CLST_VAULT_LIST_DELETED, kind, NULL, max_results, token, out, err);
}

/* ---- soft delete ---------------------------------------------------------------------------- */

/* Moves an object between live (deleted_date 0) and deleted, CAS on its verified MAC. */
static enum clst_status
set_state(struct clst_vault_store *s, enum clst_vault_kind kind, const char *name, bool to_deleted,
          int retention_days, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_vault_object_row o;

    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        memset(&o, 0, sizeof(o));
        rc = s->ops->object_get(s->be, kind, name, &o, err);
        if (rc != CLST_OK) {
            return rc;
        }
        rc = verify_object_row(s, &o, err);
        if (rc != CLST_OK) {
            return rc;
        }
        if ((o.deleted_date != 0) == to_deleted) {
            return clst_err_set(err, CLST_E_NOTFOUND, "no %s %s named '%s'",
                                to_deleted ? "live" : "deleted", clst_vault_kind_name(kind), name);
        }
        struct clst_vault_mac old_mac = o.mac;
        if (to_deleted) {
            int64_t now = clst_clock_now(s->clock);
            o.deleted_date = now > 0 ? now : 1; /* 0 would mean "live" */
            o.scheduled_purge_date = o.deleted_date + (int64_t)retention_days * SECONDS_PER_DAY;
        } else {
            o.deleted_date = 0;
            o.scheduled_purge_date = 0;
        }
        rc = mac_object_row(s, &o, o.mac.bytes);
        if (rc != CLST_OK) {
            return clst_err_set(err, rc, "computing a row MAC failed");
        }
        o.mac.size = CLST_VAULT_MAC_SIZE;
        rc = s->ops->object_set_state(s->be, &o, &old_mac, err);
        if (rc != CLST_E_CONFLICT) {
            return rc;
        }
        clst_err_clear(err);
    }
    return clst_err_set(err, CLST_E_CONFLICT,
                        "the %s '%s' kept changing while its state was being changed; try again",
                        clst_vault_kind_name(kind), name);
}

enum clst_status
clst_vault_store_delete(struct clst_vault_store *s, enum clst_vault_kind kind, const char *name,
                        int retention_days, struct clst_vault_object *out, struct clst_err *err)
{
    if (s == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store delete: missing argument");
    }
    enum clst_status rc = check_name(kind, name, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (retention_days < 1 || retention_days > RETENTION_DAYS_MAX) {
        return clst_err_set(err, CLST_E_INVAL, "retention must be 1 to %d days (got %d)",
                            RETENTION_DAYS_MAX, retention_days);
    }
    rc = set_state(s, kind, name, true, retention_days, err);
    if (rc == CLST_OK && out != NULL) {
        rc = clst_vault_store_get_deleted(s, kind, name, out, err);
    }
    return rc;
}

enum clst_status
clst_vault_store_get_deleted(struct clst_vault_store *s, enum clst_vault_kind kind,
                             const char *name, struct clst_vault_object *out, struct clst_err *err)
{
    struct clst_vault_version_row row;
    memset(&row, 0, sizeof(row));
    if (s == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store get deleted: missing argument");
    }
    enum clst_status rc = check_name(kind, name, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = s->ops->version_get(s->be, kind, name, "", true, false, &row, err);
    if (rc == CLST_OK) {
        rc = verify_version_row(s, &row, err);
    }
    if (rc == CLST_OK) {
        *out = row.meta;
        memset(&row.meta, 0, sizeof(row.meta));
    }
    clst_vault_version_row_cleanup(&row);
    return rc;
}

enum clst_status
clst_vault_store_recover(struct clst_vault_store *s, enum clst_vault_kind kind, const char *name,
                         struct clst_err *err)
{
    if (s == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store recover: missing argument");
    }
    enum clst_status rc = check_name(kind, name, err);
    return rc == CLST_OK ? set_state(s, kind, name, false, 0, err) : rc;
}

enum clst_status
clst_vault_store_purge(struct clst_vault_store *s, enum clst_vault_kind kind, const char *name,
                       struct clst_err *err)
{
    if (s == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store purge: missing argument");
    }
    enum clst_status rc = check_name(kind, name, err);
    return rc == CLST_OK ? s->ops->purge(s->be, kind, name, err) : rc;
}

enum clst_status
clst_vault_store_purge_due(struct clst_vault_store *s, size_t *out_count, struct clst_err *err)
{
    size_t n = 0;
    if (s == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store purge: missing argument");
    }
    enum clst_status rc = s->ops->purge_due(s->be, clst_clock_now(s->clock), &n, err);
    if (rc == CLST_OK && out_count != NULL) {
        *out_count = n;
    }
    return rc;
}

/* ---- principals ----------------------------------------------------------------------------- */

static enum clst_status
check_role(const char *role, const char *scope, struct clst_err *err)
{
    if (!text_valid(role, CLST_VAULT_ROLE_MAX, printable_char)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "role name is not valid: use 1 to %d printable ASCII characters",
                            CLST_VAULT_ROLE_MAX);
    }
    if (!clst_vault_scope_valid(scope)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "scope '%.*s' is not valid: use \"/\", \"/keys/NAME\" or "
                            "\"/secrets/NAME\"",
                            140, scope != NULL ? scope : "(null)");
    }
    return CLST_OK;
}

static enum clst_status
check_principal_id(const char *id, struct clst_err *err)
{
    if (!text_valid(id, CLST_VAULT_PRINCIPAL_ID_MAX, id_char)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "principal id is not valid: use 1 to %d characters of 0-9, a-z, "
                            "A-Z, '.', '_' and '-'",
                            CLST_VAULT_PRINCIPAL_ID_MAX);
    }
    return CLST_OK;
}

static enum clst_status
check_principal(const struct clst_vault_principal *p, struct clst_err *err)
{
    enum clst_status rc = check_principal_id(p->id, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (!text_valid(p->name, CLST_VAULT_PRINCIPAL_NAME_MAX, printable_char)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "principal name is not valid: use 1 to %d printable ASCII characters",
                            CLST_VAULT_PRINCIPAL_NAME_MAX);
    }
    if (p->role_count > CLST_VAULT_ROLES_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "a principal has at most %d role assignments",
                            CLST_VAULT_ROLES_MAX);
    }
    if (p->role_count > 0 && p->roles == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "role assignments missing");
    }
    for (size_t i = 0; i < p->role_count; i++) {
        rc = check_role(p->roles[i].role, p->roles[i].scope, err);
        if (rc != CLST_OK) {
            return rc;
        }
        for (size_t j = 0; j < i; j++) {
            if (role_cmp(&p->roles[i], &p->roles[j]) == 0) {
                return clst_err_set(err, CLST_E_INVAL,
                                    "role assignment '%s' on '%s' is listed twice",
                                    p->roles[i].role, p->roles[i].scope);
            }
        }
    }
    return CLST_OK;
}

/* A deep copy of p with roles sorted (out->roles malloc'ed). */
static enum clst_status
principal_copy(const struct clst_vault_principal *p, struct clst_vault_principal *out)
{
    *out = *p;
    out->roles = NULL;
    out->roles = malloc((p->role_count > 0 ? p->role_count : 1) * sizeof(*out->roles));
    if (out->roles == NULL) {
        return CLST_E_NOMEM;
    }
    if (p->role_count > 0) {
        memcpy(out->roles, p->roles, p->role_count * sizeof(*out->roles));
        qsort(out->roles, p->role_count, sizeof(*out->roles), role_cmp);
    }
    return CLST_OK;
}

/* Sorts (the backend's order is not trusted) and checks the MAC. */
static enum clst_status
verify_principal(const struct clst_vault_store *s, struct clst_vault_principal *p,
                 const struct clst_vault_mac *stored, struct clst_err *err)
{
    uint8_t mac[CLST_VAULT_MAC_SIZE];
    if (p->role_count > CLST_VAULT_ROLES_MAX) {
        return tampered(err, "principal", p->id, NULL);
    }
    if (p->role_count > 0) {
        qsort(p->roles, p->role_count, sizeof(*p->roles), role_cmp);
    }
    enum clst_status rc = mac_principal(s, p, mac);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "computing a row MAC failed");
    }
    if (!mac_matches(stored, mac)) {
        return tampered(err, "principal", p->id, NULL);
    }
    return CLST_OK;
}

enum clst_status
clst_vault_store_principal_put(struct clst_vault_store *s, const struct clst_vault_principal *p,
                               struct clst_err *err)
{
    struct clst_vault_principal row;
    uint8_t mac[CLST_VAULT_MAC_SIZE];

    if (s == NULL || p == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store principal put: missing argument");
    }
    enum clst_status rc = check_principal(p, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (principal_copy(p, &row) != CLST_OK) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory storing a principal");
    }
    row.created = clst_clock_now(s->clock);
    row.updated = row.created;
    rc = mac_principal(s, &row, mac);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "computing a row MAC failed");
    } else {
        rc = s->ops->principal_insert(s->be, &row, mac, err);
    }
    clst_vault_principal_cleanup(&row);
    return rc;
}

static enum clst_status
principal_fetch(struct clst_vault_store *s, const char *id, const uint8_t *token_hash,
                struct clst_vault_principal *out, struct clst_vault_mac *out_mac,
                struct clst_err *err)
{
    struct clst_vault_principal p;
    struct clst_vault_mac mac;
    memset(&p, 0, sizeof(p));
    memset(&mac, 0, sizeof(mac));
    enum clst_status rc = s->ops->principal_get(s->be, id, token_hash, &p, &mac, err);
    if (rc == CLST_OK) {
        rc = verify_principal(s, &p, &mac, err);
    }
    if (rc == CLST_OK && token_hash != NULL &&
        !clst_ct_equal(p.token_hash, token_hash, sizeof(p.token_hash))) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "the storage backend returned another principal");
    }
    if (rc == CLST_OK && id != NULL && strcmp(p.id, id) != 0) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "the storage backend returned another principal");
    }
    if (rc != CLST_OK) {
        clst_vault_principal_cleanup(&p);
        return rc;
    }
    *out = p;
    if (out_mac != NULL) {
        *out_mac = mac;
    }
    return CLST_OK;
}

enum clst_status
clst_vault_store_principal_get(struct clst_vault_store *s, const char *id,
                               struct clst_vault_principal *out, struct clst_err *err)
{
    if (s == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store principal get: missing argument");
    }
    enum clst_status rc = check_principal_id(id, err);
    return rc == CLST_OK ? principal_fetch(s, id, NULL, out, NULL, err) : rc;
}

enum clst_status
clst_vault_store_principal_find_by_token(
    struct clst_vault_store *s, const uint8_t token_hash[static CLST_VAULT_TOKEN_HASH_SIZE],
    struct clst_vault_principal *out, struct clst_err *err)
{
    if (s == NULL || token_hash == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store principal lookup: missing argument");
    }
    return principal_fetch(s, NULL, token_hash, out, NULL, err);
}

/*
 * Read, change, CAS-write a principal. edit() changes `p` (an owned copy) and may fail. A
 * CLST_E_CONFLICT from the backend is either a lost race (the row changed: read and try again)
 * or a uniqueness violation (the token hash is taken: the row did not change, so report it).
 */
static enum clst_status
principal_modify(struct clst_vault_store *s, const char *id,
                 enum clst_status (*edit)(struct clst_vault_principal *p, const void *arg,
                                          struct clst_err *err),
                 const void *arg, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_vault_mac prev_mac;
    struct clst_err prev_err;

    memset(&prev_mac, 0, sizeof(prev_mac));
    clst_err_clear(&prev_err);
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        struct clst_vault_principal p;
        struct clst_vault_mac old_mac;
        uint8_t mac[CLST_VAULT_MAC_SIZE];
        rc = principal_fetch(s, id, NULL, &p, &old_mac, err);
        if (rc != CLST_OK) {
            return rc;
        }
        if (attempt > 0 && old_mac.size == prev_mac.size &&
            memcmp(old_mac.bytes, prev_mac.bytes, sizeof(old_mac.bytes)) == 0) {
            clst_vault_principal_cleanup(&p);
            if (err != NULL) {
                *err = prev_err;
            }
            return prev_err.status;
        }
        prev_mac = old_mac;
        rc = edit(&p, arg, err);
        if (rc == CLST_OK) {
            p.updated = clst_clock_now(s->clock);
            if (p.role_count > 0) {
                qsort(p.roles, p.role_count, sizeof(*p.roles), role_cmp);
            }
            rc = mac_principal(s, &p, mac);
            if (rc != CLST_OK) {
                rc = clst_err_set(err, rc, "computing a row MAC failed");
            } else {
                rc = s->ops->principal_replace(s->be, &p, mac, &old_mac, err);
            }
        }
        clst_vault_principal_cleanup(&p);
        if (rc != CLST_E_CONFLICT) {
            return rc;
        }
        clst_err_set(&prev_err, CLST_E_CONFLICT, "%s",
                     err != NULL ? err->msg : "conflicting principal change");
        clst_err_clear(err);
    }
    return clst_err_set(err, CLST_E_CONFLICT,
                        "principal '%s' kept changing while being updated; try again", id);
}

static enum clst_status
edit_identity(struct clst_vault_principal *p, const void *arg, struct clst_err *err)
{
    const struct clst_vault_principal *in = arg;
    (void)err;
    copy_str(p->name, sizeof(p->name), in->name);
    memcpy(p->token_hash, in->token_hash, sizeof(p->token_hash));
    p->enabled = in->enabled;
    return CLST_OK;
}

enum clst_status
clst_vault_store_principal_update(struct clst_vault_store *s, const struct clst_vault_principal *p,
                                  struct clst_err *err)
{
    if (s == NULL || p == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store principal update: missing argument");
    }
    /* Roles are not touched here: validate only the identity fields. */
    struct clst_vault_principal ident = *p;
    ident.roles = NULL;
    ident.role_count = 0;
    enum clst_status rc = check_principal(&ident, err);
    return rc == CLST_OK ? principal_modify(s, p->id, edit_identity, p, err) : rc;
}

enum clst_status
clst_vault_store_principal_delete(struct clst_vault_store *s, const char *id, struct clst_err *err)
{
    if (s == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store principal delete: missing argument");
    }
    enum clst_status rc = check_principal_id(id, err);
    return rc == CLST_OK ? s->ops->principal_delete(s->be, id, err) : rc;
}

enum clst_status
clst_vault_store_principal_list(struct clst_vault_store *s, size_t max_results, const char *token,
                                struct clst_vault_principal_list *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_vault_principal *rows = NULL;
    struct clst_vault_mac *macs = NULL;
    size_t count = 0;
    size_t limit = 0;
    int64_t unused_seq = 0;
    char after[CLST_VAULT_PRINCIPAL_ID_MAX + 1] = "";
    struct clst_vault_principal_list list;

    memset(&list, 0, sizeof(list));
    if (s == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store principal list: missing argument");
    }
    rc = page_size(max_results, &limit, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (token != NULL && token[0] != '\0') {
        rc = token_decode(s, token, LISTING_PRINCIPALS, 0, "", &unused_seq, after, sizeof(after),
                          err);
        if (rc != CLST_OK) {
            return rc;
        }
    }
    rc = s->ops->principal_list(s->be, after, limit + 1, &rows, &macs, &count, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (count > limit + 1) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "the storage backend returned too many rows");
        goto out;
    }
    size_t n = count > limit ? limit : count;
    list.items = calloc(n > 0 ? n : 1, sizeof(*list.items));
    if (list.items == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory listing principals");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rc = verify_principal(s, &rows[i], &macs[i], err);
        if (rc != CLST_OK) {
            goto out;
        }
        list.items[i] = rows[i];
        memset(&rows[i], 0, sizeof(rows[i]));
        list.count = i + 1;
    }
    if (count > limit) {
        rc = token_encode(s, LISTING_PRINCIPALS, 0, "", 0, list.items[limit - 1].id, &list.next);
        if (rc != CLST_OK) {
            rc = clst_err_set(err, rc, "making a continuation token failed");
            goto out;
        }
    }
    *out = list;
    memset(&list, 0, sizeof(list));
    rc = CLST_OK;
out:
    for (size_t i = 0; i < count; i++) {
        clst_vault_principal_cleanup(&rows[i]);
    }
    free(rows);
    free(macs);
    clst_vault_principal_list_cleanup(&list);
    return rc;
}

struct role_arg {
    const char *role;
    const char *scope;
};

static enum clst_status
edit_role_add(struct clst_vault_principal *p, const void *arg, struct clst_err *err)
{
    const struct role_arg *ra = arg;
    struct clst_vault_role_assignment a;
    memset(&a, 0, sizeof(a));
    copy_str(a.role, sizeof(a.role), ra->role);
    copy_str(a.scope, sizeof(a.scope), ra->scope);
    for (size_t i = 0; i < p->role_count; i++) {
        if (role_cmp(&p->roles[i], &a) == 0) {
            return clst_err_set(err, CLST_E_CONFLICT,
                                "principal '%s' already has role '%s' on '%s'", p->id, a.role,
                                a.scope);
        }
    }
    if (p->role_count >= CLST_VAULT_ROLES_MAX) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "principal '%s' already has %d role assignments, the maximum", p->id,
                            CLST_VAULT_ROLES_MAX);
    }
    struct clst_vault_role_assignment *grown =
        realloc(p->roles, (p->role_count + 1) * sizeof(*p->roles));
    if (grown == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory adding a role assignment");
    }
    p->roles = grown;
    p->roles[p->role_count++] = a;
    return CLST_OK;
}

static enum clst_status
edit_role_remove(struct clst_vault_principal *p, const void *arg, struct clst_err *err)
{
    const struct role_arg *ra = arg;
    for (size_t i = 0; i < p->role_count; i++) {
        if (strcmp(p->roles[i].role, ra->role) == 0 && strcmp(p->roles[i].scope, ra->scope) == 0) {
            memmove(&p->roles[i], &p->roles[i + 1], (p->role_count - i - 1) * sizeof(*p->roles));
            p->role_count--;
            return CLST_OK;
        }
    }
    return clst_err_set(err, CLST_E_NOTFOUND, "principal '%s' has no role '%s' on '%s'", p->id,
                        ra->role, ra->scope);
}

/* Role add and remove: `what` ("add", "remove") names the call in the missing-argument message. */
static enum clst_status
role_change(struct clst_vault_store *s, const char *id, const char *role, const char *scope,
            const char *what,
            enum clst_status (*edit)(struct clst_vault_principal *p, const void *arg,
                                     struct clst_err *err),
            struct clst_err *err)
{
    if (s == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store role %s: missing argument", what);
    }
    enum clst_status rc = check_principal_id(id, err);
    if (rc == CLST_OK) {
        rc = check_role(role, scope, err);
    }
    struct role_arg ra = {role, scope};
    return rc == CLST_OK ? principal_modify(s, id, edit, &ra, err) : rc;
}

enum clst_status
clst_vault_store_role_add(struct clst_vault_store *s, const char *id, const char *role,
                          const char *scope, struct clst_err *err)
{
    return role_change(s, id, role, scope, "add", edit_role_add, err);
}

enum clst_status
clst_vault_store_role_remove(struct clst_vault_store *s, const char *id, const char *role,
                             const char *scope, struct clst_err *err)
{
    return role_change(s, id, role, scope, "remove", edit_role_remove, err);
}

/* ---- settings ------------------------------------------------------------------------------- */

static enum clst_status
check_meta_name(const char *name, struct clst_err *err)
{
    if (!text_valid(name, CLST_VAULT_META_NAME_MAX, id_char)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "setting name is not valid: use 1 to %d characters of 0-9, a-z, A-Z, "
                            "'.', '_' and '-'",
                            CLST_VAULT_META_NAME_MAX);
    }
    if (strncmp(name, RESERVED_META_PREFIX, strlen(RESERVED_META_PREFIX)) == 0) {
        return clst_err_set(err, CLST_E_INVAL, "setting names starting with '%s' are reserved",
                            RESERVED_META_PREFIX);
    }
    return CLST_OK;
}

enum clst_status
clst_vault_store_meta_get(struct clst_vault_store *s, const char *name, struct clst_buf *out,
                          struct clst_err *err)
{
    enum clst_status rc;
    struct clst_buf value;
    struct clst_vault_mac stored;
    uint8_t mac[CLST_VAULT_MAC_SIZE];

    if (s == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "vault store meta get: missing argument");
    }
    rc = check_meta_name(name, err);
    if (rc != CLST_OK) {
        return rc;
    }
    clst_buf_init(&value, CLST_VAULT_META_VALUE_MAX);
    memset(&stored, 0, sizeof(stored));
    rc = s->ops->meta_get(s->be, name, &value, &stored, err);
    if (rc == CLST_OK) {
        rc = mac_meta(s, name, value.data, value.size, mac);
        if (rc != CLST_OK) {
            rc = clst_err_set(err, rc, "computing a row MAC failed");
        } else if (!mac_matches(&stored, mac)) {
            rc = tampered(err, "setting", name, NULL);
        }
    }
    if (rc == CLST_OK) {
        rc = clst_buf_append(out, value.data, value.size);
        if (rc != CLST_OK) {
            rc = clst_err_set(err, rc, "the setting '%s' does not fit the output buffer", name);
        }
    }
    clst_buf_cleanup(&value);
    return rc;
}

enum clst_status
clst_vault_store_meta_set(struct clst_vault_store *s, const char *name, const uint8_t *value,
                          size_t size, struct clst_err *err)
{
    uint8_t mac[CLST_VAULT_MAC_SIZE];
    if (s == NULL || (value == NULL && size > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "vault store meta set: missing argument");
    }
    enum clst_status rc = check_meta_name(name, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (size > CLST_VAULT_META_VALUE_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "a setting holds at most %d bytes",
                            CLST_VAULT_META_VALUE_MAX);
    }
    rc = mac_meta(s, name, value, size, mac);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "computing a row MAC failed");
    }
    return s->ops->meta_put(s->be, name, size > 0 ? value : (const uint8_t *)"", size, mac, false,
                            err);
}
