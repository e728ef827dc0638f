/*
 * TPM 2.0 evidence, verify and claims (docs/evidence-tpm.md), and the kind's evidence_ops.
 *
 * Order of checks (the first failure is reported):
 *   1. the AK: either the caller's enrolled key (input->tpm_ak), or the AK certificate of the
 *      evidence chained through its untrusted intermediates to the caller's roots at the
 *      caller's time (CRLs when given). When the evidence carries the AK's TPMT_PUBLIC, it must
 *      be that same key and a restricted, fixedTPM signing key (so the TPM itself refuses to sign
 *      anything that looks like a TPMS_ATTEST it did not produce);
 *   2. the signature (TPMT_SIGNATURE: RSASSA, RSAPSS or ECDSA with SHA-256/384/512; SHA-1
 *      signatures are refused) over the TPMS_ATTEST bytes exactly as given;
 *   3. the PCRs: every selected PCR's value is supplied and nothing else is; SHA-1 banks only
 *      when input->tpm_allow_sha1; pcrDigest == H_sig(values in selection order), where H_sig is
 *      the signing scheme's hash (not the bank's: the GCE vectors prove it for SHA-1 and SHA-384
 *      banks);
 *   4. the event log, when the evidence has one: replayed for each quoted bank, every quoted PCR
 *      the log extends must replay to the quoted value.
 * The nonce (extraData) and runtime-data binding are the framework's checks (evidence.c), through
 * report_data() below.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "evidence/tpm_int.h"

/* ---- keys ----------------------------------------------------------------------------------- */

static enum clst_status
rsa_from_public(const TPMT_PUBLIC *pub, EVP_PKEY **out, struct clst_err *err)
{
    const TPM2B_PUBLIC_KEY_RSA *mod = &pub->unique.rsa;
    uint32_t exponent = pub->parameters.rsaDetail.exponent;
    uint16_t bits = pub->parameters.rsaDetail.keyBits;

    if (mod->size == 0 || mod->size > sizeof(mod->buffer) || (size_t)mod->size * 8 != bits ||
        bits < CLST_RSA_MIN_BITS || bits > CLST_RSA_MAX_BITS) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the AK is an RSA key of %u bits with a %u-byte modulus (RSA keys of "
                            "%d to %d bits are accepted)",
                            (unsigned)bits, (unsigned)mod->size, CLST_RSA_MIN_BITS,
                            CLST_RSA_MAX_BITS);
    }
    if (exponent == 0) {
        exponent = 65537; /* TPM 2.0 Part 2: 0 means the default exponent */
    }
    if (clst_rsa_public_from_ne(mod->buffer, mod->size, exponent, out) != CLST_OK) {
        return clst_err_set(err, CLST_E_CRYPTO, "cannot build the AK's RSA public key");
    }
    return CLST_OK;
}

static enum clst_status
ecc_from_public(const TPMT_PUBLIC *pub, EVP_PKEY **out, struct clst_err *err)
{
    uint8_t point[1 + 2 * 66];
    size_t coord = 0;
    enum clst_curve curve;
    const TPMS_ECC_POINT *p = &pub->unique.ecc;

    switch (pub->parameters.eccDetail.curveID) {
    case TPM2_ECC_NIST_P256:
        curve = CLST_CURVE_P256;
        coord = 32;
        break;
    case TPM2_ECC_NIST_P384:
        curve = CLST_CURVE_P384;
        coord = 48;
        break;
    case TPM2_ECC_NIST_P521:
        curve = CLST_CURVE_P521;
        coord = 66;
        break;
    default:
        return clst_err_set(err, CLST_E_VERIFY,
                            "the AK is an ECC key on curve 0x%04x (P-256, P-384 and P-521 are "
                            "accepted)",
                            (unsigned)pub->parameters.eccDetail.curveID);
    }
    if (p->x.size == 0 || p->y.size == 0 || p->x.size > coord || p->y.size > coord) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the AK's ECC point has coordinates of %u and %u "
                            "bytes (at most %zu)",
                            (unsigned)p->x.size, (unsigned)p->y.size, coord);
    }
    memset(point, 0, sizeof(point));
    point[0] = 0x04;
    memcpy(point + 1 + coord - p->x.size, p->x.buffer, p->x.size);
    memcpy(point + 1 + 2 * coord - p->y.size, p->y.buffer, p->y.size);
    if (clst_ec_point_decode(curve, point, 1 + 2 * coord, out) != CLST_OK) {
        return clst_err_set(err, CLST_E_VERIFY, "the AK's ECC point is not on its curve");
    }
    return CLST_OK;
}

