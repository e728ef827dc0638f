/*
 * Private to src/vault: key material of the vault's keys and the cryptographic operations on it,
 * named as the cloud key vault's data-plane API names them.
 *
 *   - generation per kty/size/curve (RSA 2048/3072/4096 with e = 65537, EC P-256/384/521,
 *     oct AES-128/192/256) and JWK import (private members included);
 *   - private material for sealing in the store: unencrypted PKCS#8 DER (RSA, EC) or the raw key
 *     bytes (oct), always in secret memory, and back (the kty of the stored row must agree);
 *   - the public JWK members as the API returns them (n/e, crv/x/y; never d, p, q, dp, dq, qi, k);
 *   - key_ops as a bit set, with the defaults and the operations each key type can do;
 *   - encrypt/decrypt (RSA-OAEP = SHA-1, RSA-OAEP-256, RSA1_5, A128/192/256GCM with a
 *     vault-generated 12-byte IV and a 16-byte tag), wrap/unwrap (RSA-OAEP, RSA-OAEP-256, RSA1_5,
 *     A128/192/256KW), sign/verify of a DIGEST (RS*, PS* with salt = digest length, ES* with raw
 *     r || s), every input length checked before OpenSSL sees it;
 *   - the backup blob: every version of a key with its attributes and sealed material, encrypted
 *     (AES-256-GCM) under a per-vault backup key, so that only this vault can restore it.
 *
 * Status codes: CLST_E_INVAL for a request that does not fit the key (wrong algorithm for the
 * key, a wrong input length, a missing or unexpected iv/tag), CLST_E_MALFORMED for bytes that do
 * not parse, CLST_E_VERIFY when decryption/unwrapping fails or a signature is invalid (no
 * distinction between causes), CLST_E_DENIED for an operation that key_ops does not allow,
 * CLST_E_CRYPTO/NOMEM for internal failures. The REST layer maps INVAL/MALFORMED/VERIFY/LIMIT to
 * 400, DENIED to 403. Messages say what was wrong and never contain key material.
 *
 * A struct clst_vault_keymat is immutable after creation, so operations may run on it from several
 * threads at once.
 */
#ifndef CLST_VAULT_KEYMAT_H
#define CLST_VAULT_KEYMAT_H

#include <cloister/crypto.h>
#include <cloister/vault_store.h>

#include <jansson.h>

/* ---- key types and specs -------------------------------------------------------------------- */

enum clst_vault_keymat_type {
    CLST_KEYMAT_NONE = 0,
    CLST_KEYMAT_RSA,
    CLST_KEYMAT_EC,
    CLST_KEYMAT_OCT,
};

/* What to generate. */
struct clst_vault_keymat_spec {
    enum clst_vault_keymat_type type;
    int bits;              /* RSA: 2048/3072/4096; oct: 128/192/256; EC: ignored */
    enum clst_curve curve; /* EC only */
};

/* Parses a create/import "kty": "RSA", "EC", "oct" (exact case). The HSM types ("RSA-HSM",
 * "EC-HSM", "oct-HSM") are refused with CLST_E_INVAL: Cloister keeps keys in software under the
 * master key and does not pretend otherwise. */
enum clst_status clst_vault_keymat_kty_parse(const char *kty, enum clst_vault_keymat_type *out,
                                             struct clst_err *err);
/* "RSA", "EC", "oct" (the kty label stored with the key), or NULL. */
const char *clst_vault_keymat_kty_name(enum clst_vault_keymat_type type);

/*
 * Builds a spec from the create request's members: key_size (has_size: the member was present),
 * crv (NULL: absent), public_exponent (has_exp). Defaults: RSA 2048, EC P-256, oct 256. Refuses
 * (CLST_E_INVAL with a message) sizes, curves and exponents that are not supported, key_size on
 * an EC key that contradicts its curve, and crv/public_exponent on a type that has none.
 */
enum clst_status clst_vault_keymat_spec_make(enum clst_vault_keymat_type type, bool has_size,
                                             int64_t key_size, const char *crv, bool has_exp,
                                             int64_t public_exponent,
                                             struct clst_vault_keymat_spec *out,
                                             struct clst_err *err);

/* The spec of a stored key, from its stored public text (clst_vault_keymat_public_text), so that
 * rotation makes a key of the same type and size without opening the old material. */
enum clst_status clst_vault_keymat_spec_from_public(const uint8_t *pub, size_t pub_size,
                                                    struct clst_vault_keymat_spec *out,
                                                    struct clst_err *err);

/* ---- key material --------------------------------------------------------------------------- */

struct clst_vault_keymat;

