/*
 * TPM 2.0 evidence collection through tpm2-tss (include/cloister/tee.h, docs/evidence-tpm.md).
 *
 * One call: TCTI -> ESYS -> CreatePrimary(AK template) -> [PCR_Read, Quote, PCR_Read again until
 * the values hash to the quote's pcrDigest] -> FlushContext -> the JSON container. The AK is a
 * primary key from a fixed template, so it is the same key on every call on the same TPM (and
 * its public part can be enrolled once). There is no resource manager between us and a swtpm or
 * /dev/tpm0, so every transient object is flushed at the single `out:` label, whatever failed.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <cloister/crypto.h>
#include <cloister/tee.h>

#define QUOTE_ATTEMPTS 3
#define CONTAINER_MAX  (1024u * 1024)
#define ALG_SHA1       0x0004
#define ALG_SHA256     0x000B
#define ALG_SHA384     0x000C
#define ALG_SHA512     0x000D

static const struct {
    uint16_t alg;
    const char *name;
    size_t size;
    enum clst_hash hash;
} banks[] = {
    {ALG_SHA1, "sha1", CLST_SHA1_SIZE, CLST_HASH_SHA1},
    {ALG_SHA256, "sha256", CLST_SHA256_SIZE, CLST_HASH_SHA256},
    {ALG_SHA384, "sha384", CLST_SHA384_SIZE, CLST_HASH_SHA384},
    {ALG_SHA512, "sha512", CLST_SHA512_SIZE, CLST_HASH_SHA512},
};

#define BANK_COUNT (sizeof(banks) / sizeof(banks[0]))

static size_t
bank_index(uint16_t alg)
{
    for (size_t i = 0; i < BANK_COUNT; i++) {
        if (banks[i].alg == alg) {
            return i;
        }
    }
    return SIZE_MAX;
}

/* ---- PCR selections ------------------------------------------------------------------------- */

static enum clst_status
parse_indices(const char *list, size_t len, const char *bank, uint32_t *out, struct clst_err *err)
{
    uint32_t mask = 0;
    size_t i = 0;

    if (len == 3 && memcmp(list, "all", 3) == 0) {
        *out = (1u << CLST_TEE_TPM_PCR_COUNT) - 1;
        return CLST_OK;
    }
    while (i < len) {
        char num[4];
        size_t start = i;
        uint64_t v = 0;
        while (i < len && list[i] != ',') {
            i++;
        }
        if (i - start == 0 || i - start >= sizeof(num)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "PCR selection: bank %s has an empty or overlong PCR index; write "
                                "indices 0..23 separated by commas",
                                bank);
        }
        memcpy(num, list + start, i - start);
        num[i - start] = '\0';
        if (clst_parse_u64(num, 0, CLST_TEE_TPM_PCR_COUNT - 1, &v, NULL) != CLST_OK) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "PCR selection: '%s' is not a PCR index from 0 to 23 (bank %s)",
                                num, bank);
        }
        if ((mask & (1u << v)) != 0) {
            return clst_err_set(err, CLST_E_MALFORMED, "PCR selection: PCR %s:%u is given twice",
                                bank, (unsigned)v);
        }
        mask |= 1u << v;
        if (i < len) {
            i++; /* the comma */
            if (i == len) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "PCR selection: a trailing comma after bank %s's list", bank);
            }
        }
    }
    if (mask == 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "PCR selection: bank %s selects no PCR", bank);
    }
    *out = mask;
    return CLST_OK;
}

