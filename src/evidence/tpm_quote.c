/*
 * TPM 2.0 evidence, parse step (docs/evidence-tpm.md): the JSON container and the TPM structures
 * inside it. The TPM structures are unmarshalled by tpm2-tss's libtss2-mu (never a hand parser),
 * each from exactly the bytes given: trailing bytes are an error. The container is strict: every
 * member is known, has its type, appears once, and fits its cap; anything else is rejected with a
 * message that names the member.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "evidence/tpm_int.h"

/* ---- algorithms ----------------------------------------------------------------------------- */

static const struct {
    uint16_t alg;
    const char *name;
    size_t size;
} known_algs[] = {
    {TPM_ALG_SHA1_ID, "sha1", CLST_SHA1_SIZE},
    {TPM_ALG_SHA256_ID, "sha256", CLST_SHA256_SIZE},
    {TPM_ALG_SHA384_ID, "sha384", CLST_SHA384_SIZE},
    {TPM_ALG_SHA512_ID, "sha512", CLST_SHA512_SIZE},
};

#define KNOWN_ALG_COUNT (sizeof(known_algs) / sizeof(known_algs[0]))

size_t
evidence_tpm_alg_digest_size(uint16_t alg)
{
    for (size_t i = 0; i < KNOWN_ALG_COUNT; i++) {
        if (known_algs[i].alg == alg) {
            return known_algs[i].size;
        }
    }
    return 0;
}

const char *
evidence_tpm_alg_name(uint16_t alg)
{
    for (size_t i = 0; i < KNOWN_ALG_COUNT; i++) {
        if (known_algs[i].alg == alg) {
            return known_algs[i].name;
        }
    }
    return NULL;
}

bool
evidence_tpm_alg_from_name(const char *name, uint16_t *out)
{
    for (size_t i = 0; name != NULL && i < KNOWN_ALG_COUNT; i++) {
        if (strcmp(known_algs[i].name, name) == 0) {
            *out = known_algs[i].alg;
            return true;
        }
    }
    return false;
}

/* ---- TPM structures (libtss2-mu) ------------------------------------------------------------ */

enum clst_status
evidence_tpm_attest_unmarshal(const uint8_t *data, size_t size, TPMS_ATTEST *out,
                              struct clst_err *err)
{
    TPMS_ATTEST a;
    size_t off = 0;

    if (data == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "tpm quote: no input or no output given");
    }
    memset(&a, 0, sizeof(a));
    TSS2_RC rc = Tss2_MU_TPMS_ATTEST_Unmarshal(data, size, &off, &a);
    if (rc != TSS2_RC_SUCCESS) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tpm quote: the %zu bytes are not a TPMS_ATTEST (tpm2-tss error "
                            "0x%x: truncated or a size field out of range)",
                            size, (unsigned)rc);
    }
    if (off != size) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tpm quote: %zu bytes follow the TPMS_ATTEST at offset %zu", size - off,
                            off);
    }
    if (a.magic != TPM2_GENERATED_VALUE) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tpm quote: magic 0x%08x is not TPM_GENERATED_VALUE (0xff544347); "
                            "these bytes were not produced by a TPM",
                            (unsigned)a.magic);
    }
    if (a.type != TPM2_ST_ATTEST_QUOTE) {
        return clst_err_set(
            err, CLST_E_MALFORMED,
            "tpm quote: attestation type 0x%04x is not a quote (TPM_ST_ATTEST_QUOTE, "
            "0x8018); pass the output of TPM2_Quote",
            (unsigned)a.type);
    }
    /* Defense in depth: the selection and digest must fit the arrays libtss2-mu filled. */
    const TPML_PCR_SELECTION *sel = &a.attested.quote.pcrSelect;
    if (sel->count > TPM2_NUM_PCR_BANKS) {
        return clst_err_set(err, CLST_E_MALFORMED, "tpm quote: %u PCR selections (at most %u)",
                            (unsigned)sel->count, (unsigned)TPM2_NUM_PCR_BANKS);
    }
    for (uint32_t i = 0; i < sel->count; i++) {
        if (sel->pcrSelections[i].sizeofSelect > TPM2_PCR_SELECT_MAX) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "tpm quote: PCR selection %u has %u select bytes (at most %u)",
                                (unsigned)i, (unsigned)sel->pcrSelections[i].sizeofSelect,
                                (unsigned)TPM2_PCR_SELECT_MAX);
        }
    }
    if (a.attested.quote.pcrDigest.size > sizeof(a.attested.quote.pcrDigest.buffer) ||
        a.extraData.size > sizeof(a.extraData.buffer) ||
        a.qualifiedSigner.size > sizeof(a.qualifiedSigner.name)) {
        return clst_err_set(err, CLST_E_MALFORMED, "tpm quote: a size field is out of range");
    }
    *out = a;
    return CLST_OK;
}

