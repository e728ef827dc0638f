/*
 * The Intel DCAP quote parser: SGX quote v3, TDX quote v4 (TD report 1.0) and v5 (TD report 1.0
 * or 1.5), parsed by their declared lengths into an owned, host-order struct (docs/evidence-dcap.md,
 * shared/vectors LAYOUTS.md section 2). Pure: allocates nothing, verifies nothing.
 *
 *   header (48)   version, attestation key type (2), TEE type, v3 QE/PCE SVN | v4+ reserved (0),
 *                 QE vendor id (Intel's), user data (20)
 *   v5 only       u16 body type (2 = TD 1.0, 3 = TD 1.5), u32 body size (584 / 648)
 *   body          SGX REPORT (384, v3) or TD quote body (584 / 648)
 *   u32           signature data length, then exactly that many bytes:
 *     v3          signature (64), attestation key (64), QE report (384), QE report signature
 *                 (64), u16 + QE auth data, u16 type 5, u32 size, PEM PCK chain
 *     v4, v5      signature (64), attestation key (64), u16 type 6, u32 size, then exactly:
 *                 QE report (384), QE report signature (64), u16 + QE auth data,
 *                 u16 type 5, u32 size, PEM PCK chain
 * Bytes after the declared signature data are accepted (real quotes come in 8000-byte buffers,
 * and go-tdx-guest's sample carries a text tail); they are covered by no signature, counted in
 * trailing_size, and excluded from the quote hash.
 */
#include <stdio.h>
#include <string.h>

#include "evidence/dcap_int.h"

static const uint8_t intel_qe_vendor_id[DCAP_QE_VENDOR_ID_SIZE] = {
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
};

/* SGX REPORT body offsets (Intel SGX ECDSA Quote Library API, sgx_report_body_t). */
#define SGX_OFF_CPUSVN       0
#define SGX_OFF_MISCSELECT   16
#define SGX_OFF_RESERVED1    20
#define SGX_RESERVED1_SIZE   12
#define SGX_OFF_ISVEXTPRODID 32
#define SGX_OFF_ATTRIBUTES   48
#define SGX_OFF_MRENCLAVE    64
#define SGX_OFF_RESERVED2    96
#define SGX_RESERVED2_SIZE   32
#define SGX_OFF_MRSIGNER     128
#define SGX_OFF_RESERVED3    160
#define SGX_RESERVED3_SIZE   32
#define SGX_OFF_CONFIGID     192
#define SGX_OFF_ISVPRODID    256
#define SGX_OFF_ISVSVN       258
#define SGX_OFF_CONFIGSVN    260
#define SGX_OFF_RESERVED4    262
#define SGX_RESERVED4_SIZE   42
#define SGX_OFF_ISVFAMILYID  304
#define SGX_OFF_REPORTDATA   320

_Static_assert(SGX_OFF_REPORTDATA + 64 == DCAP_SGX_REPORT_SIZE, "SGX report layout");
_Static_assert(SGX_OFF_RESERVED4 + SGX_RESERVED4_SIZE == SGX_OFF_ISVFAMILYID, "SGX reserved 4");

/* TD quote body offsets (relative to the body). */
#define TD_OFF_TEE_TCB_SVN   0x000
#define TD_OFF_MRSEAM        0x010
#define TD_OFF_MRSIGNERSEAM  0x040
#define TD_OFF_SEAM_ATTR     0x070
#define TD_OFF_TD_ATTR       0x078
#define TD_OFF_XFAM          0x080
#define TD_OFF_MRTD          0x088
#define TD_OFF_MRCONFIGID    0x0B8
#define TD_OFF_MROWNER       0x0E8
#define TD_OFF_MROWNERCONFIG 0x118
#define TD_OFF_RTMR0         0x148
#define TD_OFF_REPORTDATA    0x208
#define TD_OFF_TEE_TCB_SVN2  0x248
#define TD_OFF_MRSERVICETD   0x258