enum clst_status
clst_tee_tpm_pcrs_parse(const char *spec, struct clst_tee_tpm_pcrs *out, struct clst_err *err)
{
    struct clst_tee_tpm_pcrs sel;
    const char *p = spec;

    if (spec == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "PCR selection: none given");
    }
    memset(&sel, 0, sizeof(sel));
    if (*p == '\0') {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "PCR selection is empty; write e.g. sha256:0,1,2,3,4,5,6,7");
    }
    while (*p != '\0') {
        const char *end = strchr(p, '+');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        size_t k = 0;
        if (colon == NULL) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "PCR selection: '%.*s' has no ':' (write BANK:INDICES, e.g. "
                                "sha256:0,1,2)",
                                (int)(len > 40 ? 40 : len), p);
        }
        size_t name_len = (size_t)(colon - p);
        for (; k < BANK_COUNT; k++) {
            if (strlen(banks[k].name) == name_len && memcmp(banks[k].name, p, name_len) == 0) {
                break;
            }
        }
        if (k == BANK_COUNT) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "PCR selection: unknown bank '%.*s' (sha1, sha256, sha384, "
                                "sha512)",
                                (int)(name_len > 20 ? 20 : name_len), p);
        }
        for (size_t j = 0; j < sel.bank_count; j++) {
            if (sel.bank[j].alg == banks[k].alg) {
                return clst_err_set(err, CLST_E_MALFORMED, "PCR selection: bank %s given twice",
                                    banks[k].name);
            }
        }
        uint32_t mask = 0;
        enum clst_status rc =
            parse_indices(colon + 1, len - name_len - 1, banks[k].name, &mask, err);
        if (rc != CLST_OK) {
            return rc;
        }
        sel.bank[sel.bank_count].alg = banks[k].alg;
        sel.bank[sel.bank_count].mask = mask;
        sel.bank_count++;
        if (end == NULL) {
            break;
        }
        p = end + 1;
        if (*p == '\0') {
            return clst_err_set(err, CLST_E_MALFORMED, "PCR selection ends with '+'");
        }
    }
    *out = sel;
    return CLST_OK;
}

static void
to_tpml(const struct clst_tee_tpm_pcrs *sel, const uint32_t *masks, TPML_PCR_SELECTION *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < sel->bank_count; i++) {
        TPMS_PCR_SELECTION *s = &out->pcrSelections[out->count++];
        s->hash = sel->bank[i].alg;
        s->sizeofSelect = 3;
        s->pcrSelect[0] = (uint8_t)(masks[i] & 0xff);
        s->pcrSelect[1] = (uint8_t)((masks[i] >> 8) & 0xff);
        s->pcrSelect[2] = (uint8_t)((masks[i] >> 16) & 0xff);
    }
}

/* ---- the AK --------------------------------------------------------------------------------- */

static void
ak_template(enum clst_tee_tpm_ak_alg alg, TPM2B_PUBLIC *out)
{
    memset(out, 0, sizeof(*out));
    TPMT_PUBLIC *p = &out->publicArea;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                          TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                          TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
    if (alg == CLST_TEE_TPM_AK_ECDSA) {
        p->type = TPM2_ALG_ECC;
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
        p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    } else {
        p->type = TPM2_ALG_RSA;
        p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        if (alg == CLST_TEE_TPM_AK_RSAPSS) {
            p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSAPSS;
            p->parameters.rsaDetail.scheme.details.rsapss.hashAlg = TPM2_ALG_SHA256;
        } else {
            p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
            p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
        }
        p->parameters.rsaDetail.keyBits = 2048;
        p->parameters.rsaDetail.exponent = 0;
    }
}

/* The AK's public key as an EVP_PKEY (RSA n/e, or a P-256 point). */
static enum clst_status
ak_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **out, struct clst_err *err)
{
    if (pub->type == TPM2_ALG_ECC) {
        uint8_t point[1 + 64];
        const TPMS_ECC_POINT *q = &pub->unique.ecc;
        if (pub->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 || q->x.size > 32 ||
            q->y.size > 32) {
            return clst_err_set(err, CLST_E_INTERNAL, "tpm: the AK is not a P-256 key");
        }
        memset(point, 0, sizeof(point));
        point[0] = 0x04;
        memcpy(point + 1 + 32 - q->x.size, q->x.buffer, q->x.size);
        memcpy(point + 1 + 64 - q->y.size, q->y.buffer, q->y.size);
        if (clst_ec_point_decode(CLST_CURVE_P256, point, sizeof(point), out) != CLST_OK) {
            return clst_err_set(err, CLST_E_CRYPTO, "tpm: the AK's point is not on P-256");
        }
        return CLST_OK;
    }
    const TPM2B_PUBLIC_KEY_RSA *mod = &pub->unique.rsa;
    uint32_t exponent =
        pub->parameters.rsaDetail.exponent != 0 ? pub->parameters.rsaDetail.exponent : 65537;
    if (mod->size == 0 || mod->size > sizeof(mod->buffer) ||
        clst_rsa_public_from_ne(mod->buffer, mod->size, exponent, out) != CLST_OK) {
        return clst_err_set(err, CLST_E_CRYPTO, "tpm: cannot build the AK's RSA public key");
    }
    return CLST_OK;
}