enum clst_status
evidence_tpm_public_to_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **out, struct clst_err *err)
{
    if (pub == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "tpm AK public area: no input or no output");
    }
    if (pub->type == TPM2_ALG_RSA) {
        return rsa_from_public(pub, out, err);
    }
    if (pub->type == TPM2_ALG_ECC) {
        return ecc_from_public(pub, out, err);
    }
    return clst_err_set(err, CLST_E_VERIFY,
                        "the AK is of type 0x%04x; only RSA and ECC signing keys can sign quotes",
                        (unsigned)pub->type);
}

/* A restricted signing key that never leaves this TPM: the only kind whose quotes mean anything
 * (an unrestricted key signs any digest, including that of a forged TPMS_ATTEST). The public
 * area is proven by the quote only for a primary AK (ak_hierarchy() below); otherwise this check
 * catches a misconfigured AK, and the AK's trust rests on its certificate or its enrollment. */
static enum clst_status
check_ak_attributes(const TPMT_PUBLIC *pub, struct clst_err *err)
{
    TPMA_OBJECT need = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM;
    if ((pub->objectAttributes & need) != need ||
        (pub->objectAttributes & TPMA_OBJECT_DECRYPT) != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the AK (attributes 0x%08x) is not a restricted, fixedTPM signing "
                            "key: such a key can sign data that only looks like a TPM quote",
                            (unsigned)pub->objectAttributes);
    }
    return CLST_OK;
}

/* The AK: the enrolled key, or the key of the certificate that chains to the roots. */
static enum clst_status
trusted_ak(const struct tpm_evidence *ev, const struct clst_evidence_input *in, EVP_PKEY **out,
           struct tpm_result *res, struct clst_err *err)
{
    enum clst_status rc = CLST_E_VERIFY;
    X509 *leaf = NULL;
    STACK_OF(X509) *untrusted = NULL;
    EVP_PKEY *key = NULL;

    if (in->tpm_ak != NULL) {
        if (EVP_PKEY_up_ref(in->tpm_ak) != 1) {
            return clst_err_set(err, CLST_E_CRYPTO, "cannot reference the enrolled AK");
        }
        *out = in->tpm_ak;
        res->aik_validated = false;
        return CLST_OK;
    }
    if (ev->ak_cert.size == 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "tpm evidence has no AK certificate (\"ak_cert\") and no enrolled AK "
                            "was given: the quote's signer cannot be trusted");
    }
    if (in->roots == NULL || sk_X509_num(in->roots) < 1) {
        return clst_err_set(err, CLST_E_INVAL,
                            "tpm evidence: no trust roots for the AK certificate; pass the CA "
                            "that issues AK certificates, or an enrolled AK");
    }
    if ((rc = clst_x509_from_der(ev->ak_cert.der, ev->ak_cert.size, &leaf, err)) != CLST_OK) {
        rc = clst_err_prefix(err, "tpm evidence: the AK certificate");
        goto out;
    }
    untrusted = sk_X509_new_null();
    if (untrusted == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ev->chain_count; i++) {
        X509 *x = NULL;
        if ((rc = clst_x509_from_der(ev->chain[i].der, ev->chain[i].size, &x, err)) != CLST_OK) {
            rc = clst_err_prefix(err, "tpm evidence: AK chain certificate %zu", i + 1);
            goto out;
        }
        if (sk_X509_push(untrusted, x) <= 0) {
            X509_free(x);
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
    }
    rc = clst_x509_verify_chain(leaf, untrusted, in->roots, in->crls, in->at, NULL, err);
    if (rc != CLST_OK) {
        rc = clst_err_prefix(err, "tpm evidence: the AK certificate does not chain to a trusted "
                                  "root");
        goto out;
    }
    key = X509_get0_pubkey(leaf);
    if (key == NULL || EVP_PKEY_up_ref(key) != 1) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "tpm evidence: the AK certificate has no usable "
                          "public key");
        goto out;
    }
    *out = key;
    res->aik_validated = true;
    rc = CLST_OK;
out:
    X509_free(leaf);
    sk_X509_pop_free(untrusted, X509_free);
    return rc;
}

/* ---- the signature -------------------------------------------------------------------------- */

static bool
hash_from_alg(TPMI_ALG_HASH alg, enum clst_hash *out)
{
    switch (alg) {
    case TPM2_ALG_SHA256:
        *out = CLST_HASH_SHA256;
        return true;
    case TPM2_ALG_SHA384:
        *out = CLST_HASH_SHA384;
        return true;
    case TPM2_ALG_SHA512:
        *out = CLST_HASH_SHA512;
        return true;
    default:
        return false;
    }
}