enum clst_status clst_vault_keymat_generate(const struct clst_vault_keymat_spec *spec,
                                            struct clst_vault_keymat **out, struct clst_err *err);
/*
 * Imports a JWK with its private members: RSA (n, e, d, p, q, dp, dq, qi; 2048..4096 bits), EC
 * (crv, x, y, d; P-256/384/521) or oct (k: 16, 24 or 32 bytes). A public-only key is refused
 * (the vault must be able to use it). "kty" as clst_vault_keymat_kty_parse; other members are
 * ignored here (the REST layer reads key_ops).
 */
enum clst_status clst_vault_keymat_from_jwk(const json_t *jwk, struct clst_vault_keymat **out,
                                            struct clst_err *err);
void clst_vault_keymat_free(struct clst_vault_keymat *km);

enum clst_vault_keymat_type clst_vault_keymat_type(const struct clst_vault_keymat *km);
/* RSA modulus bits, EC field bits, oct key bits. */
int clst_vault_keymat_bits(const struct clst_vault_keymat *km);
/* The spec that generates a key like this one (rotation). */
void clst_vault_keymat_spec_of(const struct clst_vault_keymat *km,
                               struct clst_vault_keymat_spec *out);
/* The EVP_PKEY of an RSA/EC key (borrowed), NULL for oct. */
EVP_PKEY *clst_vault_keymat_pkey(const struct clst_vault_keymat *km);

/*
 * The private material for sealing: PKCS#8 DER (RSA, EC) or the raw key (oct), appended to `out`,
 * which must be a secret buffer (clst_buf_init_secret; CLST_E_INVAL otherwise).
 */
enum clst_status clst_vault_keymat_export_private(const struct clst_vault_keymat *km,
                                                  struct clst_buf *out);
/*
 * The inverse, for the material of a stored key of type `type`. Material of another type (a DER
 * RSA key where the row says EC, an oct key of a length that cannot be) is CLST_E_VERIFY: the
 * row and its value disagree, so the store was tampered with.
 */
enum clst_status clst_vault_keymat_import_private(enum clst_vault_keymat_type type,
                                                  const uint8_t *data, size_t size,
                                                  struct clst_vault_keymat **out,
                                                  struct clst_err *err);

/* The public members as a new JSON object: {"kty":"RSA","n","e"}, {"kty":"EC","crv","x","y"}
 * (x, y padded to the field size), or {"kty":"oct","key_size":bits} (no key bytes). */
enum clst_status clst_vault_keymat_public_json(const struct clst_vault_keymat *km, json_t **out);
/* The same as compact JSON text (what the store keeps as the key's public data). */
enum clst_status clst_vault_keymat_public_text(const struct clst_vault_keymat *km,
                                               struct clst_buf *out);
/* True when the stored public text describes this key (defence in depth after unsealing). */
bool clst_vault_keymat_matches_public(const struct clst_vault_keymat *km, const uint8_t *pub,
                                      size_t pub_size);

/*
 * The API's "key" member: {"kid", "kty", "key_ops", then n/e or crv/x/y} from the stored kty label,
 * key_ops bit set and public text. Members other than n, e, crv, x, y in the stored text are not
 * copied (so private or internal members can never leak through it).
 */
enum clst_status clst_vault_keymat_jwk_response(const char *kid, const char *kty, unsigned key_ops,
                                                const uint8_t *pub, size_t pub_size, json_t **out,
                                                struct clst_err *err);

/* ---- key_ops -------------------------------------------------------------------------------- */

enum clst_vault_keyop {
    CLST_KEYOP_ENCRYPT = 1u << 0,
    CLST_KEYOP_DECRYPT = 1u << 1,
    CLST_KEYOP_SIGN = 1u << 2,
    CLST_KEYOP_VERIFY = 1u << 3,
    CLST_KEYOP_WRAP = 1u << 4,   /* "wrapKey" */
    CLST_KEYOP_UNWRAP = 1u << 5, /* "unwrapKey" */
    CLST_KEYOP_IMPORT = 1u << 6,
    CLST_KEYOP_EXPORT = 1u << 7,
};
#define CLST_KEYOP_ALL 0xffu

/* "encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export" for one
 * bit, NULL otherwise. */
const char *clst_vault_keyop_name(enum clst_vault_keyop op);
/* Exact, case-sensitive name; 0 for an unknown one. */
unsigned clst_vault_keyop_parse(const char *name);
/* The operations a key of this type can ever do (RSA: all; EC: sign, verify, import, export;
 * oct: encrypt, decrypt, wrapKey, unwrapKey, import, export). */