/* ---- TPM commands --------------------------------------------------------------------------- */

static enum clst_status
tss_fail(struct clst_err *err, const char *what, TSS2_RC rc)
{
    return clst_err_set(err, CLST_E_IO, "tpm: %s failed: %s (0x%x)", what, Tss2_RC_Decode(rc),
                        (unsigned)rc);
}

/* Values read from the TPM, by bank of the request. */
struct pcr_values {
    uint8_t value[CLST_TEE_TPM_MAX_BANKS][CLST_TEE_TPM_PCR_COUNT][CLST_SHA512_SIZE];
};

/* Reads every selected PCR (TPM2_PCR_Read returns at most 8 digests per call). */
static enum clst_status
read_pcrs(ESYS_CONTEXT *ectx, const struct clst_tee_tpm_pcrs *sel, struct pcr_values *out,
          struct clst_err *err)
{
    uint32_t remaining[CLST_TEE_TPM_MAX_BANKS];
    enum clst_status rc = CLST_OK;

    for (size_t i = 0; i < sel->bank_count; i++) {
        remaining[i] = sel->bank[i].mask;
    }
    for (;;) {
        TPML_PCR_SELECTION in, *sel_out = NULL;
        TPML_DIGEST *values = NULL;
        UINT32 counter = 0;
        bool left = false;
        size_t taken = 0, k = 0;

        for (size_t i = 0; i < sel->bank_count; i++) {
            left = left || remaining[i] != 0;
        }
        if (!left) {
            return CLST_OK;
        }
        to_tpml(sel, remaining, &in);
        TSS2_RC trc = Esys_PCR_Read(ectx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &in, &counter,
                                    &sel_out, &values);
        if (trc != TSS2_RC_SUCCESS) {
            return tss_fail(err, "TPM2_PCR_Read", trc);
        }
        for (uint32_t s = 0; s < sel_out->count && rc == CLST_OK; s++) {
            const TPMS_PCR_SELECTION *ps = &sel_out->pcrSelections[s];
            size_t b = 0, bi = bank_index(ps->hash);
            while (b < sel->bank_count && sel->bank[b].alg != ps->hash) {
                b++;
            }
            for (unsigned pcr = 0; pcr < 8u * ps->sizeofSelect && rc == CLST_OK; pcr++) {
                if ((ps->pcrSelect[pcr / 8] & (1u << (pcr % 8))) == 0) {
                    continue;
                }
                if (b == sel->bank_count || bi == SIZE_MAX || pcr >= CLST_TEE_TPM_PCR_COUNT ||
                    k >= values->count || values->digests[k].size != banks[bi].size ||
                    (remaining[b] & (1u << pcr)) == 0) {
                    rc = clst_err_set(err, CLST_E_IO,
                                      "tpm: TPM2_PCR_Read returned PCRs that were not asked for");
                    break;
                }
                memcpy(out->value[b][pcr], values->digests[k].buffer, banks[bi].size);
                remaining[b] &= ~(1u << pcr);
                k++;
                taken++;
            }
        }
        Esys_Free(sel_out);
        Esys_Free(values);
        if (rc != CLST_OK) {
            return rc;
        }
        if (taken == 0) {
            for (size_t i = 0; i < sel->bank_count; i++) {
                if (remaining[i] != 0) {
                    return clst_err_set(err, CLST_E_IO,
                                        "tpm: the TPM returns no value for the %s bank (is the "
                                        "bank allocated? see tpm2_getcap pcrs)",
                                        banks[bank_index(sel->bank[i].alg)].name);
                }
            }
        }
    }
}