static enum clst_status
verify_signature(const struct tpm_evidence *ev, EVP_PKEY *key, enum clst_hash *out_hash,
                 struct clst_err *err)
{
    const TPMT_SIGNATURE *s = &ev->sig;
    enum clst_key_kind kind = clst_pkey_kind(key);
    enum clst_hash h;
    enum clst_status rc = CLST_E_VERIFY;
    TPMI_ALG_HASH alg;

    switch (s->sigAlg) {
    case TPM2_ALG_RSASSA:
        alg = s->signature.rsassa.hash;
        break;
    case TPM2_ALG_RSAPSS:
        alg = s->signature.rsapss.hash;
        break;
    case TPM2_ALG_ECDSA:
        alg = s->signature.ecdsa.hash;
        break;
    default:
        return clst_err_set(err, CLST_E_VERIFY,
                            "tpm evidence: signature algorithm 0x%04x is not accepted (RSASSA, "
                            "RSAPSS and ECDSA are)",
                            (unsigned)s->sigAlg);
    }
    if (!hash_from_alg(alg, &h)) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "tpm evidence: the quote is signed with hash 0x%04x; only SHA-256, "
                            "SHA-384 and SHA-512 signatures are accepted",
                            (unsigned)alg);
    }
    if (s->sigAlg == TPM2_ALG_ECDSA) {
        const TPMS_SIGNATURE_ECDSA *e = &s->signature.ecdsa;
        size_t coord = kind == CLST_KEY_EC_P256   ? 32
                       : kind == CLST_KEY_EC_P384 ? 48
                       : kind == CLST_KEY_EC_P521 ? 66
                                                  : 0;
        uint8_t raw[2 * 66];
        if (coord == 0) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "tpm evidence: an ECDSA signature, but the AK is not an EC key");
        }
        if (e->signatureR.size == 0 || e->signatureS.size == 0 || e->signatureR.size > coord ||
            e->signatureS.size > coord) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "tpm evidence: the ECDSA signature's r and s (%u and %u bytes) "
                                "do not fit the AK's curve",
                                (unsigned)e->signatureR.size, (unsigned)e->signatureS.size);
        }
        memset(raw, 0, sizeof(raw));
        memcpy(raw + coord - e->signatureR.size, e->signatureR.buffer, e->signatureR.size);
        memcpy(raw + 2 * coord - e->signatureS.size, e->signatureS.buffer, e->signatureS.size);
        rc = clst_ecdsa_verify(key, h, CLST_SIG_RAW, ev->quote, ev->quote_size, raw, 2 * coord);
    } else {
        const TPM2B_PUBLIC_KEY_RSA *sig =
            s->sigAlg == TPM2_ALG_RSASSA ? &s->signature.rsassa.sig : &s->signature.rsapss.sig;
        if (kind != CLST_KEY_RSA) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "tpm evidence: an RSA signature, but the AK is not an RSA key");
        }
        if (s->sigAlg == TPM2_ALG_RSASSA) {
            rc = clst_rsa_pkcs1_verify(key, h, ev->quote, ev->quote_size, sig->buffer, sig->size);
        } else {
            /* TPM 2.0 Part 1 lets a TPM use either the digest size or the largest salt the key
             * allows (older TPMs); both are sound PSS parameters, so both are tried. */
            int bits = clst_pkey_bits(key);
            size_t hlen = clst_hash_size(h);
            size_t em_len = bits > 1 ? ((size_t)bits - 1 + 7) / 8 : 0;
            rc = clst_rsa_pss_verify(key, h, hlen, ev->quote, ev->quote_size, sig->buffer,
                                     sig->size);
            if (rc == CLST_E_VERIFY && em_len >= 2 * hlen + 2) {
                rc = clst_rsa_pss_verify(key, h, em_len - hlen - 2, ev->quote, ev->quote_size,
                                         sig->buffer, sig->size);
            }
        }
    }
    if (rc == CLST_E_VERIFY || rc == CLST_E_INVAL) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "tpm evidence: the quote's signature does not verify with the AK (the "
                            "quote was altered, or signed by another key)");
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "tpm evidence: cannot check the quote's signature");
    }
    *out_hash = h;
    return CLST_OK;
}

/* ---- PCRs ----------------------------------------------------------------------------------- */

