/*
 * Cloister crypto: thin, misuse-resistant wrappers over OpenSSL 3 EVP and OSSL_PARAM (no
 * deprecated RSA_* / EC_KEY_* interfaces). Asymmetric keys are EVP_PKEY; symmetric key material
 * and plaintext live in secret memory (core.h) and are wiped after use.
 *
 * Every verify function returns CLST_OK only for a valid signature/tag, CLST_E_VERIFY for an
 * invalid one (including malformed signature encodings), and CLST_E_CRYPTO/CLST_E_INVAL for
 * errors that are not "bad signature". Outputs are written only on success; on failure any
 * partially produced plaintext is wiped.
 */
#ifndef CLOISTER_CRYPTO_H
#define CLOISTER_CRYPTO_H

#include <cloister/core.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* ---- random --------------------------------------------------------------------------------- */

/* Fills out with bytes from OpenSSL's CSPRNG. */
enum clst_status clst_random(void *out, size_t size);

/* ---- hashes and HMAC ------------------------------------------------------------------------ */

enum clst_hash {
    CLST_HASH_SHA1 = 1, /* only where a standard requires it (RSA-OAEP in CKM_RSA_AES_KEY_WRAP) */
    CLST_HASH_SHA256,
    CLST_HASH_SHA384,
    CLST_HASH_SHA512,
};

#define CLST_SHA1_SIZE     20
#define CLST_SHA256_SIZE   32
#define CLST_SHA384_SIZE   48
#define CLST_SHA512_SIZE   64
#define CLST_HASH_MAX_SIZE 64

/* Digest size in bytes, or 0 for an unknown value. */
size_t clst_hash_size(enum clst_hash h);
/* "SHA1", "SHA256", "SHA384", "SHA512" (OpenSSL's names), or NULL. */
const char *clst_hash_name(enum clst_hash h);
/* The EVP_MD for h (OpenSSL's static objects; not to be freed), or NULL. */
const EVP_MD *clst_hash_md(enum clst_hash h);

/* out receives clst_hash_size(h) bytes. */
enum clst_status clst_hash(enum clst_hash h, const void *data, size_t size, uint8_t *out);
enum clst_status clst_sha256(const void *data, size_t size, uint8_t out[static CLST_SHA256_SIZE]);

/* Incremental hashing for large inputs. */
struct clst_hash_ctx {
    EVP_MD_CTX *md;
    enum clst_hash h;
};
enum clst_status clst_hash_init(struct clst_hash_ctx *ctx, enum clst_hash h);
enum clst_status clst_hash_update(struct clst_hash_ctx *ctx, const void *data, size_t size);
/* Writes the digest and releases the context (clst_hash_cleanup is then a no-op). */
enum clst_status clst_hash_final(struct clst_hash_ctx *ctx, uint8_t *out);
void clst_hash_cleanup(struct clst_hash_ctx *ctx);

/* HMAC over EVP_MAC; out receives clst_hash_size(h) bytes. */
enum clst_status clst_hmac(enum clst_hash h, const uint8_t *key, size_t key_size, const void *data,
                           size_t size, uint8_t *out);

/* ---- HKDF (RFC 5869) ------------------------------------------------------------------------ */

/* prk receives clst_hash_size(h) bytes. An empty salt means a string of HashLen zeros. */
enum clst_status clst_hkdf_extract(enum clst_hash h, const uint8_t *salt, size_t salt_size,
                                   const uint8_t *ikm, size_t ikm_size, uint8_t *prk);
/* out_size may be at most 255 * HashLen (CLST_E_LIMIT otherwise). */
enum clst_status clst_hkdf_expand(enum clst_hash h, const uint8_t *prk, size_t prk_size,
                                  const uint8_t *info, size_t info_size, uint8_t *out,
                                  size_t out_size);
/* Extract then expand. */
enum clst_status clst_hkdf(enum clst_hash h, const uint8_t *salt, size_t salt_size,
                           const uint8_t *ikm, size_t ikm_size, const uint8_t *info,
                           size_t info_size, uint8_t *out, size_t out_size);

/* ---- AES-GCM -------------------------------------------------------------------------------- */

#define CLST_GCM_TAG_SIZE   16
#define CLST_GCM_NONCE_SIZE 12
#define CLST_GCM_MIN_TAG_SIZE 12 /* NIST SP 800-38D: shorter tags are refused */