/* H_sig over the values in the order of the quote's selection. */
static bool
pcr_digest_matches(const TPMS_ATTEST *a, const TPMT_SIGNATURE *sig,
                   const struct clst_tee_tpm_pcrs *sel, const struct pcr_values *v)
{
    const TPML_PCR_SELECTION *qs = &a->attested.quote.pcrSelect;
    TPMI_ALG_HASH halg = sig->sigAlg == TPM2_ALG_ECDSA    ? sig->signature.ecdsa.hash
                         : sig->sigAlg == TPM2_ALG_RSAPSS ? sig->signature.rsapss.hash
                                                          : sig->signature.rsassa.hash;
    size_t hi = bank_index(halg);
    struct clst_hash_ctx ctx;
    uint8_t digest[CLST_HASH_MAX_SIZE];

    if (hi == SIZE_MAX || clst_hash_init(&ctx, banks[hi].hash) != CLST_OK) {
        return false;
    }
    for (uint32_t s = 0; s < qs->count; s++) {
        const TPMS_PCR_SELECTION *ps = &qs->pcrSelections[s];
        size_t b = 0, bi = bank_index(ps->hash);
        while (b < sel->bank_count && sel->bank[b].alg != ps->hash) {
            b++;
        }
        for (unsigned pcr = 0; pcr < 8u * ps->sizeofSelect; pcr++) {
            if ((ps->pcrSelect[pcr / 8] & (1u << (pcr % 8))) == 0) {
                continue;
            }
            if (b == sel->bank_count || bi == SIZE_MAX || pcr >= CLST_TEE_TPM_PCR_COUNT ||
                (sel->bank[b].mask & (1u << pcr)) == 0 ||
                clst_hash_update(&ctx, v->value[b][pcr], banks[bi].size) != CLST_OK) {
                clst_hash_cleanup(&ctx);
                return false;
            }
        }
    }
    if (clst_hash_final(&ctx, digest) != CLST_OK) {
        return false;
    }
    return a->attested.quote.pcrDigest.size == banks[hi].size &&
           CRYPTO_memcmp(a->attested.quote.pcrDigest.buffer, digest, banks[hi].size) == 0;
}

/* ---- the container -------------------------------------------------------------------------- */

static enum clst_status
put_b64(json_t *obj, const char *name, const uint8_t *data, size_t size)
{
    struct clst_buf b;
    enum clst_status rc;
    clst_buf_init(&b, clst_b64_encoded_size(size) + 1);
    rc = clst_b64_encode(data, size, &b);
    if (rc == CLST_OK) {
        rc = clst_buf_terminate(&b);
    }
    if (rc == CLST_OK) {
        json_t *s = json_stringn((const char *)b.data, b.size);
        rc = s != NULL && json_object_set_new(obj, name, s) == 0 ? CLST_OK : CLST_E_NOMEM;
    }
    clst_buf_cleanup(&b);
    return rc;
}

static enum clst_status
put_cert(json_t *obj, const char *name, json_t *array, X509 *cert)
{
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    enum clst_status rc = CLST_E_CRYPTO;
    if (n > 0) {
        if (array != NULL) {
            json_t *tmp = json_object();
            rc = tmp != NULL ? put_b64(tmp, "c", der, (size_t)n) : CLST_E_NOMEM;
            if (rc == CLST_OK && json_array_append(array, json_object_get(tmp, "c")) != 0) {
                rc = CLST_E_NOMEM;
            }
            json_decref(tmp);
        } else {
            rc = put_b64(obj, name, der, (size_t)n);
        }
    }
    OPENSSL_free(der);
    return rc;
}

static enum clst_status
build_container(const struct clst_tee_tpm_request *req, const TPM2B_ATTEST *quoted,
                const TPMT_SIGNATURE *sig, const TPMT_PUBLIC *ak, const struct pcr_values *v,
                struct clst_buf *out, struct clst_err *err)
{
    uint8_t sig_bytes[sizeof(TPMT_SIGNATURE)], pub_bytes[sizeof(TPMT_PUBLIC)];
    size_t sig_size = 0, pub_size = 0;
    json_t *doc = json_object(), *pcrs = json_object(), *chain = NULL;
    char *text = NULL;
    enum clst_status rc = CLST_E_NOMEM;