static const struct tpm_pcr_bank *
find_bank(const struct tpm_evidence *ev, uint16_t alg)
{
    for (size_t i = 0; i < ev->bank_count; i++) {
        if (ev->banks[i].alg == alg) {
            return &ev->banks[i];
        }
    }
    return NULL;
}

/* The PCR mask selection entry `i` selects (bits past PCR 23 are refused). */
static enum clst_status
selection_mask(const TPMS_PCR_SELECTION *s, uint32_t *out, struct clst_err *err)
{
    uint32_t mask = 0;
    for (uint8_t j = 0; j < s->sizeofSelect; j++) {
        for (unsigned b = 0; b < 8; b++) {
            if ((s->pcrSelect[j] & (1u << b)) == 0) {
                continue;
            }
            unsigned pcr = 8u * j + b;
            if (pcr >= TPM_PCR_COUNT) {
                return clst_err_set(err, CLST_E_VERIFY,
                                    "tpm evidence: the quote selects PCR %u (PCRs are 0..23)", pcr);
            }
            mask |= 1u << pcr;
        }
    }
    *out = mask;
    return CLST_OK;
}

/* Checks the selection against the supplied values (each selected PCR given, nothing more, no
 * bank twice, SHA-1 only when allowed). */
static enum clst_status
check_selection(const struct tpm_evidence *ev, bool allow_sha1, struct clst_err *err)
{
    const TPML_PCR_SELECTION *sel = &ev->attest.attested.quote.pcrSelect;
    uint32_t covered[TPM_MAX_BANKS] = {0};

    for (uint32_t i = 0; i < sel->count; i++) {
        const TPMS_PCR_SELECTION *s = &sel->pcrSelections[i];
        const char *name = evidence_tpm_alg_name(s->hash);
        uint32_t mask = 0;
        enum clst_status rc = selection_mask(s, &mask, err);
        if (rc != CLST_OK) {
            return rc;
        }
        if (name == NULL) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "tpm evidence: the quote covers PCR bank 0x%04x, which this "
                                "verifier does not support (sha1, sha256, sha384, sha512)",
                                (unsigned)s->hash);
        }
        for (uint32_t k = 0; k < i; k++) {
            if (sel->pcrSelections[k].hash == s->hash) {
                return clst_err_set(err, CLST_E_VERIFY,
                                    "tpm evidence: the quote selects the %s bank twice", name);
            }
        }
        if (s->hash == TPM_ALG_SHA1_ID && !allow_sha1 && mask != 0) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "tpm evidence: the quote covers the SHA-1 PCR bank, which is not "
                                "accepted (collision-prone); quote the sha256 bank, or allow "
                                "SHA-1 explicitly");
        }
        const struct tpm_pcr_bank *b = find_bank(ev, s->hash);
        uint32_t given = b != NULL ? b->present : 0;
        if ((mask & ~given) != 0) {
            unsigned pcr = 0;
            while (((mask & ~given) & (1u << pcr)) == 0) {
                pcr++;
            }
            return clst_err_set(err, CLST_E_VERIFY,
                                "tpm evidence: the quote covers PCR %s:%u but the evidence does "
                                "not give its value",
                                name, pcr);
        }
        for (size_t k = 0; k < ev->bank_count; k++) {
            if (ev->banks[k].alg == s->hash) {
                covered[k] = mask;
            }
        }
    }
    for (size_t k = 0; k < ev->bank_count; k++) {
        uint32_t extra = ev->banks[k].present & ~covered[k];
        if (extra != 0) {
            unsigned pcr = 0;
            while ((extra & (1u << pcr)) == 0) {
                pcr++;
            }
            return clst_err_set(err, CLST_E_VERIFY,
                                "tpm evidence: PCR %s:%u is given but the quote does not cover "
                                "it (only quoted values can be trusted)",
                                evidence_tpm_alg_name(ev->banks[k].alg), pcr);
        }
    }
    return CLST_OK;
}

