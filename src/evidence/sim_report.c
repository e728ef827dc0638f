/*
 * The sim TEE's evidence (docs/evidence-sim.md): parser, verifier and claim mapper, plus the
 * encoder of the signed part that the producer (sim_platform.c) and the tests use.
 *
 * Layout (little-endian integers):
 *   0x000 report (256 bytes, fixed)      magic, version, sig_alg, flags, product id, svn,
 *                                        mrenclave, mrsigner, platform id, report data, reserved
 *   0x100 u16 cert_size (1..2048)
 *   0x102 platform certificate (DER, cert_size bytes)
 *   ...   signature (96 bytes: r || s big-endian) over SHA-384 of every byte before it
 * and nothing after the signature.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "evidence/evidence_int.h"

static const uint8_t sim_magic[CLST_SIM_MAGIC_SIZE] = {'C', 'S', 'I', 'M'};

/* Offsets of the report fields (the table in docs/evidence-sim.md). */
#define OFF_MAGIC       0x000
#define OFF_VERSION     0x004
#define OFF_SIG_ALG     0x006
#define OFF_FLAGS       0x008
#define OFF_PRODUCT_ID  0x00C
#define OFF_SVN         0x00E
#define OFF_MRENCLAVE   0x010
#define OFF_MRSIGNER    0x040
#define OFF_PLATFORM_ID 0x060
#define OFF_RESERVED1   0x070
#define RESERVED1_SIZE  16
#define OFF_REPORT_DATA 0x080
#define OFF_RESERVED2   0x0C0
#define RESERVED2_SIZE  64
#define OFF_CERT_SIZE   0x100
#define OFF_CERT        0x102

_Static_assert(OFF_RESERVED2 + RESERVED2_SIZE == CLST_SIM_REPORT_SIZE, "report layout");
_Static_assert(OFF_CERT_SIZE == CLST_SIM_REPORT_SIZE, "certificate follows the report");
_Static_assert(OFF_CERT == OFF_CERT_SIZE + CLST_SIM_CERT_LEN_SIZE, "certificate length");

/* ---- parse ---------------------------------------------------------------------------------- */

static size_t
offset_of(const struct clst_cursor *c, size_t size)
{
    return size - c->left;
}

static enum clst_status
truncated(struct clst_err *err, const struct clst_cursor *c, size_t size, const char *field)
{
    return clst_err_set(err, CLST_E_MALFORMED,
                        "sim evidence is truncated: %zu bytes end inside the %s at offset 0x%03zx",
                        size, field, offset_of(c, size));
}

enum clst_status
clst_evidence_sim_parse(const uint8_t *data, size_t size, struct clst_sim_evidence *out,
                        struct clst_err *err)
{
    /* Static storage would be shared between threads; a local copy keeps *out untouched on
     * failure. 2.4 KiB of stack. */
    struct clst_sim_evidence ev;
    struct clst_sim_report *r = &ev.report;
    const uint8_t *magic = NULL;
    uint16_t cert_size = 0;
    size_t off = 0;