    if (doc == NULL || pcrs == NULL) {
        goto out;
    }
    if (Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sig_bytes, sizeof(sig_bytes), &sig_size) !=
            TSS2_RC_SUCCESS ||
        Tss2_MU_TPMT_PUBLIC_Marshal(ak, pub_bytes, sizeof(pub_bytes), &pub_size) !=
            TSS2_RC_SUCCESS) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "tpm: cannot marshal the signature or the AK");
        goto out;
    }
    if (json_object_set_new(doc, "version", json_integer(1)) != 0 ||
        (rc = put_b64(doc, "quote", quoted->attestationData, quoted->size)) != CLST_OK ||
        (rc = put_b64(doc, "signature", sig_bytes, sig_size)) != CLST_OK ||
        (rc = put_b64(doc, "ak_public", pub_bytes, pub_size)) != CLST_OK) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    for (size_t b = 0; b < req->pcrs->bank_count; b++) {
        size_t bi = bank_index(req->pcrs->bank[b].alg);
        json_t *bank = json_object();
        if (bank == NULL || json_object_set_new(pcrs, banks[bi].name, bank) != 0) {
            rc = CLST_E_NOMEM;
            goto out;
        }
        for (unsigned pcr = 0; pcr < CLST_TEE_TPM_PCR_COUNT; pcr++) {
            char hex[2 * CLST_SHA512_SIZE + 1], index[4];
            if ((req->pcrs->bank[b].mask & (1u << pcr)) == 0) {
                continue;
            }
            snprintf(index, sizeof(index), "%u", pcr);
            if (clst_hex_to_str(v->value[b][pcr], banks[bi].size, hex, sizeof(hex)) != CLST_OK ||
                json_object_set_new(bank, index, json_string(hex)) != 0) {
                rc = CLST_E_NOMEM;
                goto out;
            }
        }
    }
    if (json_object_set(doc, "pcrs", pcrs) != 0) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    if (req->ak_cert != NULL && (rc = put_cert(doc, "ak_cert", NULL, req->ak_cert)) != CLST_OK) {
        goto out;
    }
    if (req->ak_chain != NULL && sk_X509_num(req->ak_chain) > 0) {
        chain = json_array();
        if (chain == NULL) {
            rc = CLST_E_NOMEM;
            goto out;
        }
        for (int i = 0; i < sk_X509_num(req->ak_chain); i++) {
            if ((rc = put_cert(doc, NULL, chain, sk_X509_value(req->ak_chain, i))) != CLST_OK) {
                goto out;
            }
        }
        if (json_object_set(doc, "ak_chain", chain) != 0) {
            rc = CLST_E_NOMEM;
            goto out;
        }
    }
    if (req->event_log_size > 0 &&
        (rc = put_b64(doc, "event_log", req->event_log, req->event_log_size)) != CLST_OK) {
        goto out;
    }
    text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    rc = clst_buf_append(out, text, strlen(text));
    if (rc == CLST_OK) {
        rc = clst_buf_append_byte(out, '\n');
    }
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "tpm: the evidence is larger than %u bytes", CONTAINER_MAX);
    }
out:
    if (rc == CLST_E_NOMEM) {
        clst_err_set(err, rc, "out of memory");
    }
    free(text);
    json_decref(chain);
    json_decref(pcrs);
    json_decref(doc);
    return rc;
}

/* ---- the request ---------------------------------------------------------------------------- */

static enum clst_status
check_request(const struct clst_tee_tpm_request *req, struct clst_err *err)
{
    if (req == NULL || req->pcrs == NULL || req->pcrs->bank_count == 0 ||
        req->pcrs->bank_count > CLST_TEE_TPM_MAX_BANKS) {
        return clst_err_set(err, CLST_E_INVAL, "tpm: no PCR selection given");
    }
    for (size_t i = 0; i < req->pcrs->bank_count; i++) {
        if (bank_index(req->pcrs->bank[i].alg) == SIZE_MAX || req->pcrs->bank[i].mask == 0 ||
            (req->pcrs->bank[i].mask >> CLST_TEE_TPM_PCR_COUNT) != 0) {
            return clst_err_set(err, CLST_E_INVAL, "tpm: PCR selection entry %zu is not valid", i);
        }
        for (size_t j = 0; j < i; j++) {
            if (req->pcrs->bank[j].alg == req->pcrs->bank[i].alg) {
                return clst_err_set(err, CLST_E_INVAL, "tpm: a PCR bank is selected twice");
            }
        }
    }
    if ((req->nonce == NULL && req->nonce_size != 0) ||
        req->nonce_size > CLST_TEE_TPM_NONCE_MAX_SIZE) {
        return clst_err_set(err, CLST_E_INVAL, "tpm: the nonce must be at most %d bytes",
                            CLST_TEE_TPM_NONCE_MAX_SIZE);
    }
    if ((req->event_log == NULL && req->event_log_size != 0) ||
        req->event_log_size > CLST_TEE_TPM_EVENTLOG_MAX_SIZE) {
        return clst_err_set(err, CLST_E_INVAL, "tpm: the event log must be at most %u bytes",
                            CLST_TEE_TPM_EVENTLOG_MAX_SIZE);
    }
    if ((int)req->ak_alg < 0 || req->ak_alg > CLST_TEE_TPM_AK_ECDSA || (int)req->hierarchy < 0 ||
        req->hierarchy > CLST_TEE_TPM_OWNER) {
        return clst_err_set(err, CLST_E_INVAL, "tpm: unknown AK algorithm or hierarchy");
    }
    if (req->ak_chain != NULL && req->ak_cert == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "tpm: an AK chain without an AK certificate");
    }
    return CLST_OK;
}