/*
 * A reusable AES-GCM context: the key is set once, then each seal/open only resets the nonce,
 * so streaming formats pay no per-chunk key schedule or allocation. Key sizes 16, 24 or 32 bytes.
 * Nonces are 12 bytes for new data; open accepts 1..128-byte nonces for interoperability. Not
 * thread-safe: use one context per thread.
 */
struct clst_aead;

enum clst_status clst_aead_new(const uint8_t *key, size_t key_size, struct clst_aead **out);
void clst_aead_free(struct clst_aead *a);
/* out receives in_size bytes (out may equal in); tag receives tag_size bytes (12..16). */
enum clst_status clst_aead_seal(struct clst_aead *a, const uint8_t *nonce, size_t nonce_size,
                                const uint8_t *aad, size_t aad_size, const uint8_t *in,
                                size_t in_size, uint8_t *out, uint8_t *tag, size_t tag_size);
/* CLST_E_VERIFY when the tag does not match; out is then wiped. out may equal in. */
enum clst_status clst_aead_open(struct clst_aead *a, const uint8_t *nonce, size_t nonce_size,
                                const uint8_t *aad, size_t aad_size, const uint8_t *in,
                                size_t in_size, const uint8_t *tag, size_t tag_size, uint8_t *out);

/* One-shot forms of the above. */
enum clst_status clst_aes_gcm_seal(const uint8_t *key, size_t key_size, const uint8_t *nonce,
                                   size_t nonce_size, const uint8_t *aad, size_t aad_size,
                                   const uint8_t *in, size_t in_size, uint8_t *out, uint8_t *tag,
                                   size_t tag_size);
enum clst_status clst_aes_gcm_open(const uint8_t *key, size_t key_size, const uint8_t *nonce,
                                   size_t nonce_size, const uint8_t *aad, size_t aad_size,
                                   const uint8_t *in, size_t in_size, const uint8_t *tag,
                                   size_t tag_size, uint8_t *out);

/* ---- AES key wrap: KW (RFC 3394) and KWP (RFC 5649) ----------------------------------------- */

/*
 * kek is 16, 24 or 32 bytes. KW wraps 16.. bytes that are a multiple of 8 into in_size + 8 bytes;
 * KWP wraps 1.. bytes into roundup8(in_size) + 8 bytes. out_cap must hold the result
 * (CLST_E_LIMIT). Unwrap returns CLST_E_VERIFY on an integrity failure and wipes out.
 */
enum clst_status clst_aes_kw_wrap(const uint8_t *kek, size_t kek_size, const uint8_t *in,
                                  size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size);
enum clst_status clst_aes_kw_unwrap(const uint8_t *kek, size_t kek_size, const uint8_t *in,
                                    size_t in_size, uint8_t *out, size_t out_cap,
                                    size_t *out_size);
enum clst_status clst_aes_kwp_wrap(const uint8_t *kek, size_t kek_size, const uint8_t *in,
                                   size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size);
enum clst_status clst_aes_kwp_unwrap(const uint8_t *kek, size_t kek_size, const uint8_t *in,
                                     size_t in_size, uint8_t *out, size_t out_cap,
                                     size_t *out_size);

/* ---- asymmetric keys ------------------------------------------------------------------------ */

enum clst_key_kind {
    CLST_KEY_UNKNOWN = 0,
    CLST_KEY_RSA,
    CLST_KEY_EC_P256,
    CLST_KEY_EC_P384,
    CLST_KEY_EC_P521,
};

enum clst_curve {
    CLST_CURVE_P256 = 1,
    CLST_CURVE_P384,
    CLST_CURVE_P521,
};

#define CLST_RSA_MIN_BITS 2048
#define CLST_RSA_MAX_BITS 4096

enum clst_key_kind clst_pkey_kind(const EVP_PKEY *key);
/* Modulus or field size in bits. */
int clst_pkey_bits(const EVP_PKEY *key);
bool clst_pkey_has_private(const EVP_PKEY *key);
/* True when both keys have the same public part. */
bool clst_pkey_public_equal(const EVP_PKEY *a, const EVP_PKEY *b);
/* A new EVP_PKEY holding only the public part of key. */
enum clst_status clst_pkey_public_copy(const EVP_PKEY *key, EVP_PKEY **out);

/* bits in [CLST_RSA_MIN_BITS, CLST_RSA_MAX_BITS], a multiple of 8; e = 65537. */
enum clst_status clst_rsa_generate(int bits, EVP_PKEY **out);
enum clst_status clst_ec_generate(enum clst_curve curve, EVP_PKEY **out);
/* "P-256" -> CLST_CURVE_P256 etc. (JWK names). */
enum clst_status clst_curve_parse(const char *name, enum clst_curve *out);
const char *clst_curve_name(enum clst_curve curve);