    if (out == NULL || (data == NULL && size != 0)) {
        return clst_err_set(err, CLST_E_INVAL, "sim evidence: no output or no input given");
    }
    if (size > CLST_SIM_EVIDENCE_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "sim evidence is %zu bytes, more than the limit of %d bytes", size,
                            CLST_SIM_EVIDENCE_MAX_SIZE);
    }
    memset(&ev, 0, sizeof(ev));
    struct clst_cursor c = clst_cursor_make(data, size);

    if (!clst_cursor_take(&c, CLST_SIM_MAGIC_SIZE, &magic)) {
        return truncated(err, &c, size, "magic");
    }
    if (memcmp(magic, sim_magic, sizeof(sim_magic)) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "not sim evidence: the magic at offset 0x000 is not \"CSIM\"");
    }
    if (!clst_cursor_le16(&c, &r->version)) {
        return truncated(err, &c, size, "version");
    }
    if (r->version != CLST_SIM_VERSION) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sim evidence: unknown report version %u at offset 0x%03x (this "
                            "build understands version %d)",
                            (unsigned)r->version, OFF_VERSION, CLST_SIM_VERSION);
    }
    if (!clst_cursor_le16(&c, &r->sig_alg)) {
        return truncated(err, &c, size, "signature algorithm");
    }
    if (r->sig_alg != CLST_SIM_SIG_ALG_ES384) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sim evidence: unknown signature algorithm %u at offset 0x%03x (only "
                            "%d, ECDSA P-384 with SHA-384, is defined)",
                            (unsigned)r->sig_alg, OFF_SIG_ALG, CLST_SIM_SIG_ALG_ES384);
    }
    if (!clst_cursor_le32(&c, &r->flags)) {
        return truncated(err, &c, size, "flags");
    }
    if ((r->flags & ~CLST_SIM_FLAG_DEBUG) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sim evidence: reserved flag bits 0x%08x set at offset 0x%03x (only "
                            "bit 0, debug, is defined)",
                            (unsigned)(r->flags & ~CLST_SIM_FLAG_DEBUG), OFF_FLAGS);
    }
    if (!clst_cursor_le16(&c, &r->product_id)) {
        return truncated(err, &c, size, "product id");
    }
    if (!clst_cursor_le16(&c, &r->svn)) {
        return truncated(err, &c, size, "security version");
    }
    if (!clst_cursor_copy(&c, r->mrenclave, sizeof(r->mrenclave))) {
        return truncated(err, &c, size, "measurement");
    }
    if (!clst_cursor_copy(&c, r->mrsigner, sizeof(r->mrsigner))) {
        return truncated(err, &c, size, "signer id");
    }
    if (!clst_cursor_copy(&c, r->platform_id, sizeof(r->platform_id))) {
        return truncated(err, &c, size, "platform id");
    }
    if (c.left < RESERVED1_SIZE) {
        return truncated(err, &c, size, "reserved bytes");
    }
    if (!clst_cursor_zeros(&c, RESERVED1_SIZE)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sim evidence: reserved bytes 0x%03x..0x%03x are not zero",
                            OFF_RESERVED1, OFF_RESERVED1 + RESERVED1_SIZE - 1);
    }
    if (!clst_cursor_copy(&c, r->report_data, sizeof(r->report_data))) {
        return truncated(err, &c, size, "report data");
    }
    if (c.left < RESERVED2_SIZE) {
        return truncated(err, &c, size, "reserved bytes");
    }
    if (!clst_cursor_zeros(&c, RESERVED2_SIZE)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sim evidence: reserved bytes 0x%03x..0x%03x are not zero",
                            OFF_RESERVED2, OFF_RESERVED2 + RESERVED2_SIZE - 1);
    }
    if (!clst_cursor_le16(&c, &cert_size)) {
        return truncated(err, &c, size, "certificate length");
    }
    if (cert_size == 0 || cert_size > CLST_SIM_CERT_MAX_SIZE) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sim evidence: platform certificate length %u at offset 0x%03x is "
                            "outside 1..%d",
                            (unsigned)cert_size, OFF_CERT_SIZE, CLST_SIM_CERT_MAX_SIZE);
    }
    if (!clst_cursor_copy(&c, ev.cert_der, cert_size)) {
        return truncated(err, &c, size, "platform certificate");
    }
    ev.cert_size = cert_size;
    ev.signed_size = offset_of(&c, size);
    if (!clst_cursor_copy(&c, ev.signature, sizeof(ev.signature))) {
        return truncated(err, &c, size, "signature");
    }
    if (!clst_cursor_empty(&c)) {
        off = offset_of(&c, size);
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sim evidence: %zu unexpected bytes after the signature at offset "
                            "0x%03zx",
                            c.left, off);
    }
    memcpy(out, &ev, sizeof(ev));
    return CLST_OK;
}

/* ---- encode (the producer and the tests) ---------------------------------------------------- */

enum clst_status
evidence_sim_encode_tbs(const struct clst_sim_report *r, const uint8_t *cert_der, size_t cert_size,
                        struct clst_buf *out)
{
    uint8_t head[CLST_SIM_REPORT_SIZE + CLST_SIM_CERT_LEN_SIZE];

    if (r == NULL || cert_der == NULL || out == NULL || cert_size == 0 ||
        cert_size > CLST_SIM_CERT_MAX_SIZE) {
        return CLST_E_INVAL;
    }
    memset(head, 0, sizeof(head)); /* every reserved byte is zero */
    memcpy(head + OFF_MAGIC, sim_magic, sizeof(sim_magic));
    clst_put_le16(head + OFF_VERSION, r->version);
    clst_put_le16(head + OFF_SIG_ALG, r->sig_alg);
    clst_put_le32(head + OFF_FLAGS, r->flags);
    clst_put_le16(head + OFF_PRODUCT_ID, r->product_id);
    clst_put_le16(head + OFF_SVN, r->svn);
    memcpy(head + OFF_MRENCLAVE, r->mrenclave, sizeof(r->mrenclave));
    memcpy(head + OFF_MRSIGNER, r->mrsigner, sizeof(r->mrsigner));
    memcpy(head + OFF_PLATFORM_ID, r->platform_id, sizeof(r->platform_id));
    memcpy(head + OFF_REPORT_DATA, r->report_data, sizeof(r->report_data));
    clst_put_le16(head + OFF_CERT_SIZE, (uint16_t)cert_size);