_Static_assert(TD_OFF_REPORTDATA + 64 == DCAP_TD10_BODY_SIZE, "TD 1.0 body layout");
_Static_assert(TD_OFF_MRSERVICETD + 48 == DCAP_TD15_BODY_SIZE, "TD 1.5 body layout");

static enum clst_status
truncated(struct clst_err *err, size_t size, const char *field, size_t off)
{
    return clst_err_set(err, CLST_E_MALFORMED,
                        "DCAP quote is truncated: %zu bytes end inside the %s at offset 0x%zx",
                        size, field, off);
}

static size_t
pos(const struct clst_cursor *c, const uint8_t *base)
{
    return (size_t)(c->ptr - base);
}

/* Copies n bytes into dst, or reports the truncation of `field`. */
static enum clst_status
take(struct clst_cursor *c, const uint8_t *base, size_t size, void *dst, size_t n,
     const char *field, struct clst_err *err)
{
    if (!clst_cursor_copy(c, dst, n)) {
        return truncated(err, size, field, pos(c, base));
    }
    return CLST_OK;
}

static enum clst_status
reserved_zero(struct clst_cursor *c, const uint8_t *base, size_t size, size_t n, const char *what,
              struct clst_err *err)
{
    size_t off = pos(c, base);
    if (c->left < n) {
        return truncated(err, size, what, off);
    }
    if (!clst_cursor_zeros(c, n)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "DCAP quote: reserved bytes 0x%zx..0x%zx (%s) are not zero", off,
                            off + n - 1, what);
    }
    return CLST_OK;
}

/* One 384-byte SGX REPORT body (the ISV enclave's or the QE's). */
static enum clst_status
parse_sgx_report(struct clst_cursor *c, const uint8_t *base, size_t size, const char *what,
                 struct dcap_sgx_report *r, struct clst_err *err)
{
    enum clst_status rc;
    size_t start = pos(c, base);
    char field[64];

    if (c->left < DCAP_SGX_REPORT_SIZE) {
        return truncated(err, size, what, start);
    }
    if ((rc = take(c, base, size, r->cpusvn, 16, what, err)) != CLST_OK) {
        return rc;
    }
    if (!clst_cursor_le32(c, &r->miscselect)) {
        return truncated(err, size, what, pos(c, base));
    }
    snprintf(field, sizeof(field), "%s reserved 1", what);
    if ((rc = reserved_zero(c, base, size, SGX_RESERVED1_SIZE, field, err)) != CLST_OK) {
        return rc;
    }
    if ((rc = take(c, base, size, r->isvextprodid, 16, what, err)) != CLST_OK ||
        (rc = take(c, base, size, r->attributes, 16, what, err)) != CLST_OK ||
        (rc = take(c, base, size, r->mrenclave, 32, what, err)) != CLST_OK) {
        return rc;
    }
    snprintf(field, sizeof(field), "%s reserved 2", what);
    if ((rc = reserved_zero(c, base, size, SGX_RESERVED2_SIZE, field, err)) != CLST_OK) {
        return rc;
    }
    if ((rc = take(c, base, size, r->mrsigner, 32, what, err)) != CLST_OK) {
        return rc;
    }
    snprintf(field, sizeof(field), "%s reserved 3", what);
    if ((rc = reserved_zero(c, base, size, SGX_RESERVED3_SIZE, field, err)) != CLST_OK) {
        return rc;
    }
    if ((rc = take(c, base, size, r->configid, 64, what, err)) != CLST_OK) {
        return rc;
    }
    if (!clst_cursor_le16(c, &r->isvprodid) || !clst_cursor_le16(c, &r->isvsvn) ||
        !clst_cursor_le16(c, &r->configsvn)) {
        return truncated(err, size, what, pos(c, base));
    }
    snprintf(field, sizeof(field), "%s reserved 4", what);
    if ((rc = reserved_zero(c, base, size, SGX_RESERVED4_SIZE, field, err)) != CLST_OK) {
        return rc;
    }
    if ((rc = take(c, base, size, r->isvfamilyid, 16, what, err)) != CLST_OK ||
        (rc = take(c, base, size, r->report_data, 64, what, err)) != CLST_OK) {
        return rc;
    }
    return CLST_OK;
}

