/*
 * The attestation request body, as the cloud attestation service defines it:
 *
 *   {"report"|"quote": base64url, "runtimeData"?: {"data": base64url, "dataType": "Binary"|"JSON"},
 *    "initTimeData"?: {...same...}, "nonce"?: string}
 *
 * Untrusted input: sizes are checked before anything is decoded (the body, then each encoded
 * string against the decoded limit), duplicate members are refused, unknown members are refused
 * by name. Fuzzed by tests/fuzz/fuzz_attest_request.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>

#include "attest_int.h"

void
clst_attest_request_cleanup(struct clst_attest_request *r)
{
    if (r == NULL) {
        return;
    }
    clst_buf_cleanup(&r->evidence);
    clst_buf_cleanup(&r->certs);
    clst_buf_cleanup(&r->runtime_data);
    clst_buf_cleanup(&r->inittime_data);
    json_decref(r->runtime_json);
    json_decref(r->inittime_json);
    free(r->nonce);
    free(r->draft_policy);
    memset(r, 0, sizeof(*r));
}

/* Largest base64/base64url text that can decode to `max` bytes (with padding). */
static size_t
encoded_max(size_t max)
{
    return (max / 3 + 1) * 4;
}

/* Decodes base64url (unpadded, or padded as some clients send) of at most `max` bytes. */
static enum clst_status
decode_b64url(const char *member, const char *text, size_t size, size_t max, struct clst_buf *out,
              struct clst_err *err)
{
    if (size > encoded_max(max)) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "\"%s\" is too large: at most %zu bytes once decoded are accepted",
                            member, max);
    }
    /* Accept '=' padding only at the end, and only as much as base64 allows. */
    size_t n = size;
    size_t pad = 0;
    while (n > 0 && text[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad > 0 && size % 4 != 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "\"%s\" has wrong base64url padding", member);
    }
    clst_buf_init(out, max);
    enum clst_status rc = clst_b64url_decode(text, n, out);
    if (rc == CLST_E_LIMIT) {
        clst_buf_cleanup(out);
        return clst_err_set(err, CLST_E_LIMIT,
                            "\"%s\" is too large: at most %zu bytes once decoded are accepted",
                            member, max);
    }
    if (rc != CLST_OK) {
        clst_buf_cleanup(out);
        return clst_err_set(err, CLST_E_MALFORMED,
                            "\"%s\" is not base64url (RFC 4648 section 5; no whitespace)", member);
    }
    return CLST_OK;
}

static enum clst_status
parse_data(const char *member, const json_t *obj, enum clst_attest_data_type *out_type,
           struct clst_buf *out_data, json_t **out_json, struct clst_err *err)
{
    enum clst_status rc;
    if (!json_is_object(obj)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "\"%s\" must be an object {\"data\": base64url, \"dataType\": "
                            "\"Binary\" or \"JSON\"}",
                            member);
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (strcmp(key, "data") != 0 && strcmp(key, "dataType") != 0) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "\"%s\" has an unknown member (only \"data\" and \"dataType\")",
                                member);
        }
    }
    const json_t *data = json_object_get(obj, "data");
    const json_t *dtype = json_object_get(obj, "dataType");
    if (!json_is_string(data)) {
        return clst_err_set(err, CLST_E_MALFORMED, "\"%s.data\" must be a base64url string",
                            member);
    }
    enum clst_attest_data_type t;
    if (dtype == NULL) {
        /* The cloud's default. */
        t = CLST_ATTEST_DATA_BINARY;
    } else if (json_is_string(dtype) && strcmp(json_string_value(dtype), "Binary") == 0) {
        t = CLST_ATTEST_DATA_BINARY;
    } else if (json_is_string(dtype) && strcmp(json_string_value(dtype), "JSON") == 0) {
        t = CLST_ATTEST_DATA_JSON;
    } else {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "\"%s.dataType\" must be \"Binary\" or \"JSON\"", member);
    }
    struct clst_buf buf;
    char name[64];
    snprintf(name, sizeof(name), "%s.data", member);
    if ((rc = decode_b64url(name, json_string_value(data), json_string_length(data),
                            CLST_ATTEST_MAX_RUNTIME_DATA, &buf, err)) != CLST_OK) {
        return rc;
    }
    json_t *j = NULL;
    if (t == CLST_ATTEST_DATA_JSON) {
        json_error_t jerr;
        j = json_loadb(buf.size ? (const char *)buf.data : "", buf.size,
                       JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(j)) {
            json_decref(j);
            clst_buf_cleanup(&buf);
            return clst_err_set(err, CLST_E_MALFORMED,
                                "\"%s.data\" has dataType JSON but is not one JSON object "
                                "(duplicate members are refused)",
                                member);
        }
    }
    *out_type = t;
    *out_data = buf;
    *out_json = j;
    return CLST_OK;
}