    enum clst_status rc = clst_buf_reserve(out, sizeof(head) + cert_size);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = clst_buf_append(out, head, sizeof(head));
    if (rc != CLST_OK) {
        return rc;
    }
    return clst_buf_append(out, cert_der, cert_size);
}

/* ---- verify --------------------------------------------------------------------------------- */

static const char *
key_kind_name(enum clst_key_kind kind)
{
    switch (kind) {
    case CLST_KEY_RSA:
        return "RSA";
    case CLST_KEY_EC_P256:
        return "EC P-256";
    case CLST_KEY_EC_P384:
        return "EC P-384";
    case CLST_KEY_EC_P521:
        return "EC P-521";
    case CLST_KEY_UNKNOWN:
        break;
    }
    return "of an unsupported type";
}

/* The checks on the platform certificate that do not need the root: cheap, so they run on
 * every call, also when the chain came from the cache. */
static enum clst_status
check_platform_cert(X509 *cert, EVP_PKEY *key, struct clst_err *err)
{
    /* Its key must be what the format says signs reports, before anything is verified with
     * it: a P-256 or RSA key is refused here whatever its signature says. */
    enum clst_key_kind kind = key != NULL ? clst_pkey_kind(key) : CLST_KEY_UNKNOWN;
    if (kind != CLST_KEY_EC_P384) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "sim evidence: the platform certificate's key is %s, but sim reports "
                            "are signed with ECDSA P-384",
                            key_kind_name(kind));
    }
    /* An end-entity certificate for signing, not a CA (a root cannot sign reports itself). */
    if (X509_check_ca(cert) != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "sim evidence: the platform certificate is a CA certificate; reports "
                            "must be signed by a platform (end-entity) key");
    }
    if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) != 0 &&
        (X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE) == 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "sim evidence: the platform certificate's key usage does not allow "
                            "digital signatures");
    }
    return CLST_OK;
}

static enum clst_status
sim_verify(const void *parsed, const uint8_t *data, size_t size,
           const struct clst_evidence_input *in, struct clst_err *err)
{
    const struct clst_sim_evidence *ev = parsed;
    enum clst_status rc = CLST_E_VERIFY;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *chain = NULL;
    const unsigned char *p = ev->cert_der;
    uint8_t cert_id[CLST_SIM_PLATFORM_ID_SIZE];
    /* The verified-chain cache (sim_cache.c) is never used with CRLs, so revocation is judged on
     * every call that gives them, nor with a time the chain check would refuse as out of range. */
    bool use_cache = in->crls == NULL && in->at >= 0 && in->roots != NULL;
    bool cached = false;

    if (in->endorsements_size != 0) {
        rc = clst_err_set(err, CLST_E_INVAL,
                          "sim evidence takes no endorsements (its certificate travels inside)");
        goto out;
    }
    /* The parser guarantees this; the signature is checked over these original bytes. */
    if (ev->signed_size + CLST_SIM_SIGNATURE_SIZE != size || ev->cert_size == 0) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "sim evidence: parsed sizes are inconsistent");
        goto out;
    }

    /* 1. The platform certificate: exactly cert_size bytes of DER; decoded and chain-checked
     * before (same bytes, same root among this call's roots, time inside the chain's
     * validity) when the cache has it. */
    if (use_cache &&
        evidence_sim_cache_lookup(ev->cert_der, ev->cert_size, in->roots, in->at, &cert, &key)) {
        cached = true;
    } else {
        cert = d2i_X509(NULL, &p, (long)ev->cert_size);
        if (cert == NULL || p != ev->cert_der + ev->cert_size) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "sim evidence: the platform certificate at offset 0x%03x is not one "
                              "DER X.509 certificate of %zu bytes",
                              OFF_CERT, ev->cert_size);
            goto out;
        }
        key = X509_get0_pubkey(cert);
        if (key != NULL && EVP_PKEY_up_ref(key) != 1) {
            key = NULL;
            rc =
                clst_err_set(err, CLST_E_CRYPTO, "sim evidence: cannot reference the platform key");
            goto out;
        }
    }

    /* 2. Key type, end-entity, key usage: on every call. */
    if ((rc = check_platform_cert(cert, key, err)) != CLST_OK) {
        goto out;
    }

    /* 3. The chain: the platform certificate must be issued by a trusted sim root, valid at the
     * verification time. */
    if (!cached) {
        rc = clst_x509_verify_chain(cert, NULL, in->roots, in->crls, in->at,
                                    use_cache ? &chain : NULL, err);
        if (rc != CLST_OK) {
            /* CLST_E_VERIFY for every chain failure; INVAL/CRYPTO/NOMEM pass through. */
            clst_err_prefix(err, "sim evidence: untrusted platform certificate");
            goto out;
        }
        if (use_cache) {
            evidence_sim_cache_insert(ev->cert_der, ev->cert_size, cert, key, chain);
        }
    }

    /* 4. The report names the platform whose certificate came with it. */
    rc = evidence_sim_cert_platform_id(cert, cert_id, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (CRYPTO_memcmp(cert_id, ev->report.platform_id, sizeof(cert_id)) != 0) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "sim evidence: the report's platform id (offset 0x%03x) is not the one "
                          "in the platform certificate",
                          OFF_PLATFORM_ID);
        goto out;
    }

    /* 5. The signature over every byte before it, as received: always. */
    rc = clst_ecdsa_verify(key, CLST_HASH_SHA384, CLST_SIG_RAW, data, ev->signed_size,
                           ev->signature, sizeof(ev->signature));
    if (rc != CLST_OK) {
        if (rc != CLST_E_NOMEM) {
            rc = CLST_E_VERIFY;
        }
        rc = clst_err_set(err, rc,
                          "sim evidence: the report signature does not verify with the platform "
                          "key (the evidence was altered or signed by another key)");
        goto out;
    }
    rc = CLST_OK;