enum clst_status
clst_tee_tpm_quote(const struct clst_tee_tpm_request *req, struct clst_buf *out, EVP_PKEY **out_ak,
                   struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    TSS2_TCTI_CONTEXT *tcti = NULL;
    ESYS_CONTEXT *ectx = NULL;
    ESYS_TR ak = ESYS_TR_NONE;
    TPM2B_PUBLIC tmpl, *ak_public = NULL;
    TPM2B_SENSITIVE_CREATE sensitive;
    TPM2B_DATA outside, qualifying;
    TPML_PCR_SELECTION creation_pcrs, quote_sel;
    TPM2B_CREATION_DATA *creation_data = NULL;
    TPM2B_DIGEST *creation_hash = NULL;
    TPMT_TK_CREATION *creation_ticket = NULL;
    TPM2B_ATTEST *quoted = NULL;
    TPMT_SIGNATURE *sig = NULL;
    TPMT_SIG_SCHEME scheme;
    TPMS_ATTEST attest;
    EVP_PKEY *key = NULL;
    struct pcr_values *before = NULL, *after = NULL;
    uint32_t masks[CLST_TEE_TPM_MAX_BANKS];
    struct clst_buf container;
    TSS2_RC trc;

    clst_buf_init(&container, CONTAINER_MAX);
    if (out == NULL || (rc = check_request(req, err)) != CLST_OK) {
        return out == NULL ? clst_err_set(err, CLST_E_INVAL, "tpm: no output given") : rc;
    }
    before = OPENSSL_zalloc(sizeof(*before));
    after = OPENSSL_zalloc(sizeof(*after));
    if (before == NULL || after == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    trc = Tss2_TctiLdr_Initialize(req->tcti, &tcti);
    if (trc != TSS2_RC_SUCCESS) {
        rc = clst_err_set(err, CLST_E_IO,
                          "tpm: cannot open the TPM through TCTI '%.80s': %s (0x%x); check the "
                          "TCTI string and that the TPM (or swtpm) is running",
                          req->tcti != NULL ? req->tcti : "(default)", Tss2_RC_Decode(trc),
                          (unsigned)trc);
        goto out;
    }
    if ((trc = Esys_Initialize(&ectx, tcti, NULL)) != TSS2_RC_SUCCESS) {
        rc = tss_fail(err, "ESYS initialization", trc);
        goto out;
    }

    /* The AK: a primary key from a fixed template (deterministic per TPM and hierarchy). */
    ak_template(req->ak_alg != 0 ? req->ak_alg : CLST_TEE_TPM_AK_RSASSA, &tmpl);
    memset(&sensitive, 0, sizeof(sensitive));
    memset(&outside, 0, sizeof(outside));
    memset(&creation_pcrs, 0, sizeof(creation_pcrs));
    trc = Esys_CreatePrimary(
        ectx, req->hierarchy == CLST_TEE_TPM_OWNER ? ESYS_TR_RH_OWNER : ESYS_TR_RH_ENDORSEMENT,
        ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl, &outside, &creation_pcrs,
        &ak, &ak_public, &creation_data, &creation_hash, &creation_ticket);
    if (trc != TSS2_RC_SUCCESS) {
        rc = tss_fail(err, "TPM2_CreatePrimary (the attestation key)", trc);
        goto out;
    }
    if ((rc = ak_pkey(&ak_public->publicArea, &key, err)) != CLST_OK) {
        goto out;
    }
    if (req->ak_cert != NULL) {
        EVP_PKEY *cert_key = X509_get0_pubkey(req->ak_cert);
        if (cert_key == NULL || !clst_pkey_public_equal(cert_key, key)) {
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "tpm: the AK certificate is for another key than this TPM's AK "
                              "(same hierarchy and algorithm?)");
            goto out;
        }
    }

    /* Quote, then make sure the values we report are the ones quoted. */
    memset(&qualifying, 0, sizeof(qualifying));
    qualifying.size = (UINT16)req->nonce_size;
    if (req->nonce_size > 0) {
        memcpy(qualifying.buffer, req->nonce, req->nonce_size);
    }
    memset(&scheme, 0, sizeof(scheme));
    scheme.scheme = TPM2_ALG_NULL; /* the AK's own scheme */
    for (size_t i = 0; i < req->pcrs->bank_count; i++) {
        masks[i] = req->pcrs->bank[i].mask;
    }
    to_tpml(req->pcrs, masks, &quote_sel);
    rc = CLST_E_CONFLICT;
    for (int attempt = 0; attempt < QUOTE_ATTEMPTS && rc == CLST_E_CONFLICT; attempt++) {
        size_t off = 0;
        Esys_Free(quoted);
        Esys_Free(sig);
        quoted = NULL;
        sig = NULL;
        if ((rc = read_pcrs(ectx, req->pcrs, before, err)) != CLST_OK) {
            goto out;
        }
        trc = Esys_Quote(ectx, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qualifying,
                         &scheme, &quote_sel, &quoted, &sig);
        if (trc != TSS2_RC_SUCCESS) {
            rc = tss_fail(err, "TPM2_Quote", trc);
            goto out;
        }
        memset(&attest, 0, sizeof(attest));
        if (Tss2_MU_TPMS_ATTEST_Unmarshal(quoted->attestationData, quoted->size, &off, &attest) !=
                TSS2_RC_SUCCESS ||
            off != quoted->size) {
            rc = clst_err_set(err, CLST_E_IO, "tpm: the TPM's quote does not unmarshal");
            goto out;
        }
        rc = pcr_digest_matches(&attest, sig, req->pcrs, before) ? CLST_OK : CLST_E_CONFLICT;
        if (rc == CLST_E_CONFLICT) {
            /* A PCR was extended between the read and the quote; read again and compare. */
            if ((rc = read_pcrs(ectx, req->pcrs, after, err)) != CLST_OK) {
                goto out;
            }
            rc = pcr_digest_matches(&attest, sig, req->pcrs, after) ? CLST_OK : CLST_E_CONFLICT;
            if (rc == CLST_OK) {
                memcpy(before, after, sizeof(*before));
            }
        }
    }
    if (rc != CLST_OK) {
        rc = clst_err_set(err, CLST_E_CONFLICT,
                          "tpm: the PCRs changed while they were quoted, %d times in a row; try "
                          "again when the system is quieter",
                          QUOTE_ATTEMPTS);
        goto out;
    }
    rc = build_container(req, quoted, sig, &ak_public->publicArea, before, &container, err);
out:
    if (ak != ESYS_TR_NONE) {
        /* No resource manager: a transient object left behind would fill the TPM's slots. */
        TSS2_RC frc = Esys_FlushContext(ectx, ak);
        if (frc != TSS2_RC_SUCCESS && rc == CLST_OK) {
            rc = tss_fail(err, "TPM2_FlushContext (the attestation key)", frc);
        }
    }
    /* Outputs only when everything, the flush included, succeeded. */
    if (rc == CLST_OK && (rc = clst_buf_append(out, container.data, container.size)) != CLST_OK) {
        rc = clst_err_set(err, rc, "tpm: the evidence (%zu bytes) does not fit the output buffer",
                          container.size);
    }
    if (rc == CLST_OK && out_ak != NULL) {
        *out_ak = key;
        key = NULL;
    }
    clst_buf_cleanup(&container);
    Esys_Free(ak_public);
    Esys_Free(creation_data);
    Esys_Free(creation_hash);
    Esys_Free(creation_ticket);
    Esys_Free(quoted);
    Esys_Free(sig);
    Esys_Finalize(&ectx);
    Tss2_TctiLdr_Finalize(&tcti);
    EVP_PKEY_free(key);
    OPENSSL_free(before);
    OPENSSL_free(after);
    return rc;
}