enum clst_status
evidence_tpm_pcr_digest(const struct tpm_evidence *ev, enum clst_hash h, uint8_t *out,
                        size_t *out_size, struct clst_err *err)
{
    const TPML_PCR_SELECTION *sel = &ev->attest.attested.quote.pcrSelect;
    struct clst_hash_ctx ctx;
    enum clst_status rc;

    if ((rc = clst_hash_init(&ctx, h)) != CLST_OK) {
        return clst_err_set(err, rc, "tpm evidence: cannot hash the PCR values");
    }
    for (uint32_t i = 0; i < sel->count && rc == CLST_OK; i++) {
        const TPMS_PCR_SELECTION *s = &sel->pcrSelections[i];
        const struct tpm_pcr_bank *b = find_bank(ev, s->hash);
        uint32_t mask = 0;
        if ((rc = selection_mask(s, &mask, err)) != CLST_OK) {
            break;
        }
        for (unsigned pcr = 0; pcr < TPM_PCR_COUNT && rc == CLST_OK; pcr++) {
            if ((mask & (1u << pcr)) == 0) {
                continue;
            }
            if (b == NULL || (b->present & (1u << pcr)) == 0) {
                rc = clst_err_set(err, CLST_E_VERIFY, "tpm evidence: a quoted PCR has no value");
                break;
            }
            rc = clst_hash_update(&ctx, b->value[pcr], b->digest_size);
        }
    }
    if (rc == CLST_OK) {
        rc = clst_hash_final(&ctx, out);
        if (rc == CLST_OK) {
            *out_size = clst_hash_size(h);
            return CLST_OK;
        }
    }
    clst_hash_cleanup(&ctx);
    if (err != NULL && err->status == CLST_OK) {
        clst_err_set(err, rc, "tpm evidence: cannot hash the PCR values");
    }
    return rc;
}

static enum clst_status
check_pcr_digest(const struct tpm_evidence *ev, enum clst_hash h, struct clst_err *err)
{
    uint8_t digest[CLST_HASH_MAX_SIZE];
    size_t size = 0;
    const TPM2B_DIGEST *quoted = &ev->attest.attested.quote.pcrDigest;
    enum clst_status rc = evidence_tpm_pcr_digest(ev, h, digest, &size, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (quoted->size != size || CRYPTO_memcmp(quoted->buffer, digest, size) != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "tpm evidence: the PCR values given do not hash to the quote's "
                            "pcrDigest (they are not the values the TPM quoted)");
    }
    return CLST_OK;
}

/* ---- the event log -------------------------------------------------------------------------- */

static enum clst_status
check_eventlog(const struct tpm_evidence *ev, struct tpm_result *res, struct clst_err *err)
{
    const TPML_PCR_SELECTION *sel = &ev->attest.attested.quote.pcrSelect;
    struct tpm_eventlog_info info;
    struct tpm_replay replay;
    enum clst_status rc;

    if (ev->eventlog_size == 0) {
        return CLST_OK;
    }
    if ((rc = evidence_tpm_eventlog_parse(ev->eventlog, ev->eventlog_size, &info, err)) !=
        CLST_OK) {
        return clst_err_prefix(err, "tpm evidence: event_log");
    }
    for (uint32_t i = 0; i < sel->count && i < TPM_MAX_BANKS; i++) {
        const TPMS_PCR_SELECTION *s = &sel->pcrSelections[i];
        const struct tpm_pcr_bank *b = find_bank(ev, s->hash);
        uint32_t mask = 0;
        if ((rc = selection_mask(s, &mask, err)) != CLST_OK) {
            return rc;
        }
        if (mask == 0) {
            continue;
        }
        rc = evidence_tpm_eventlog_replay(ev->eventlog, ev->eventlog_size, s->hash, &replay, err);
        if (rc != CLST_OK) {
            return clst_err_prefix(err, "tpm evidence: event_log");
        }
        for (unsigned pcr = 0; pcr < TPM_PCR_COUNT; pcr++) {
            uint32_t bit = 1u << pcr;
            if ((mask & replay.touched & bit) == 0) {
                continue; /* not quoted, or not measured by the log (e.g. PCR 10 for IMA) */
            }
            if (b == NULL ||
                CRYPTO_memcmp(replay.pcr[pcr], b->value[pcr], replay.digest_size) != 0) {
                return clst_err_set(err, CLST_E_VERIFY,
                                    "tpm evidence: replaying the event log gives PCR %s:%u a "
                                    "value other than the quoted one (the log is not the log of "
                                    "this boot, or was altered)",
                                    evidence_tpm_alg_name(s->hash), pcr);
            }
            res->eventlog_pcrs[i] |= bit;
        }
    }
    res->eventlog_verified = true;
    res->eventlog_events = info.event_count;
    return CLST_OK;
}

/* ---- the kind ------------------------------------------------------------------------------- */

static enum clst_status
tpm_parse(const uint8_t *data, size_t size, void *parsed, struct clst_err *err)
{
    return evidence_tpm_parse(data, size, parsed, err);
}