static enum clst_status
parse_td_report(struct clst_cursor *c, const uint8_t *base, size_t size, enum dcap_body_type type,
                struct dcap_td_report *r, struct clst_err *err)
{
    size_t body_size = type == DCAP_BODY_TD15 ? DCAP_TD15_BODY_SIZE : DCAP_TD10_BODY_SIZE;
    const uint8_t *b = NULL;

    if (!clst_cursor_take(c, body_size, &b)) {
        return truncated(err, size, "TD quote body", pos(c, base));
    }
    memcpy(r->tee_tcb_svn, b + TD_OFF_TEE_TCB_SVN, sizeof(r->tee_tcb_svn));
    memcpy(r->mrseam, b + TD_OFF_MRSEAM, sizeof(r->mrseam));
    memcpy(r->mrsignerseam, b + TD_OFF_MRSIGNERSEAM, sizeof(r->mrsignerseam));
    memcpy(r->seam_attributes, b + TD_OFF_SEAM_ATTR, sizeof(r->seam_attributes));
    memcpy(r->td_attributes, b + TD_OFF_TD_ATTR, sizeof(r->td_attributes));
    memcpy(r->xfam, b + TD_OFF_XFAM, sizeof(r->xfam));
    memcpy(r->mrtd, b + TD_OFF_MRTD, sizeof(r->mrtd));
    memcpy(r->mrconfigid, b + TD_OFF_MRCONFIGID, sizeof(r->mrconfigid));
    memcpy(r->mrowner, b + TD_OFF_MROWNER, sizeof(r->mrowner));
    memcpy(r->mrownerconfig, b + TD_OFF_MROWNERCONFIG, sizeof(r->mrownerconfig));
    for (size_t i = 0; i < 4; i++) {
        memcpy(r->rtmr[i], b + TD_OFF_RTMR0 + 48 * i, sizeof(r->rtmr[i]));
    }
    memcpy(r->report_data, b + TD_OFF_REPORTDATA, sizeof(r->report_data));
    if (type == DCAP_BODY_TD15) {
        memcpy(r->tee_tcb_svn2, b + TD_OFF_TEE_TCB_SVN2, sizeof(r->tee_tcb_svn2));
        memcpy(r->mrservicetd, b + TD_OFF_MRSERVICETD, sizeof(r->mrservicetd));
    }
    return CLST_OK;
}

/* u16 QE auth data, u16 certification data type 5, u32 size, PEM chain: the rest of `c`. */
static enum clst_status
parse_qe_tail(struct clst_cursor *c, const uint8_t *base, size_t size, struct dcap_quote *q,
              struct clst_err *err)
{
    uint16_t auth_size = 0, cert_type = 0;
    uint32_t cert_size = 0;
    size_t off;

    if (!clst_cursor_le16(c, &auth_size)) {
        return truncated(err, size, "QE authentication data size", pos(c, base));
    }
    if (auth_size > DCAP_QE_AUTH_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "DCAP quote: QE authentication data of %u bytes at offset 0x%zx is "
                            "over the limit of %d bytes",
                            (unsigned)auth_size, pos(c, base), DCAP_QE_AUTH_MAX_SIZE);
    }
    if (!clst_cursor_copy(c, q->qe_auth, auth_size)) {
        return truncated(err, size, "QE authentication data", pos(c, base));
    }
    q->qe_auth_size = auth_size;
    off = pos(c, base);
    if (!clst_cursor_le16(c, &cert_type)) {
        return truncated(err, size, "certification data type", off);
    }
    if (cert_type != DCAP_CERT_PCK_CHAIN) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "DCAP quote: certification data type %u at offset 0x%zx is not %d "
                            "(the PEM PCK certificate chain); this verifier needs the chain inside "
                            "the quote",
                            (unsigned)cert_type, off, DCAP_CERT_PCK_CHAIN);
    }
    if (!clst_cursor_le32(c, &cert_size)) {
        return truncated(err, size, "certification data size", pos(c, base));
    }
    if (cert_size == 0 || cert_size > DCAP_CERT_DATA_MAX_SIZE) {
        return clst_err_set(err, cert_size == 0 ? CLST_E_MALFORMED : CLST_E_LIMIT,
                            "DCAP quote: PCK chain size %u at offset 0x%zx is outside 1..%d",
                            (unsigned)cert_size, pos(c, base) - 4, DCAP_CERT_DATA_MAX_SIZE);
    }
    if (!clst_cursor_copy(c, q->pck_chain, cert_size)) {
        return truncated(err, size, "PCK certificate chain", pos(c, base));
    }
    q->pck_chain_size = cert_size;
    if (!clst_cursor_empty(c)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "DCAP quote: %zu unexpected bytes after the PCK chain at offset 0x%zx "
                            "(the declared sizes disagree)",
                            c->left, pos(c, base));
    }
    return CLST_OK;
}