out:
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

static bool
sim_is_debuggable(const void *parsed)
{
    const struct clst_sim_evidence *ev = parsed;
    return (ev->report.flags & CLST_SIM_FLAG_DEBUG) != 0;
}

static const uint8_t *
sim_report_data(const void *parsed, size_t *out_size)
{
    const struct clst_sim_evidence *ev = parsed;
    *out_size = sizeof(ev->report.report_data);
    return ev->report.report_data;
}

/* ---- claims --------------------------------------------------------------------------------- */

static enum clst_status
set_hex(json_t *claims, const char *name, const uint8_t *bytes, size_t size)
{
    char hex[2 * CLST_SIM_REPORT_DATA_SIZE + 1];
    if (2 * size + 1 > sizeof(hex) || clst_hex_to_str(bytes, size, hex, sizeof(hex)) != CLST_OK) {
        return CLST_E_INTERNAL;
    }
    return json_object_set_new(claims, name, json_string(hex)) == 0 ? CLST_OK : CLST_E_NOMEM;
}

static enum clst_status
set_new(json_t *claims, const char *name, json_t *value)
{
    return json_object_set_new(claims, name, value) == 0 ? CLST_OK : CLST_E_NOMEM;
}

static enum clst_status
sim_claims(const void *parsed, json_t *claims, struct clst_err *err)
{
    const struct clst_sim_report *r = &((const struct clst_sim_evidence *)parsed)->report;
    enum clst_status rc = CLST_E_INTERNAL;

    rc = set_new(claims, CLST_CLAIM_ATTESTATION_TYPE, json_string(CLST_SIM_ATTESTATION_TYPE));
    if (rc == CLST_OK) {
        rc = set_hex(claims, CLST_SIM_CLAIM_MRENCLAVE, r->mrenclave, sizeof(r->mrenclave));
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, CLST_SIM_CLAIM_MRSIGNER, r->mrsigner, sizeof(r->mrsigner));
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, CLST_SIM_CLAIM_PRODUCT_ID, json_integer(r->product_id));
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, CLST_SIM_CLAIM_SVN, json_integer(r->svn));
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, CLST_SIM_CLAIM_IS_DEBUGGABLE,
                     json_boolean((r->flags & CLST_SIM_FLAG_DEBUG) != 0));
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, CLST_SIM_CLAIM_REPORT_DATA, r->report_data, sizeof(r->report_data));
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, CLST_SIM_CLAIM_PLATFORM_ID, r->platform_id, sizeof(r->platform_id));
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, CLST_SIM_CLAIM_VERSION, json_integer(r->version));
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "sim evidence: cannot build the claim set");
    }
    return CLST_OK;
}

static enum clst_status
sim_parse(const uint8_t *data, size_t size, void *parsed, struct clst_err *err)
{
    return clst_evidence_sim_parse(data, size, parsed, err);
}

const struct evidence_ops evidence_sim_ops = {
    .kind = CLST_EVIDENCE_SIM,
    .name = "sim",
    .max_size = CLST_SIM_EVIDENCE_MAX_SIZE,
    .parsed_size = sizeof(struct clst_sim_evidence),
    .parse = sim_parse,
    .verify = sim_verify,
    .is_debuggable = sim_is_debuggable,
    .report_data = sim_report_data,
    .claims = sim_claims,
};