enum clst_status
evidence_tpm_signature_unmarshal(const uint8_t *data, size_t size, TPMT_SIGNATURE *out,
                                 struct clst_err *err)
{
    TPMT_SIGNATURE s;
    size_t off = 0;

    if (data == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "tpm signature: no input or no output given");
    }
    memset(&s, 0, sizeof(s));
    TSS2_RC rc = Tss2_MU_TPMT_SIGNATURE_Unmarshal(data, size, &off, &s);
    if (rc != TSS2_RC_SUCCESS) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tpm signature: the %zu bytes are not a TPMT_SIGNATURE (tpm2-tss "
                            "error 0x%x: truncated, an unknown algorithm or a size out of range)",
                            size, (unsigned)rc);
    }
    if (off != size) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tpm signature: %zu bytes follow the TPMT_SIGNATURE at offset %zu",
                            size - off, off);
    }
    *out = s;
    return CLST_OK;
}

enum clst_status
evidence_tpm_public_unmarshal(const uint8_t *data, size_t size, TPMT_PUBLIC *out,
                              struct clst_err *err)
{
    TPMT_PUBLIC p;
    size_t off = 0;

    if (data == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "tpm AK public area: no input or no output given");
    }
    memset(&p, 0, sizeof(p));
    TSS2_RC rc = Tss2_MU_TPMT_PUBLIC_Unmarshal(data, size, &off, &p);
    if (rc != TSS2_RC_SUCCESS) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tpm AK public area: the %zu bytes are not a TPMT_PUBLIC (tpm2-tss "
                            "error 0x%x)",
                            size, (unsigned)rc);
    }
    if (off != size) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tpm AK public area: %zu bytes follow the TPMT_PUBLIC at offset %zu",
                            size - off, off);
    }
    *out = p;
    return CLST_OK;
}

/* ---- the JSON container --------------------------------------------------------------------- */

/* Decodes the base64 string member `name` into dst (at most cap bytes). */
static enum clst_status
member_b64(const json_t *v, const char *name, uint8_t *dst, size_t cap, size_t *out_size,
           struct clst_err *err)
{
    struct clst_buf b;
    enum clst_status rc;

    if (!json_is_string(v)) {
        return clst_err_set(err, CLST_E_MALFORMED, "tpm evidence: \"%s\" must be a base64 string",
                            name);
    }
    clst_buf_init(&b, cap);
    rc = clst_b64_decode(json_string_value(v), json_string_length(v), &b);
    if (rc == CLST_E_LIMIT) {
        clst_buf_cleanup(&b);
        return clst_err_set(err, CLST_E_LIMIT,
                            "tpm evidence: \"%s\" decodes to more than %zu bytes, the limit", name,
                            cap);
    }
    if (rc != CLST_OK) {
        clst_buf_cleanup(&b);
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tpm evidence: \"%s\" is not valid base64 (RFC 4648, with padding)",
                            name);
    }
    if (b.size == 0) {
        clst_buf_cleanup(&b);
        return clst_err_set(err, CLST_E_MALFORMED, "tpm evidence: \"%s\" is empty", name);
    }
    memcpy(dst, b.data, b.size);
    *out_size = b.size;
    clst_buf_cleanup(&b);
    return CLST_OK;
}