enum clst_status
dcap_quote_parse(const uint8_t *data, size_t size, struct dcap_quote *out, struct clst_err *err)
{
    struct dcap_quote *q = NULL;
    enum clst_status rc = CLST_E_MALFORMED;
    uint8_t reserved[4];
    uint32_t sig_size = 0;
    struct clst_cursor sig = {0};
    size_t off;

    if (out == NULL || (data == NULL && size != 0)) {
        return clst_err_set(err, CLST_E_INVAL, "DCAP quote: no output or no input given");
    }
    if (size > DCAP_QUOTE_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "DCAP quote is %zu bytes, more than the limit of %d bytes", size,
                            DCAP_QUOTE_MAX_SIZE);
    }
    /* The struct is about 13 KiB: it is filled in place and cleared again on failure. */
    q = out;
    memset(q, 0, sizeof(*q));
    struct clst_cursor c = clst_cursor_make(data, size);

    /* Header. */
    if (!clst_cursor_le16(&c, &q->version)) {
        rc = truncated(err, size, "version", 0);
        goto fail;
    }
    if (q->version != DCAP_VERSION_SGX3 && q->version != DCAP_VERSION_TDX4 &&
        q->version != DCAP_VERSION_TDX5) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "DCAP quote: unknown quote version %u at offset 0x0 (this build reads "
                          "SGX quotes v3 and TDX quotes v4 and v5)",
                          (unsigned)q->version);
        goto fail;
    }
    if (!clst_cursor_le16(&c, &q->att_key_type)) {
        rc = truncated(err, size, "attestation key type", 2);
        goto fail;
    }
    if (q->att_key_type != DCAP_ATT_KEY_ECDSA_P256) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "DCAP quote: attestation key type %u at offset 0x2 is not %d "
                          "(ECDSA-256-with-P-256), the only one defined for these quotes",
                          (unsigned)q->att_key_type, DCAP_ATT_KEY_ECDSA_P256);
        goto fail;
    }
    if (!clst_cursor_le32(&c, &q->tee_type)) {
        rc = truncated(err, size, "TEE type", 4);
        goto fail;
    }
    uint32_t want_tee = q->version == DCAP_VERSION_SGX3 ? DCAP_TEE_SGX : DCAP_TEE_TDX;
    if (q->tee_type != want_tee) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "DCAP quote: TEE type 0x%x at offset 0x4 does not fit a version %u "
                          "quote (expected 0x%x: v3 quotes are SGX, v4 and v5 quotes TDX)",
                          (unsigned)q->tee_type, (unsigned)q->version, (unsigned)want_tee);
        goto fail;
    }
    if (q->version == DCAP_VERSION_SGX3) {
        if (!clst_cursor_le16(&c, &q->qe_svn) || !clst_cursor_le16(&c, &q->pce_svn)) {
            rc = truncated(err, size, "QE/PCE SVN", pos(&c, data));
            goto fail;
        }
    } else {
        if (c.left < sizeof(reserved)) {
            rc = truncated(err, size, "reserved header bytes", pos(&c, data));
            goto fail;
        }
        if (!clst_cursor_zeros(&c, sizeof(reserved))) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "DCAP quote: reserved header bytes 0x8..0xb are not zero");
            goto fail;
        }
    }
    if ((rc = take(&c, data, size, q->qe_vendor_id, sizeof(q->qe_vendor_id), "QE vendor id",
                   err)) != CLST_OK) {
        goto fail;
    }
    if (memcmp(q->qe_vendor_id, intel_qe_vendor_id, sizeof(intel_qe_vendor_id)) != 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "DCAP quote: the QE vendor id at offset 0xc is not Intel's "
                          "(939a7233f79c4ca9940a0db3957f0607)");
        goto fail;
    }
    if ((rc = take(&c, data, size, q->user_data, sizeof(q->user_data), "user data", err)) !=
        CLST_OK) {
        goto fail;
    }

    /* Body. */
    if (q->version == DCAP_VERSION_SGX3) {
        q->body_type = DCAP_BODY_SGX;
        rc = parse_sgx_report(&c, data, size, "ISV enclave report", &q->sgx, err);
    } else if (q->version == DCAP_VERSION_TDX4) {
        q->body_type = DCAP_BODY_TD10;
        rc = parse_td_report(&c, data, size, DCAP_BODY_TD10, &q->td, err);
    } else {
        uint16_t body_type = 0;
        uint32_t body_size = 0;
        off = pos(&c, data);
        if (!clst_cursor_le16(&c, &body_type) || !clst_cursor_le32(&c, &body_size)) {
            rc = truncated(err, size, "body descriptor", off);
            goto fail;
        }
        if ((body_type != DCAP_BODY_TD10 || body_size != DCAP_TD10_BODY_SIZE) &&
            (body_type != DCAP_BODY_TD15 || body_size != DCAP_TD15_BODY_SIZE)) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "DCAP quote v5: body type %u of %u bytes at offset 0x%zx is not a "
                              "TD report 1.0 (type 2, 584 bytes) or 1.5 (type 3, 648 bytes)",
                              (unsigned)body_type, (unsigned)body_size, off);
            goto fail;
        }
        q->body_type = (enum dcap_body_type)body_type;
        rc = parse_td_report(&c, data, size, q->body_type, &q->td, err);
    }
    if (rc != CLST_OK) {
        goto fail;
    }
    q->signed_size = pos(&c, data);

    /* Signature data: exactly sig_size bytes. */
    if (!clst_cursor_le32(&c, &sig_size)) {
        rc = truncated(err, size, "signature data length", q->signed_size);
        goto fail;
    }
    if (!clst_cursor_sub(&c, sig_size, &sig)) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "DCAP quote is truncated: the signature data length at offset 0x%zx "
                          "says %u bytes, only %zu follow",
                          q->signed_size, (unsigned)sig_size, c.left);
        goto fail;
    }
    q->quote_size = pos(&c, data);
    q->trailing_size = c.left;

    if ((rc = take(&sig, data, size, q->signature, sizeof(q->signature), "quote signature",
                   err)) != CLST_OK ||
        (rc = take(&sig, data, size, q->att_key, sizeof(q->att_key), "attestation key", err)) !=
            CLST_OK) {
        goto fail;
    }
    struct clst_cursor qe = sig;
    if (q->version != DCAP_VERSION_SGX3) {
        uint16_t cert_type = 0;
        uint32_t cert_size = 0;
        off = pos(&sig, data);
        if (!clst_cursor_le16(&sig, &cert_type)) {
            rc = truncated(err, size, "certification data type", off);
            goto fail;
        }
        if (cert_type != DCAP_CERT_QE_REPORT) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "DCAP quote: certification data type %u at offset 0x%zx is not %d "
                              "(QE report certification data)",
                              (unsigned)cert_type, off, DCAP_CERT_QE_REPORT);
            goto fail;
        }
        if (!clst_cursor_le32(&sig, &cert_size)) {
            rc = truncated(err, size, "certification data size", pos(&sig, data));
            goto fail;
        }
        if (cert_size != sig.left) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "DCAP quote: the certification data size %u at offset 0x%zx does "
                              "not match the %zu bytes left in the signature data",
                              (unsigned)cert_size, pos(&sig, data) - 4, sig.left);
            goto fail;
        }
        qe = sig;
    }
    off = pos(&qe, data);
    if (qe.left < DCAP_SGX_REPORT_SIZE) {
        rc = truncated(err, size, "QE report", off);
        goto fail;
    }
    memcpy(q->qe_report_raw, qe.ptr, DCAP_SGX_REPORT_SIZE);
    if ((rc = parse_sgx_report(&qe, data, size, "QE report", &q->qe_report, err)) != CLST_OK ||
        (rc = take(&qe, data, size, q->qe_report_sig, sizeof(q->qe_report_sig),
                   "QE report signature", err)) != CLST_OK ||
        (rc = parse_qe_tail(&qe, data, size, q, err)) != CLST_OK) {
        goto fail;
    }
    q->result = &q->result_store;
    return CLST_OK;