/* Import/export. PEM and DER accept SubjectPublicKeyInfo, PKCS#8 and the traditional RSA/EC
 * forms; export writes SPKI (public) or unencrypted PKCS#8 (private). Private exports go to a
 * secret buffer when the caller initialized `out` with clst_buf_init_secret(). */
enum clst_status clst_pkey_from_pem(const void *pem, size_t size, EVP_PKEY **out,
                                    struct clst_err *err);
enum clst_status clst_pkey_from_der(const void *der, size_t size, EVP_PKEY **out,
                                    struct clst_err *err);
enum clst_status clst_pkey_load_pem_file(const char *path, EVP_PKEY **out, struct clst_err *err);
enum clst_status clst_pkey_to_pem(const EVP_PKEY *key, bool include_private, struct clst_buf *out);
enum clst_status clst_pkey_to_der(const EVP_PKEY *key, bool include_private, struct clst_buf *out);
/*
 * JWK (RFC 7517/7518) for RSA ("n","e" and optionally "d","p","q","dp","dq","qi") and EC
 * ("crv","x","y" and optionally "d"; P-256/384/521). Strict: members of the wrong type, bad
 * base64url, coordinates of the wrong length, points not on the curve and inconsistent private
 * parts are CLST_E_MALFORMED. Other members ("kid", "alg", "use", ...) are ignored here.
 */
enum clst_status clst_pkey_from_jwk(const json_t *jwk, EVP_PKEY **out, struct clst_err *err);
/* A new JSON object with "kty" and the key members (private ones only when include_private). */
enum clst_status clst_pkey_to_jwk(const EVP_PKEY *key, bool include_private, json_t **out);
/* A new JSON string holding base64url(data) without padding ("" for size 0); NULL when out of
 * memory. */
json_t *clst_json_b64url(const uint8_t *data, size_t size);

/* ---- RSA ------------------------------------------------------------------------------------ */

/* An RSA public key from its big-endian modulus and its public exponent (no size or value
 * checks beyond OpenSSL's: the caller checks what its format allows). CLST_E_CRYPTO when OpenSSL
 * refuses (its error queue is cleared); CLST_E_INVAL without a modulus or `out`, or for a
 * modulus over INT_MAX bytes. */
enum clst_status clst_rsa_public_from_ne(const uint8_t *n, size_t n_size, uint32_t e,
                                         EVP_PKEY **out);

/* OAEP with MGF1 using the same hash, empty label. */
enum clst_status clst_rsa_oaep_encrypt(EVP_PKEY *key, enum clst_hash h, const uint8_t *in,
                                       size_t in_size, struct clst_buf *out);
/* CLST_E_VERIFY on any decryption failure (no distinction is reported). */
enum clst_status clst_rsa_oaep_decrypt(EVP_PKEY *key, enum clst_hash h, const uint8_t *in,
                                       size_t in_size, struct clst_buf *out);
/* PKCS#1 v1.5 encryption, for interoperability only (the cloud vault's "RSA1_5"). */
enum clst_status clst_rsa_pkcs1_encrypt(EVP_PKEY *key, const uint8_t *in, size_t in_size,
                                        struct clst_buf *out);
enum clst_status clst_rsa_pkcs1_decrypt(EVP_PKEY *key, const uint8_t *in, size_t in_size,
                                        struct clst_buf *out);

/* Signatures over a message (hashed inside with h). */
enum clst_status clst_rsa_pkcs1_sign(EVP_PKEY *key, enum clst_hash h, const void *msg,
                                     size_t msg_size, struct clst_buf *out);
enum clst_status clst_rsa_pkcs1_verify(EVP_PKEY *key, enum clst_hash h, const void *msg,
                                       size_t msg_size, const uint8_t *sig, size_t sig_size);
/* PSS with MGF1 using h; salt_size is normally clst_hash_size(h). */
enum clst_status clst_rsa_pss_sign(EVP_PKEY *key, enum clst_hash h, size_t salt_size,
                                   const void *msg, size_t msg_size, struct clst_buf *out);
enum clst_status clst_rsa_pss_verify(EVP_PKEY *key, enum clst_hash h, size_t salt_size,
                                     const void *msg, size_t msg_size, const uint8_t *sig,
                                     size_t sig_size);

/* ---- ECDSA and ECDH ------------------------------------------------------------------------- */