/* "pcrs": {"sha256": {"0": "<hex>", ...}, ...} */
static enum clst_status
parse_pcrs(const json_t *v, struct tpm_evidence *ev, struct clst_err *err)
{
    const char *bank_name;
    json_t *bank_obj;

    if (!json_is_object(v)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tpm evidence: \"pcrs\" must be an object of banks such as "
                            "{\"sha256\": {\"0\": \"<hex>\"}}");
    }
    json_object_foreach((json_t *)v, bank_name, bank_obj)
    {
        uint16_t alg = 0;
        if (!evidence_tpm_alg_from_name(bank_name, &alg)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "tpm evidence: unknown PCR bank \"%.20s\" in \"pcrs\" (known: "
                                "sha1, sha256, sha384, sha512)",
                                bank_name);
        }
        if (ev->bank_count >= TPM_MAX_BANKS) {
            return clst_err_set(err, CLST_E_INTERNAL, "tpm evidence: too many PCR banks");
        }
        if (!json_is_object(bank_obj)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "tpm evidence: \"pcrs\".\"%s\" must be an object of PCR index "
                                "to hex value",
                                bank_name);
        }
        struct tpm_pcr_bank *b = &ev->banks[ev->bank_count++];
        b->alg = alg;
        b->digest_size = evidence_tpm_alg_digest_size(alg);
        const char *index_str;
        json_t *value;
        json_object_foreach(bank_obj, index_str, value)
        {
            uint64_t index = 0;
            char canonical[8];
            if (clst_parse_u64(index_str, 0, TPM_PCR_COUNT - 1, &index, NULL) != CLST_OK ||
                snprintf(canonical, sizeof(canonical), "%u", (unsigned)index) < 0 ||
                strcmp(canonical, index_str) != 0) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "tpm evidence: \"pcrs\".\"%s\" has key \"%.20s\", which is "
                                    "not a PCR index from 0 to 23 in decimal",
                                    bank_name, index_str);
            }
            const char *hex = json_string_value(value);
            if (hex == NULL || json_string_length(value) != 2 * b->digest_size ||
                clst_hex_decode_fixed(hex, json_string_length(value), b->value[index],
                                      b->digest_size) != CLST_OK) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "tpm evidence: PCR %s:%u must be %zu bytes in hex (%zu hex "
                                    "digits)",
                                    bank_name, (unsigned)index, b->digest_size, 2 * b->digest_size);
            }
            b->present |= 1u << index;
        }
    }
    return CLST_OK;
}

static enum clst_status
parse_chain(const json_t *v, struct tpm_evidence *ev, struct clst_err *err)
{
    size_t i;
    json_t *item;

    if (!json_is_array(v)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tpm evidence: \"ak_chain\" must be an array of base64 DER "
                            "certificates");
    }
    if (json_array_size(v) > TPM_CHAIN_MAX_COUNT) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "tpm evidence: \"ak_chain\" has %zu certificates (at most %u)",
                            json_array_size(v), TPM_CHAIN_MAX_COUNT);
    }
    json_array_foreach(v, i, item)
    {
        enum clst_status rc = member_b64(item, "ak_chain[]", ev->chain[i].der,
                                         sizeof(ev->chain[i].der), &ev->chain[i].size, err);
        if (rc != CLST_OK) {
            return rc;
        }
        ev->chain_count = i + 1;
    }
    return CLST_OK;
}