#define SNP_CHAIN_MAX (64u * 1024) /* the PEM VcekCertChain, decoded */

/* SevSnpVm's JSON form: {"SnpReport", "VcekCertChain"?, "Endorsements"?} (the cloud's clients). */
static enum clst_status
unwrap_snp_json(struct clst_attest_request *r, struct clst_err *err)
{
    enum clst_status rc = CLST_E_MALFORMED;
    json_error_t jerr;
    struct clst_buf report, chain;
    STACK_OF(X509) *stack = NULL;
    clst_buf_init(&report, 0);
    clst_buf_init(&chain, 0);
    json_t *doc = json_loadb((const char *)r->evidence.data, r->evidence.size,
                             JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "\"report\" is neither an SNP report nor the JSON {\"SnpReport\", "
                          "\"VcekCertChain\"} (line %d: %s)",
                          jerr.line, doc == NULL ? jerr.text : "not an object");
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        if (strcmp(key, "SnpReport") != 0 && strcmp(key, "VcekCertChain") != 0 &&
            strcmp(key, "Endorsements") != 0) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "\"report\" has an unknown member (expected SnpReport, "
                              "VcekCertChain, Endorsements)");
            goto out;
        }
        if (!json_is_string(v)) {
            rc = clst_err_set(err, CLST_E_MALFORMED, "\"report.%s\" must be a base64url string",
                              strcmp(key, "SnpReport") == 0       ? "SnpReport"
                              : strcmp(key, "VcekCertChain") == 0 ? "VcekCertChain"
                                                                  : "Endorsements");
            goto out;
        }
    }
    const json_t *rep = json_object_get(doc, "SnpReport");
    const json_t *vc = json_object_get(doc, "VcekCertChain");
    const json_t *en = json_object_get(doc, "Endorsements");
    if (rep == NULL) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "\"report\" JSON without \"SnpReport\"");
        goto out;
    }
    if (en != NULL && json_string_length(en) > 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "\"report.Endorsements\" (the cloud's UVM endorsements) is not "
                          "supported by this service; leave it out or empty");
        goto out;
    }
    if ((rc = decode_b64url("report.SnpReport", json_string_value(rep), json_string_length(rep),
                            clst_evidence_max_size(CLST_EVIDENCE_SEVSNP), &report, err)) !=
        CLST_OK) {
        goto out;
    }
    if (vc != NULL && json_string_length(vc) > 0) {
        if ((rc = decode_b64url("report.VcekCertChain", json_string_value(vc),
                                json_string_length(vc), SNP_CHAIN_MAX, &chain, err)) != CLST_OK) {
            goto out;
        }
        if (clst_x509_stack_from_pem(chain.data, chain.size, &stack, err) != CLST_OK) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "\"report.VcekCertChain\" is not a PEM certificate chain "
                              "(base64url of the VCEK, ASK and ARK in PEM)");
            goto out;
        }
        clst_buf_init(&r->certs, SNP_CHAIN_MAX);
        for (int i = 0; i < sk_X509_num(stack); i++) {
            unsigned char *der = NULL;
            int n = i2d_X509(sk_X509_value(stack, i), &der);
            rc = n > 0 ? clst_buf_append(&r->certs, der, (size_t)n) : CLST_E_MALFORMED;
            OPENSSL_free(der);
            if (rc != CLST_OK) {
                rc = clst_err_set(err, CLST_E_LIMIT, "\"report.VcekCertChain\" is too large");
                goto out;
            }
        }
    }
    clst_buf_cleanup(&r->evidence);
    r->evidence = report;
    clst_buf_init(&report, 0);
    rc = CLST_OK;
out:
    sk_X509_pop_free(stack, X509_free);
    json_decref(doc);
    clst_buf_cleanup(&report);
    clst_buf_cleanup(&chain);
    return rc;
}