static enum clst_status
spki_sha256(EVP_PKEY *key, uint8_t out[static CLST_SHA256_SIZE], struct clst_err *err)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    enum clst_status rc = n > 0 ? clst_sha256(der, (size_t)n, out) : CLST_E_CRYPTO;
    OPENSSL_free(der);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "tpm evidence: cannot encode the AK public key");
    }
    return CLST_OK;
}

/*
 * The AK's public area is not signed, but its Name (nameAlg || H(TPMT_PUBLIC)) is, inside the
 * quote's qualifiedSigner, for a primary key: QN = nameAlg || H(hierarchy handle || Name). When
 * qualifiedSigner is that of ak_public as a primary key of a hierarchy, the quote proves that
 * exact public area (attributes included) signed it. NULL when it is not (a child key, or a
 * public area that is not the signer's).
 */
static const char *
ak_hierarchy(const struct tpm_evidence *ev)
{
    static const struct {
        uint32_t handle;
        const char *name;
    } hierarchies[] = {
        {TPM2_RH_ENDORSEMENT, "endorsement"},
        {TPM2_RH_OWNER, "owner"},
        {TPM2_RH_PLATFORM, "platform"},
    };
    enum clst_hash h;
    uint8_t name[2 + CLST_HASH_MAX_SIZE], buf[4 + sizeof(name)], qn[2 + CLST_HASH_MAX_SIZE];

    if (!ev->has_ak_public || !hash_from_alg(ev->ak_public.nameAlg, &h)) {
        return NULL;
    }
    size_t n = clst_hash_size(h);
    clst_put_be16(name, ev->ak_public.nameAlg);
    clst_put_be16(qn, ev->ak_public.nameAlg);
    if (clst_hash(h, ev->ak_public_raw, ev->ak_public_size, name + 2) != CLST_OK) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(hierarchies) / sizeof(hierarchies[0]); i++) {
        clst_put_be32(buf, hierarchies[i].handle);
        memcpy(buf + 4, name, 2 + n);
        if (clst_hash(h, buf, 4 + 2 + n, qn + 2) == CLST_OK &&
            ev->attest.qualifiedSigner.size == 2 + n &&
            CRYPTO_memcmp(ev->attest.qualifiedSigner.name, qn, 2 + n) == 0) {
            return hierarchies[i].name;
        }
    }
    return NULL;
}

static enum clst_status
tpm_verify(const void *parsed, const uint8_t *data, size_t size,
           const struct clst_evidence_input *in, struct clst_err *err)
{
    const struct tpm_evidence *ev = parsed;
    struct tpm_result res;
    EVP_PKEY *key = NULL, *described = NULL;
    enum clst_hash h = CLST_HASH_SHA256;
    enum clst_status rc = CLST_E_VERIFY;

    (void)data;
    (void)size;
    memset(&res, 0, sizeof(res));
    if (ev->result == NULL || ev->quote_size == 0 || ev->quote_size > sizeof(ev->quote) ||
        ev->bank_count > TPM_MAX_BANKS || ev->chain_count > TPM_CHAIN_MAX_COUNT) {
        return clst_err_set(err, CLST_E_INTERNAL, "tpm evidence: parsed state is inconsistent");
    }
    /* 1. The AK. */
    if ((rc = trusted_ak(ev, in, &key, &res, err)) != CLST_OK) {
        goto out;
    }
    if (ev->has_ak_public) {
        if ((rc = evidence_tpm_public_to_pkey(&ev->ak_public, &described, err)) != CLST_OK) {
            rc = clst_err_prefix(err, "tpm evidence: ak_public");
            goto out;
        }
        if (!clst_pkey_public_equal(key, described)) {
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "tpm evidence: \"ak_public\" is not the %s (the evidence mixes "
                              "two keys)",
                              in->tpm_ak != NULL ? "enrolled AK" : "AK certificate's key");
            goto out;
        }
        if ((rc = check_ak_attributes(&ev->ak_public, err)) != CLST_OK) {
            rc = clst_err_prefix(err, "tpm evidence");
            goto out;
        }
    }
    if ((rc = spki_sha256(key, res.ak_spki_sha256, err)) != CLST_OK) {
        goto out;
    }
    /* 2. The signature over the quote as given. */
    if ((rc = verify_signature(ev, key, &h, err)) != CLST_OK) {
        goto out;
    }
    /* 3. The PCRs. */
    if ((rc = check_selection(ev, in->tpm_allow_sha1, err)) != CLST_OK ||
        (rc = check_pcr_digest(ev, h, err)) != CLST_OK) {
        goto out;
    }
    /* 4. The event log. */
    if ((rc = check_eventlog(ev, &res, err)) != CLST_OK) {
        goto out;
    }
    res.ak_hierarchy = ak_hierarchy(ev);
    res.done = true;
    *ev->result = res;
    rc = CLST_OK;