static enum clst_status
parse_container(const json_t *doc, struct tpm_evidence *ev, struct clst_err *err)
{
    const char *key;
    json_t *v;
    bool has_version = false, has_quote = false, has_sig = false;
    uint8_t sig[TPM_SIG_MAX_SIZE], pub[TPM_PUBLIC_MAX_SIZE];
    size_t sig_size = 0, pub_size = 0;
    enum clst_status rc = CLST_OK;

    if (!json_is_object(doc)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tpm evidence must be a JSON object (docs/evidence-tpm.md)");
    }
    json_object_foreach((json_t *)doc, key, v)
    {
        if (strcmp(key, "version") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) != TPM_CONTAINER_VERSION) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "tpm evidence: \"version\" must be %d (the only version this "
                                    "build reads)",
                                    TPM_CONTAINER_VERSION);
            }
            has_version = true;
        } else if (strcmp(key, "quote") == 0) {
            rc = member_b64(v, key, ev->quote, sizeof(ev->quote), &ev->quote_size, err);
            has_quote = true;
        } else if (strcmp(key, "signature") == 0) {
            rc = member_b64(v, key, sig, sizeof(sig), &sig_size, err);
            has_sig = true;
        } else if (strcmp(key, "pcrs") == 0) {
            rc = parse_pcrs(v, ev, err);
        } else if (strcmp(key, "ak_public") == 0) {
            rc = member_b64(v, key, pub, sizeof(pub), &pub_size, err);
            ev->has_ak_public = true;
        } else if (strcmp(key, "ak_cert") == 0) {
            rc = member_b64(v, key, ev->ak_cert.der, sizeof(ev->ak_cert.der), &ev->ak_cert.size,
                            err);
        } else if (strcmp(key, "ak_chain") == 0) {
            rc = parse_chain(v, ev, err);
        } else if (strcmp(key, "event_log") == 0) {
            rc = member_b64(v, key, ev->eventlog, sizeof(ev->eventlog), &ev->eventlog_size, err);
        } else {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "tpm evidence: unknown member \"%.40s\" (known: version, quote, "
                                "signature, pcrs, ak_public, ak_cert, ak_chain, event_log)",
                                key);
        }
        if (rc != CLST_OK) {
            return rc;
        }
    }
    if (!has_version || !has_quote || !has_sig) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tpm evidence: \"%s\" is missing (version, quote and signature are "
                            "required)",
                            !has_version ? "version"
                            : !has_quote ? "quote"
                                         : "signature");
    }
    if (ev->chain_count > 0 && ev->ak_cert.size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "tpm evidence: \"ak_chain\" without \"ak_cert\" (the chain holds the "
                            "intermediates above the AK certificate)");
    }
    if ((rc = evidence_tpm_attest_unmarshal(ev->quote, ev->quote_size, &ev->attest, err)) !=
            CLST_OK ||
        (rc = evidence_tpm_signature_unmarshal(sig, sig_size, &ev->sig, err)) != CLST_OK) {
        return rc;
    }
    if (ev->has_ak_public &&
        (rc = evidence_tpm_public_unmarshal(pub, pub_size, &ev->ak_public, err)) != CLST_OK) {
        return rc;
    }
    if (ev->has_ak_public) {
        memcpy(ev->ak_public_raw, pub, pub_size);
        ev->ak_public_size = pub_size;
    }
    if (ev->eventlog_size > 0) {
        struct tpm_eventlog_info info;
        if ((rc = evidence_tpm_eventlog_parse(ev->eventlog, ev->eventlog_size, &info, err)) !=
            CLST_OK) {
            return clst_err_prefix(err, "tpm evidence: event_log");
        }
    }
    return CLST_OK;
}

enum clst_status
evidence_tpm_parse(const uint8_t *data, size_t size, struct tpm_evidence *out, struct clst_err *err)
{
    json_error_t jerr;
    json_t *doc = NULL;
    enum clst_status rc = CLST_E_MALFORMED;

    if (out == NULL || (data == NULL && size != 0)) {
        return clst_err_set(err, CLST_E_INVAL, "tpm evidence: no output or no input given");
    }
    if (size > TPM_EVIDENCE_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "tpm evidence is %zu bytes, more than the limit of %u bytes", size,
                            TPM_EVIDENCE_MAX_SIZE);
    }
    memset(out, 0, sizeof(*out));
    out->result = &out->result_store;
    if (size == 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "tpm evidence is empty");
        goto out;
    }
    doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "tpm evidence is not JSON (line %d, column %d: %.80s); it must be the "
                          "container of docs/evidence-tpm.md",
                          jerr.line, jerr.column, jerr.text);
        goto out;
    }
    rc = parse_container(doc, out, err);
out:
    json_decref(doc);
    if (rc != CLST_OK) {
        OPENSSL_cleanse(out, sizeof(*out));
    } else {
        out->result = &out->result_store;
    }
    return rc;
}