static bool
nonce_char(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

enum clst_status
clst_attest_request_parse(const struct clst_attest_type *type, const char *body, size_t size,
                          struct clst_attest_request *out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_MALFORMED;
    struct clst_attest_request r;
    json_t *doc = NULL;
    json_error_t jerr;
    memset(&r, 0, sizeof(r));

    if (type == NULL || (body == NULL && size > 0) || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_request_parse: NULL argument");
    }
    r.type = type;
    if (size > CLST_ATTEST_MAX_REQUEST_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "the request body is %zu bytes; at most %d are accepted", size,
                            CLST_ATTEST_MAX_REQUEST_SIZE);
    }
    doc = json_loadb(size ? body : "", size, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "the request body must be one JSON object {\"report\": base64url, "
                          "...} (line %d: %s)",
                          jerr.line, doc == NULL ? jerr.text : "not an object");
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        if (strcmp(key, "report") == 0 || strcmp(key, "quote") == 0 ||
            strcmp(key, "runtimeData") == 0 || strcmp(key, "initTimeData") == 0 ||
            strcmp(key, "nonce") == 0) {
            continue;
        }
        if (strcmp(key, "draftPolicyForAttestation") == 0) {
            continue;
        }
        char shown[48];
        size_t k = 0;
        for (const char *p = key; *p != '\0' && k + 4 < sizeof(shown); p++) {
            shown[k++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
        }
        shown[k] = '\0';
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "unknown member \"%s\" in the request (expected report or quote, "
                          "runtimeData, initTimeData, nonce, draftPolicyForAttestation)",
                          shown);
        goto out;
    }
    const json_t *report = json_object_get(doc, "report");
    const json_t *quote = json_object_get(doc, "quote");
    if ((report == NULL) == (quote == NULL)) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "the request needs exactly one of \"report\" and \"quote\" (the "
                          "evidence, base64url)");
        goto out;
    }
    const json_t *ev = report ? report : quote;
    const char *ev_name = report ? "report" : "quote";
    if (!json_is_string(ev) || json_string_length(ev) == 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "\"%s\" must be a non-empty base64url string",
                          ev_name);
        goto out;
    }
    size_t max = clst_evidence_max_size(type->kind);
    if (max == 0 || type->kind == CLST_EVIDENCE_SEVSNP) {
        /* SevSnpVm: the JSON form is larger than a report; the verifier checks the report's own
         * limit before parsing it. */
        max = CLST_ATTEST_MAX_REQUEST_SIZE; /* no verifier: refused later, with its reason */
    }
    if ((rc = decode_b64url(ev_name, json_string_value(ev), json_string_length(ev), max,
                            &r.evidence, err)) != CLST_OK) {
        goto out;
    }
    if (type->kind == CLST_EVIDENCE_SEVSNP && r.evidence.size > 0 && r.evidence.data[0] == '{' &&
        (rc = unwrap_snp_json(&r, err)) != CLST_OK) {
        goto out;
    }
    if (clst_evidence_max_size(type->kind) != 0 &&
        r.evidence.size > clst_evidence_max_size(type->kind)) {
        rc = clst_err_set(err, CLST_E_LIMIT,
                          "\"%s\" is too large: at most %zu bytes of %s evidence are accepted",
                          ev_name, clst_evidence_max_size(type->kind), type->name);
        goto out;
    }
    const json_t *rt = json_object_get(doc, "runtimeData");
    if (rt != NULL && (rc = parse_data("runtimeData", rt, &r.runtime_type, &r.runtime_data,
                                       &r.runtime_json, err)) != CLST_OK) {
        goto out;
    }
    const json_t *it = json_object_get(doc, "initTimeData");
    if (it != NULL && (rc = parse_data("initTimeData", it, &r.inittime_type, &r.inittime_data,
                                       &r.inittime_json, err)) != CLST_OK) {
        goto out;
    }
    const json_t *nonce = json_object_get(doc, "nonce");
    if (nonce != NULL) {
        if (!json_is_string(nonce) || json_string_length(nonce) == 0 ||
            json_string_length(nonce) > CLST_ATTEST_MAX_NONCE_SIZE) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "\"nonce\" must be a string of 1 to %d characters (one issued by "
                              "POST /attest/challenge)",
                              CLST_ATTEST_MAX_NONCE_SIZE);
            goto out;
        }
        const char *s = json_string_value(nonce);
        for (size_t i = 0; i < json_string_length(nonce); i++) {
            if (!nonce_char((unsigned char)s[i])) {
                rc = clst_err_set(err, CLST_E_MALFORMED,
                                  "\"nonce\" may hold only printable ASCII without spaces");
                goto out;
            }
        }
        if ((r.nonce = strdup(s)) == NULL) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
    }
    const json_t *draft = json_object_get(doc, "draftPolicyForAttestation");
    if (draft != NULL) {
        if (!json_is_string(draft) || json_string_length(draft) == 0 ||
            json_string_length(draft) > CLST_POLICY_MAX_SIZE) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "\"draftPolicyForAttestation\" must be the policy JSON as a string "
                              "of 1 to %d bytes",
                              CLST_POLICY_MAX_SIZE);
            goto out;
        }
        if ((r.draft_policy = strdup(json_string_value(draft))) == NULL) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
    }
    *out = r;
    memset(&r, 0, sizeof(r));
    rc = CLST_OK;
out:
    clst_attest_request_cleanup(&r);
    json_decref(doc);
    return rc;
}