enum clst_sig_format {
    CLST_SIG_DER = 1, /* X9.62 ECDSA-Sig-Value, strict DER */
    CLST_SIG_RAW,     /* r || s, each the curve's field size, big-endian (IEEE P1363, JWS) */
};

enum clst_status clst_ecdsa_sign(EVP_PKEY *key, enum clst_hash h, enum clst_sig_format fmt,
                                 const void *msg, size_t msg_size, struct clst_buf *out);
enum clst_status clst_ecdsa_verify(EVP_PKEY *key, enum clst_hash h, enum clst_sig_format fmt,
                                   const void *msg, size_t msg_size, const uint8_t *sig,
                                   size_t sig_size);
/* Raw signature over a precomputed digest (for formats that sign a hash they define). */
enum clst_status clst_ecdsa_verify_digest(EVP_PKEY *key, enum clst_sig_format fmt,
                                          const uint8_t *digest, size_t digest_size,
                                          const uint8_t *sig, size_t sig_size);
/* Converts between the two signature encodings for a curve of coord_size bytes (32/48/66). */
enum clst_status clst_ecdsa_sig_raw_to_der(const uint8_t *raw, size_t raw_size, struct clst_buf *out);
enum clst_status clst_ecdsa_sig_der_to_raw(const uint8_t *der, size_t der_size, size_t coord_size,
                                           struct clst_buf *out);

/* ECDH: the shared x-coordinate of priv * peer (same curve) into a secret buffer. */
enum clst_status clst_ecdh(EVP_PKEY *priv, EVP_PKEY *peer, struct clst_buf *out);
/* The uncompressed point (0x04 || X || Y) of an EC key, and back (public key only). */
enum clst_status clst_ec_point_encode(const EVP_PKEY *key, struct clst_buf *out);
enum clst_status clst_ec_point_decode(enum clst_curve curve, const uint8_t *point, size_t size,
                                      EVP_PKEY **out);

/* ---- CKM_RSA_AES_KEY_WRAP ------------------------------------------------------------------- */

/*
 * PKCS#11 CKM_RSA_AES_KEY_WRAP as the cloud key vault uses it for key release: a fresh AES-256 key
 * is encrypted with RSA-OAEP (hash h, MGF1 with h: SHA-1 for "CKM_RSA_AES_KEY_WRAP", SHA-256 for
 * "RSA_AES_KEY_WRAP_256", SHA-384 for "RSA_AES_KEY_WRAP_384"), followed by AES-KWP of the target
 * key material under that AES key. The output is modulus bytes || KWP bytes.
 */
enum clst_status clst_rsa_aes_wrap(EVP_PKEY *pub, enum clst_hash h, const uint8_t *key,
                                   size_t key_size, struct clst_buf *out);
/* out should be a secret buffer. */
enum clst_status clst_rsa_aes_unwrap(EVP_PKEY *priv, enum clst_hash h, const uint8_t *in,
                                     size_t in_size, struct clst_buf *out);

/* ---- X.509 ---------------------------------------------------------------------------------- */

/* One PEM certificate, or the first of a bundle. */
enum clst_status clst_x509_from_pem(const void *pem, size_t size, X509 **out, struct clst_err *err);
enum clst_status clst_x509_from_der(const void *der, size_t size, X509 **out, struct clst_err *err);
/* Every certificate of a PEM bundle (at least one; at most 64). */
enum clst_status clst_x509_stack_from_pem(const void *pem, size_t size, STACK_OF(X509) **out,
                                          struct clst_err *err);
enum clst_status clst_x509_crl_from_pem_or_der(const void *data, size_t size, X509_CRL **out,
                                               struct clst_err *err);

/*
 * Verifies that `leaf` chains through `untrusted` (may be NULL) to one of `roots` at time `at`
 * (seconds since the epoch; the wall clock is never read). When `crls` is non-NULL, revocation is
 * checked for every certificate of the chain against them (a certificate whose issuer has no CRL
 * in the list fails). RSA-PSS-signed certificates and serial number 0 are accepted (AMD's VCEKs
 * use both). On success and when out_chain is non-NULL, it receives the verified chain, leaf
 * first (free with OSSL_STACK_OF_X509_free / sk_X509_pop_free). err names the failing
 * certificate and reason.
 */
enum clst_status clst_x509_verify_chain(X509 *leaf, STACK_OF(X509) *untrusted,
                                        STACK_OF(X509) *roots, STACK_OF(X509_CRL) *crls,
                                        int64_t at, STACK_OF(X509) **out_chain,
                                        struct clst_err *err);

#endif /* CLOISTER_CRYPTO_H */