fail:
    memset(q, 0, sizeof(*q));
    return rc;
}

/* ---- encoders (tests build quotes with these) ------------------------------------------------ */

void
dcap_sgx_report_encode(const struct dcap_sgx_report *r, uint8_t out[DCAP_SGX_REPORT_SIZE])
{
    memset(out, 0, DCAP_SGX_REPORT_SIZE);
    memcpy(out + SGX_OFF_CPUSVN, r->cpusvn, 16);
    clst_put_le32(out + SGX_OFF_MISCSELECT, r->miscselect);
    memcpy(out + SGX_OFF_ISVEXTPRODID, r->isvextprodid, 16);
    memcpy(out + SGX_OFF_ATTRIBUTES, r->attributes, 16);
    memcpy(out + SGX_OFF_MRENCLAVE, r->mrenclave, 32);
    memcpy(out + SGX_OFF_MRSIGNER, r->mrsigner, 32);
    memcpy(out + SGX_OFF_CONFIGID, r->configid, 64);
    clst_put_le16(out + SGX_OFF_ISVPRODID, r->isvprodid);
    clst_put_le16(out + SGX_OFF_ISVSVN, r->isvsvn);
    clst_put_le16(out + SGX_OFF_CONFIGSVN, r->configsvn);
    memcpy(out + SGX_OFF_ISVFAMILYID, r->isvfamilyid, 16);
    memcpy(out + SGX_OFF_REPORTDATA, r->report_data, 64);
}