unsigned clst_vault_keymat_ops_supported(enum clst_vault_keymat_type type);
/* The key_ops a new key gets when the request has none: RSA encrypt, decrypt, sign, verify,
 * wrapKey, unwrapKey; EC sign, verify; oct encrypt, decrypt, wrapKey, unwrapKey. */
unsigned clst_vault_keymat_ops_default(enum clst_vault_keymat_type type);
/*
 * A request's key_ops: an array of distinct known names, each one the key type can do. `type`
 * may be CLST_KEYMAT_NONE to skip that check. Wrong types, unknown or repeated names and
 * operations the type cannot do are CLST_E_INVAL with a message naming the offender.
 */
enum clst_status clst_vault_keymat_ops_from_json(const json_t *arr,
                                                 enum clst_vault_keymat_type type, unsigned *out,
                                                 struct clst_err *err);
/* The stored key_ops text (a JSON array) as a bit set; CLST_E_VERIFY when it does not parse
 * (the store authenticates it, so this means a bug or tampering). NULL text = `dflt`. */
enum clst_status clst_vault_keymat_ops_from_text(const char *text, unsigned dflt, unsigned *out,
                                                 struct clst_err *err);
/* A new JSON array of the names in canonical order. */
json_t *clst_vault_keymat_ops_to_json(unsigned ops);
/* Compact JSON text of the array (appended to out). */
enum clst_status clst_vault_keymat_ops_to_text(unsigned ops, struct clst_buf *out);
/* CLST_OK when `ops` holds `op`, else CLST_E_DENIED with "the key's key_ops do not allow …". */
enum clst_status clst_vault_keymat_ops_check(unsigned ops, enum clst_vault_keyop op,
                                             struct clst_err *err);

/* ---- algorithms ----------------------------------------------------------------------------- */

enum clst_vault_alg {
    CLST_ALG_NONE = 0,
    CLST_ALG_RSA_OAEP,     /* OAEP, SHA-1, MGF1-SHA-1, empty label */
    CLST_ALG_RSA_OAEP_256, /* OAEP, SHA-256, MGF1-SHA-256 */
    CLST_ALG_RSA1_5,       /* PKCS#1 v1.5 encryption (interoperability only) */
    CLST_ALG_A128GCM,
    CLST_ALG_A192GCM,
    CLST_ALG_A256GCM,
    CLST_ALG_A128KW, /* RFC 3394 */
    CLST_ALG_A192KW,
    CLST_ALG_A256KW,
    CLST_ALG_RS256,
    CLST_ALG_RS384,
    CLST_ALG_RS512,
    CLST_ALG_PS256,
    CLST_ALG_PS384,
    CLST_ALG_PS512,
    CLST_ALG_ES256,
    CLST_ALG_ES384,
    CLST_ALG_ES512,
};

/* Exact names as the API spells them; CLST_E_NOTFOUND for anything else. */
enum clst_status clst_vault_alg_parse(const char *name, enum clst_vault_alg *out);
const char *clst_vault_alg_name(enum clst_vault_alg alg);
/* The hash of a signature algorithm (0 for the others) and the digest size it signs. */
enum clst_hash clst_vault_alg_hash(enum clst_vault_alg alg);

/*
 * Whether `alg` may be used for `op` (one of ENCRYPT/DECRYPT/WRAP/UNWRAP/SIGN/VERIFY) with this
 * key: the algorithm family fits the operation (GCM for encrypt/decrypt, KW for wrap/unwrap, RSA
 * encryption for both), the key type fits the algorithm, and the size fits (A256GCM needs a
 * 256-bit key, ES384 a P-384 key). CLST_E_INVAL with a message otherwise.
 */
enum clst_status clst_vault_keymat_alg_check(const struct clst_vault_keymat *km,
                                             enum clst_vault_keyop op, enum clst_vault_alg alg,
                                             struct clst_err *err);

/* ---- operations ----------------------------------------------------------------------------- */

#define CLST_KEYMAT_GCM_IV_SIZE  12
#define CLST_KEYMAT_GCM_TAG_SIZE 16
#define CLST_KEYMAT_DATA_MAX     (256 * 1024) /* plaintext of a GCM encryption */
#define CLST_KEYMAT_KW_MAX       4096         /* key bytes wrapped with AES-KW */

/* The request of encrypt/decrypt/wrap/unwrap (pointers borrowed; NULL/0 = member absent). */
struct clst_vault_crypt_in {
    const uint8_t *value;
    size_t value_size;
    const uint8_t *iv;
    size_t iv_size;
    bool has_iv;
    const uint8_t *aad;
    size_t aad_size;
    bool has_aad;
    const uint8_t *tag;
    size_t tag_size;
    bool has_tag;
};