out:
    EVP_PKEY_free(key);
    EVP_PKEY_free(described);
    return rc;
}

static bool
tpm_is_debuggable(const void *parsed)
{
    (void)parsed;
    return false; /* a TPM quote has no debug state; measured boot says what ran */
}

static const uint8_t *
tpm_report_data(const void *parsed, size_t *out_size)
{
    const struct tpm_evidence *ev = parsed;
    *out_size = ev->attest.extraData.size;
    return ev->attest.extraData.buffer;
}

/* ---- claims --------------------------------------------------------------------------------- */

static enum clst_status
set_new(json_t *obj, const char *name, json_t *value)
{
    if (value == NULL) {
        return CLST_E_NOMEM;
    }
    return json_object_set_new(obj, name, value) == 0 ? CLST_OK : CLST_E_NOMEM;
}

static enum clst_status
set_hex(json_t *obj, const char *name, const uint8_t *bytes, size_t size)
{
    char hex[2 * sizeof(TPMU_NAME) + 1];
    if (2 * size + 1 > sizeof(hex) || clst_hex_to_str(bytes, size, hex, sizeof(hex)) != CLST_OK) {
        return CLST_E_INTERNAL;
    }
    return set_new(obj, name, json_string(hex));
}

static const char *
sig_alg_name(TPMI_ALG_SIG_SCHEME alg)
{
    return alg == TPM2_ALG_RSASSA ? "rsassa" : alg == TPM2_ALG_RSAPSS ? "rsapss" : "ecdsa";
}

static enum clst_status
pcr_claims(const struct tpm_evidence *ev, json_t *claims)
{
    json_t *pcrs = json_object();
    enum clst_status rc = pcrs != NULL ? CLST_OK : CLST_E_NOMEM;

    for (size_t k = 0; k < ev->bank_count && rc == CLST_OK; k++) {
        const struct tpm_pcr_bank *b = &ev->banks[k];
        json_t *bank = json_object();
        rc = set_new(pcrs, evidence_tpm_alg_name(b->alg), bank);
        for (unsigned pcr = 0; pcr < TPM_PCR_COUNT && rc == CLST_OK; pcr++) {
            char index[4];
            if ((b->present & (1u << pcr)) == 0) {
                continue;
            }
            snprintf(index, sizeof(index), "%u", pcr);
            rc = set_hex(bank, index, b->value[pcr], b->digest_size);
        }
    }
    if (rc == CLST_OK) {
        return set_new(claims, TPM_CLAIM_PCRS, pcrs);
    }
    json_decref(pcrs);
    return rc;
}

static enum clst_status
eventlog_claims(const struct tpm_evidence *ev, json_t *claims)
{
    const struct tpm_result *r = ev->result;
    const TPML_PCR_SELECTION *sel = &ev->attest.attested.quote.pcrSelect;
    enum clst_status rc =
        set_new(claims, TPM_CLAIM_EVENTLOG_VERIFIED, json_boolean(r->eventlog_verified));
    if (rc != CLST_OK || !r->eventlog_verified) {
        return rc;
    }
    if ((rc = set_new(claims, TPM_CLAIM_EVENTLOG_EVENTS,
                      json_integer((json_int_t)r->eventlog_events))) != CLST_OK) {
        return rc;
    }
    json_t *pcrs = json_object();
    rc = pcrs != NULL ? CLST_OK : CLST_E_NOMEM;
    for (uint32_t i = 0; i < sel->count && i < TPM_MAX_BANKS && rc == CLST_OK; i++) {
        if (r->eventlog_pcrs[i] == 0) {
            continue;
        }
        json_t *list = json_array();
        rc = set_new(pcrs, evidence_tpm_alg_name(sel->pcrSelections[i].hash), list);
        for (unsigned pcr = 0; pcr < TPM_PCR_COUNT && rc == CLST_OK; pcr++) {
            if ((r->eventlog_pcrs[i] & (1u << pcr)) != 0 &&
                json_array_append_new(list, json_integer(pcr)) != 0) {
                rc = CLST_E_NOMEM;
            }
        }
    }
    if (rc == CLST_OK) {
        return set_new(claims, TPM_CLAIM_EVENTLOG_PCRS, pcrs);
    }
    json_decref(pcrs);
    return rc;
}