void
dcap_td_report_encode(const struct dcap_td_report *r, enum dcap_body_type type, uint8_t *out)
{
    memset(out, 0, type == DCAP_BODY_TD15 ? DCAP_TD15_BODY_SIZE : DCAP_TD10_BODY_SIZE);
    memcpy(out + TD_OFF_TEE_TCB_SVN, r->tee_tcb_svn, 16);
    memcpy(out + TD_OFF_MRSEAM, r->mrseam, 48);
    memcpy(out + TD_OFF_MRSIGNERSEAM, r->mrsignerseam, 48);
    memcpy(out + TD_OFF_SEAM_ATTR, r->seam_attributes, 8);
    memcpy(out + TD_OFF_TD_ATTR, r->td_attributes, 8);
    memcpy(out + TD_OFF_XFAM, r->xfam, 8);
    memcpy(out + TD_OFF_MRTD, r->mrtd, 48);
    memcpy(out + TD_OFF_MRCONFIGID, r->mrconfigid, 48);
    memcpy(out + TD_OFF_MROWNER, r->mrowner, 48);
    memcpy(out + TD_OFF_MROWNERCONFIG, r->mrownerconfig, 48);
    for (size_t i = 0; i < 4; i++) {
        memcpy(out + TD_OFF_RTMR0 + 48 * i, r->rtmr[i], 48);
    }
    memcpy(out + TD_OFF_REPORTDATA, r->report_data, 64);
    if (type == DCAP_BODY_TD15) {
        memcpy(out + TD_OFF_TEE_TCB_SVN2, r->tee_tcb_svn2, 16);
        memcpy(out + TD_OFF_MRSERVICETD, r->mrservicetd, 48);
    }
}