/* The result: value (a secret buffer for decrypt/unwrap), and for GCM encryption the IV and tag. */
struct clst_vault_crypt_out {
    struct clst_buf value;
    uint8_t iv[CLST_KEYMAT_GCM_IV_SIZE];
    size_t iv_size;
    uint8_t tag[CLST_KEYMAT_GCM_TAG_SIZE];
    size_t tag_size;
};
void clst_vault_crypt_out_init(struct clst_vault_crypt_out *out);
void clst_vault_crypt_out_cleanup(struct clst_vault_crypt_out *out);

/*
 * op: CLST_KEYOP_ENCRYPT, _DECRYPT, _WRAP or _UNWRAP. Checks the algorithm against the key
 * (clst_vault_keymat_alg_check), then the inputs:
 *   RSA encrypt/wrap: value 1..(modulus - 2*hash - 2) bytes (OAEP) or 1..(modulus - 11) (RSA1_5);
 *     no iv/aad/tag.
 *   RSA decrypt/unwrap: value exactly the modulus size; failures are CLST_E_VERIFY.
 *   GCM encrypt: no iv and no tag (the vault makes the IV), aad optional, value 0..DATA_MAX.
 *   GCM decrypt: iv of 12 bytes and tag of 16 bytes required, aad as at encryption.
 *   KW wrap: value 16..KW_MAX bytes, a multiple of 8; unwrap: 24..KW_MAX+8, a multiple of 8.
 * out must be initialized (clst_vault_crypt_out_init); it is filled only on success.
 */
enum clst_status clst_vault_keymat_crypt(const struct clst_vault_keymat *km,
                                         enum clst_vault_keyop op, enum clst_vault_alg alg,
                                         const struct clst_vault_crypt_in *in,
                                         struct clst_vault_crypt_out *out, struct clst_err *err);

/* Signs a digest of exactly clst_hash_size(clst_vault_alg_hash(alg)) bytes (CLST_E_INVAL
 * otherwise). RSA signatures are modulus bytes; ECDSA ones r || s (64/96/132 bytes). */
enum clst_status clst_vault_keymat_sign(const struct clst_vault_keymat *km, enum clst_vault_alg alg,
                                        const uint8_t *digest, size_t digest_size,
                                        struct clst_buf *out, struct clst_err *err);
/* CLST_OK for a valid signature, CLST_E_VERIFY for any invalid one (wrong length included);
 * CLST_E_INVAL for an algorithm that does not fit the key or a digest of the wrong length. */
enum clst_status clst_vault_keymat_verify(const struct clst_vault_keymat *km,
                                          enum clst_vault_alg alg, const uint8_t *digest,
                                          size_t digest_size, const uint8_t *sig, size_t sig_size,
                                          struct clst_err *err);

/* ---- backups -------------------------------------------------------------------------------- */

#define CLST_KEYMAT_BACKUP_KEY_SIZE 32
#define CLST_KEYMAT_BACKUP_MAX      (512 * 1024) /* bytes of a blob */
#define CLST_KEYMAT_BACKUP_VERSIONS 1000         /* versions in one blob */
#define CLST_KEYMAT_VAULT_ID_SIZE   16
/* The setting holding the backup key wrapped by the master key. */
#define CLST_KEYMAT_BACKUP_KEY_SETTING "vault.key-backup-key.v1"

/* One version in a backup: its metadata and its private material (PKCS#8 DER or raw oct). */
struct clst_vault_backup_item {
    struct clst_vault_object meta;
    struct clst_secret *value;
};

/* A decoded backup: owned items (oldest version first) and the key's name. */
struct clst_vault_backup {
    char name[CLST_VAULT_NAME_MAX + 1];
    struct clst_vault_backup_item *items;
    size_t count;
};
void clst_vault_backup_cleanup(struct clst_vault_backup *b);

/*
 * Blob = "CLSTKBK1" || vault id (16) || salt (32) || nonce (12) || AES-256-GCM ciphertext || tag
 * (16), the first 68 bytes being the AAD. The vault id is the first 16 bytes of
 * HKDF-SHA-256(backup key, info "cloister.vault.backup.id.v1"), the encryption key
 * HKDF-SHA-256(backup key, salt, "cloister.vault.backup.enc.v1"). The plaintext lists every
 * version (metadata as the store keeps it, private material) in order. Items' `meta` pointers
 * are only read. CLST_E_LIMIT when the blob would exceed CLST_KEYMAT_BACKUP_MAX.
 */
