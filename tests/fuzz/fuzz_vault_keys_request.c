/*
 * Fuzz harness for the key endpoints' parsers (src/vault/rest_keys.c, src/vault/keymat.c): the
 * input is handed, as JSON text, to the create, import and update body parsers (for every key
 * type) and to the operation body parser (for every operation); and, as stored bytes, to the
 * parsers of what the store gives back (public key text, key_ops text) and to the backup opener
 * (with a fixed backup key, so that the seed corpus can hold a valid blob).
 *
 * Invariants checked on success: a create/import request's key_ops are ones its type can do and
 * an exportable key has a release policy; an operation request's buffers match its `in` view and
 * its algorithm names itself; a public text's spec has a supported size; an opened backup holds
 * 1..CLST_KEYMAT_BACKUP_VERSIONS distinct, valid versions.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vault/keymat.h"
#include "vault/rest_int.h"

static void
check_request(const struct clst_vault_key_request *r, bool creating)
{
    if (creating) {
        if ((r->ops & ~clst_vault_keymat_ops_supported(r->type)) != 0) {
            abort();
        }
        if (r->attrs.exportable && r->policy == NULL) {
            abort();
        }
        if (clst_vault_keymat_kty_name(r->type) == NULL ||
            strcmp(r->kty, clst_vault_keymat_kty_name(r->type)) != 0) {
            abort();
        }
    }
    if (r->tags != NULL && strlen(r->tags) > CLST_VAULT_TAGS_MAX) {
        abort();
    }
    if (r->policy != NULL && strlen(r->policy) > CLST_VAULT_POLICY_MAX) {
        abort();
    }
}

static void
requests(const json_t *body)
{
    static const enum clst_vault_keyop ops[] = {CLST_KEYOP_ENCRYPT, CLST_KEYOP_DECRYPT,
                                                CLST_KEYOP_WRAP,    CLST_KEYOP_UNWRAP,
                                                CLST_KEYOP_SIGN,    CLST_KEYOP_VERIFY};
    static const enum clst_vault_keymat_type types[] = {CLST_KEYMAT_RSA, CLST_KEYMAT_EC,
                                                        CLST_KEYMAT_OCT};
    struct clst_vault v;
    struct clst_vault_key_request r;
    struct clst_err err;

    memset(&v, 0, sizeof(v));
    v.retention_days = 90;
    memcpy(v.recovery_level, "Recoverable+Purgeable", sizeof("Recoverable+Purgeable"));

    memset(&r, 0, sizeof(r));
    if (clst_vault_keys_parse_create(&v, body, &r, &err) == CLST_OK) {
        check_request(&r, true);
        clst_vault_key_request_cleanup(&r);
    }
    memset(&r, 0, sizeof(r));
    if (clst_vault_keys_parse_import(&v, body, &r, &err) == CLST_OK) {
        check_request(&r, true);
        if (r.km == NULL || clst_vault_keymat_type(r.km) != r.type) {
            abort();
        }
        clst_vault_key_request_cleanup(&r);
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        memset(&r, 0, sizeof(r));
        if (clst_vault_keys_parse_update(body, types[i], &r, &err) == CLST_OK) {
            check_request(&r, false);
            if (r.has_ops && (r.ops & ~clst_vault_keymat_ops_supported(types[i])) != 0) {
                abort();
            }
            clst_vault_key_request_cleanup(&r);
        }
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        struct clst_vault_op_request o;
        clst_vault_op_request_init(&o);
        if (clst_vault_keys_parse_op(body, ops[i], &o, &err) == CLST_OK) {
            enum clst_vault_alg back;
            const char *name = clst_vault_alg_name(o.alg);
            if (name == NULL || clst_vault_alg_parse(name, &back) != CLST_OK || back != o.alg ||
                o.in.value_size != o.value.size || o.in.iv_size != o.iv.size ||
                o.in.aad_size != o.aad.size || o.in.tag_size != o.tag.size ||
                (o.in.has_iv ? 0 : o.iv.size) != 0) {
                abort();
            }
        }
        clst_vault_op_request_cleanup(&o);
    }
}

static void
stored(const uint8_t *data, size_t size)
{
    struct clst_vault_keymat_spec spec;
    json_t *jwk = NULL;
    struct clst_err err;
    unsigned ops = 0;

    if (clst_vault_keymat_spec_from_public(data, size, &spec, &err) == CLST_OK) {
        bool ok = (spec.type == CLST_KEYMAT_RSA && spec.bits >= 2048 && spec.bits <= 4096) ||
                  (spec.type == CLST_KEYMAT_EC &&
                   (spec.bits == 256 || spec.bits == 384 || spec.bits == 521)) ||
                  (spec.type == CLST_KEYMAT_OCT &&
                   (spec.bits == 128 || spec.bits == 192 || spec.bits == 256));
        if (!ok) {
            abort();
        }
    }
    if (clst_vault_keymat_jwk_response("https://h/keys/k/v", "RSA", CLST_KEYOP_ALL, data, size,
                                       &jwk, &err) == CLST_OK) {
        static const char *const never[] = {"d", "p", "q", "dp", "dq", "qi", "k", "key_hsm"};
        for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
            if (json_object_get(jwk, never[i]) != NULL) {
                abort();
            }
        }
        json_decref(jwk);
    }
    char *text = malloc(size + 1);
    if (text != NULL) {
        memcpy(text, data, size);
        text[size] = '\0';
        if (clst_vault_keymat_ops_from_text(text, 0, &ops, &err) == CLST_OK &&
            (ops & ~CLST_KEYOP_ALL) != 0) {
            abort();
        }
        free(text);
    }
    static const uint8_t key[CLST_KEYMAT_BACKUP_KEY_SIZE] = {0};
    struct clst_vault_backup b;
    memset(&b, 0, sizeof(b));
    if (clst_vault_backup_open(key, data, size, &b, &err) == CLST_OK) {
        if (b.count == 0 || b.count > CLST_KEYMAT_BACKUP_VERSIONS ||
            !clst_vault_name_valid(b.name)) {
            abort();
        }
        for (size_t i = 0; i < b.count; i++) {
            if (!clst_vault_version_valid(b.items[i].meta.version) || b.items[i].value == NULL ||
                strcmp(b.items[i].meta.name, b.name) != 0) {
                abort();
            }
        }
        clst_vault_backup_cleanup(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (body != NULL) {
        requests(body);
        json_decref(body);
    }
    stored(data, size);
    return 0;
}