static enum clst_status
tpm_claims(const void *parsed, json_t *claims, struct clst_err *err)
{
    const struct tpm_evidence *ev = parsed;
    const struct tpm_result *r = ev->result;
    const TPMS_ATTEST *a = &ev->attest;
    struct clst_buf b64;
    uint8_t fw[8], cert_hash[CLST_SHA256_SIZE];
    enum clst_status rc = CLST_OK;
    TPMI_ALG_HASH sig_hash = ev->sig.sigAlg == TPM2_ALG_ECDSA    ? ev->sig.signature.ecdsa.hash
                             : ev->sig.sigAlg == TPM2_ALG_RSAPSS ? ev->sig.signature.rsapss.hash
                                                                 : ev->sig.signature.rsassa.hash;

    if (r == NULL || !r->done) {
        return clst_err_set(err, CLST_E_INTERNAL, "tpm evidence: claims without verification");
    }
    clst_buf_init(&b64, 64);
    if (clst_b64_encode(r->ak_spki_sha256, sizeof(r->ak_spki_sha256), &b64) != CLST_OK ||
        clst_buf_terminate(&b64) != CLST_OK) {
        clst_buf_cleanup(&b64);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    clst_put_be64(fw, a->firmwareVersion);
    const struct {
        const char *name;
        json_t *value;
    } simple[] = {
        {CLST_CLAIM_ATTESTATION_TYPE, json_string(TPM_ATTESTATION_TYPE)},
        {TPM_CLAIM_TPM_VERSION, json_integer(2)},
        {TPM_CLAIM_AIK_VALIDATED, json_boolean(r->aik_validated)},
        {TPM_CLAIM_AIK_PUB_HASH, json_string((const char *)b64.data)},
        {TPM_CLAIM_AK_TRUST, json_string(r->aik_validated ? "certificate" : "enrolled-key")},
        {TPM_CLAIM_SIG_ALG, json_string(sig_alg_name(ev->sig.sigAlg))},
        {TPM_CLAIM_SIG_HASH, json_string(evidence_tpm_alg_name(sig_hash))},
        {TPM_CLAIM_CLOCK, json_integer((json_int_t)(a->clockInfo.clock & INT64_MAX))},
        {TPM_CLAIM_RESET_COUNT, json_integer(a->clockInfo.resetCount)},
        {TPM_CLAIM_RESTART_COUNT, json_integer(a->clockInfo.restartCount)},
        {TPM_CLAIM_SAFE, json_boolean(a->clockInfo.safe != 0)},
    };
    /* Evaluate every entry so each allocated value is handed to (and owned by) the object. */
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        enum clst_status one = set_new(claims, simple[i].name, simple[i].value);
        if (rc == CLST_OK) {
            rc = one;
        }
    }
    clst_buf_cleanup(&b64);
    if (rc == CLST_OK) {
        rc = set_hex(claims, TPM_CLAIM_EXTRA_DATA, a->extraData.buffer, a->extraData.size);
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, TPM_CLAIM_QUALIFIED_SIGNER, a->qualifiedSigner.name,
                     a->qualifiedSigner.size);
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, TPM_CLAIM_FIRMWARE_VERSION, fw, sizeof(fw));
    }
    if (rc == CLST_OK && r->aik_validated) {
        rc = clst_sha256(ev->ak_cert.der, ev->ak_cert.size, cert_hash);
        if (rc == CLST_OK) {
            rc = set_hex(claims, TPM_CLAIM_AK_CERT_SHA256, cert_hash, sizeof(cert_hash));
        }
    }
    if (rc == CLST_OK && r->ak_hierarchy != NULL) {
        rc = set_new(claims, TPM_CLAIM_AK_HIERARCHY, json_string(r->ak_hierarchy));
    }
    if (rc == CLST_OK) {
        rc = pcr_claims(ev, claims);
    }
    if (rc == CLST_OK) {
        rc = eventlog_claims(ev, claims);
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "tpm evidence: cannot build the claim set");
    }
    return CLST_OK;
}

const struct evidence_ops evidence_tpm_ops = {
    .kind = CLST_EVIDENCE_TPM,
    .name = "tpm",
    .max_size = TPM_EVIDENCE_MAX_SIZE,
    .parsed_size = sizeof(struct tpm_evidence),
    .parse = tpm_parse,
    .verify = tpm_verify,
    .is_debuggable = tpm_is_debuggable,
    .report_data = tpm_report_data,
    .claims = tpm_claims,
};