enum clst_status clst_vault_backup_seal(const uint8_t key[static CLST_KEYMAT_BACKUP_KEY_SIZE],
                                        const struct clst_vault_backup_item *items, size_t count,
                                        struct clst_buf *out, struct clst_err *err);
/*
 * Opens a blob: CLST_E_MALFORMED when it is not a Cloister key backup, CLST_E_VERIFY when it was
 * made by another vault or has been altered (the messages say which), CLST_E_LIMIT when too
 * large. On success every item's metadata is a valid key version of `out->name`.
 */
enum clst_status clst_vault_backup_open(const uint8_t key[static CLST_KEYMAT_BACKUP_KEY_SIZE],
                                        const uint8_t *blob, size_t size,
                                        struct clst_vault_backup *out, struct clst_err *err);

/*
 * The vault's backup key: read from the setting CLST_KEYMAT_BACKUP_KEY_SETTING (wrapped by the
 * master key) or, the first time, made at random, wrapped and stored; the key read back after
 * storing is the one returned. Two first calls at the same moment could each store a key (the
 * store has no "set if absent" for settings), so the REST layer calls this once at registration,
 * before the server runs any thread.
 */
enum clst_status clst_vault_backup_key(struct clst_vault_store *store,
                                       struct clst_vault_masterkey *mk,
                                       uint8_t out[static CLST_KEYMAT_BACKUP_KEY_SIZE],
                                       struct clst_err *err);

/* ---- request bodies (parsed in rest_keys.c; exposed for the fuzz harness) ------------------- */

struct clst_vault;

/* What create, import and update requests carry. Owned strings; clean up with
 * clst_vault_key_request_cleanup(). */
struct clst_vault_key_request {
    enum clst_vault_keymat_type type;
    char kty[CLST_VAULT_KTY_MAX + 1];
    struct clst_vault_keymat_spec spec; /* create */
    struct clst_vault_keymat *km;       /* import: the key from the JWK */
    unsigned ops;                       /* key_ops (defaults filled in for create/import) */
    bool has_ops;
    struct clst_vault_attrs attrs; /* defaults, then the request's attributes */
    unsigned attr_fields;          /* CLST_VAULT_UPDATE_* bits the request set */
    char *tags;                    /* canonical JSON text, NULL when absent */
    char *policy;                  /* canonical release policy JSON text, NULL when absent */
    bool policy_immutable;
    bool has_immutable;
};
void clst_vault_key_request_cleanup(struct clst_vault_key_request *r);

/* POST /keys/{name}/create: kty, key_size, public_exponent, crv, key_ops, attributes, tags,
 * release_policy. `v` supplies the attribute defaults (recovery level, retention). */
enum clst_status clst_vault_keys_parse_create(const struct clst_vault *v, const json_t *body,
                                              struct clst_vault_key_request *out,
                                              struct clst_err *err);
/* PUT /keys/{name}: key (a JWK with private members), Hsm, attributes, tags, release_policy. */
enum clst_status clst_vault_keys_parse_import(const struct clst_vault *v, const json_t *body,
                                              struct clst_vault_key_request *out,
                                              struct clst_err *err);
/* PATCH /keys/{name}/{version}: key_ops (checked against `type`), attributes (enabled, nbf, exp),
 * tags, release_policy. out->attrs holds the version's current attributes on input; the present
 * members change them (attr_fields says which), and has_ops/tags/policy say what else was set. */
enum clst_status clst_vault_keys_parse_update(const json_t *body, enum clst_vault_keymat_type type,
                                              struct clst_vault_key_request *out,
                                              struct clst_err *err);

/* The body of encrypt/decrypt/wrapkey/unwrapkey/sign/verify. */
struct clst_vault_op_request {
    enum clst_vault_alg alg;
    struct clst_buf value; /* secret: plaintext or key to wrap */
    struct clst_buf iv;
    struct clst_buf aad;
    struct clst_buf tag;
    struct clst_buf digest;        /* verify */
    struct clst_vault_crypt_in in; /* points into the buffers above */
};
void clst_vault_op_request_init(struct clst_vault_op_request *r);
void clst_vault_op_request_cleanup(struct clst_vault_op_request *r);
/* op: CLST_KEYOP_ENCRYPT .. _VERIFY. Unknown algorithms, missing members, wrong types and bad
 * base64url are CLST_E_INVAL with a message. */
enum clst_status clst_vault_keys_parse_op(const json_t *body, enum clst_vault_keyop op,
                                          struct clst_vault_op_request *out, struct clst_err *err);

#endif /* CLST_VAULT_KEYMAT_H */
