/*
 * Intel's signed collateral JSON (PCS API v3/v4 responses): the raw-member split that finds the
 * exact bytes Intel signed, and the parsers of the tcbInfo (v2, v3; SGX and TDX) and
 * enclaveIdentity (v2; QE and TD_QE) values. The signature is over the member's value exactly as
 * it appears in the file; it is never re-serialized (a pretty-printed copy does not verify).
 *
 * The parsers take the value only after its signature verified (dcap_verify.c), but they are
 * written for hostile input all the same: every count is capped (CLST_E_LIMIT), every member that
 * is used is type- and range-checked, and duplicate keys are refused at every level.
 */
#include <stdio.h>
#include <string.h>

#include "evidence/dcap_int.h"

/* ---- TCB status names ------------------------------------------------------------------------ */

static const char *const status_names[DCAP_TCB_STATUS_COUNT] = {
    "UpToDate",  "SWHardeningNeeded",            "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",         "OutOfDate",
    "OutOfDateConfigurationNeeded",              "Revoked",
};

const char *
dcap_tcb_status_name(enum dcap_tcb_status s)
{
    return (unsigned)s < DCAP_TCB_STATUS_COUNT ? status_names[s] : "?";
}

enum clst_status
dcap_tcb_status_parse(const char *name, size_t len, enum dcap_tcb_status *out)
{
    for (size_t i = 0; i < DCAP_TCB_STATUS_COUNT; i++) {
        if (strlen(status_names[i]) == len && memcmp(status_names[i], name, len) == 0) {
            *out = (enum dcap_tcb_status)i;
            return CLST_OK;
        }
    }
    return CLST_E_MALFORMED;
}

/* ---- the raw-member split -------------------------------------------------------------------- */

static void
skip_ws(const uint8_t *d, size_t n, size_t *i)
{
    while (*i < n && (d[*i] == ' ' || d[*i] == '\t' || d[*i] == '\n' || d[*i] == '\r')) {
        (*i)++;
    }
}

/* At d[*i] == '"': moves past the closing quote. False when unterminated. */
static bool
skip_string(const uint8_t *d, size_t n, size_t *i)
{
    size_t j = *i + 1;
    while (j < n) {
        if (d[j] == '\\') {
            j += 2;
            continue;
        }
        if (d[j] == '"') {
            *i = j + 1;
            return true;
        }
        j++;
    }
    return false;
}

/* Moves past one JSON value (the document already parsed as JSON, so only spans matter). */
static bool
skip_value(const uint8_t *d, size_t n, size_t *i)
{
    if (*i >= n) {
        return false;
    }
    if (d[*i] == '"') {
        return skip_string(d, n, i);
    }
    if (d[*i] == '{' || d[*i] == '[') {
        size_t depth = 0;
        while (*i < n) {
            uint8_t ch = d[*i];
            if (ch == '"') {
                if (!skip_string(d, n, i)) {
                    return false;
                }
                continue;
            }
            if (ch == '{' || ch == '[') {
                depth++;
            } else if (ch == '}' || ch == ']') {
                if (depth == 0) {
                    return false;
                }
                depth--;
                if (depth == 0) {
                    (*i)++;
                    return true;
                }
            }
            (*i)++;
        }
        return false;
    }
    size_t start = *i;
    while (*i < n && d[*i] != ',' && d[*i] != '}' && d[*i] != ']' && d[*i] != ' ' &&
           d[*i] != '\t' && d[*i] != '\n' && d[*i] != '\r') {
        (*i)++;
    }
    return *i > start;
}

enum clst_status
dcap_signed_json_split(const uint8_t *data, size_t size, const char *member, size_t *out_body_off,
                       size_t *out_body_size, uint8_t out_sig[DCAP_ECDSA_SIG_SIZE],
                       struct clst_err *err)
{
    json_error_t jerr;
    json_t *doc = NULL;
    enum clst_status rc = CLST_E_MALFORMED;
    size_t i = 0, body_off = 0, body_end = 0, mlen = strlen(member);
    int found = 0;

    if (data == NULL || member == NULL || out_body_off == NULL || out_body_size == NULL ||
        out_sig == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "signed JSON: missing argument");
    }
    if (size > DCAP_COLL_JSON_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "signed JSON of %zu bytes is over the limit of %u",
                            size, DCAP_COLL_JSON_MAX);
    }
    doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL || !json_is_object(doc)) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "not a signed %s document (one JSON object): %s", member,
                          doc == NULL ? jerr.text : "not an object");
        goto out;
    }
    json_t *value = json_object_get(doc, member);
    json_t *sig = json_object_get(doc, "signature");
    if (!json_is_object(value) || !json_is_string(sig)) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "signed JSON: \"%s\" (an object) and \"signature\" (a string) are "
                          "required",
                          member);
        goto out;
    }
    if (clst_hex_decode_fixed(json_string_value(sig), json_string_length(sig), out_sig,
                              DCAP_ECDSA_SIG_SIZE) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "signed JSON: \"signature\" is not %d hex characters (ECDSA P-256 r||s)",
                          2 * DCAP_ECDSA_SIG_SIZE);
        goto out;
    }

    /* The document is valid JSON; now find the member's value bytes in the top-level object. */
    skip_ws(data, size, &i);
    if (i >= size || data[i] != '{') {
        goto scan_fail;
    }
    i++;
    for (;;) {
        skip_ws(data, size, &i);
        if (i >= size || data[i] != '"') {
            goto scan_fail;
        }
        size_t key_start = i + 1;
        if (!skip_string(data, size, &i)) {
            goto scan_fail;
        }
        size_t key_len = i - 1 - key_start;
        skip_ws(data, size, &i);
        if (i >= size || data[i] != ':') {
            goto scan_fail;
        }
        i++;
        skip_ws(data, size, &i);
        size_t vstart = i;
        if (!skip_value(data, size, &i)) {
            goto scan_fail;
        }
        /* A key written with escapes never matches here; jansson decoded it, so such a document
         * is refused below (found stays 0) rather than verified over the wrong bytes. */
        if (key_len == mlen && memcmp(data + key_start, member, mlen) == 0) {
            found++;
            body_off = vstart;
            body_end = i;
        }
        skip_ws(data, size, &i);
        if (i < size && data[i] == ',') {
            i++;
            continue;
        }
        if (i < size && data[i] == '}') {
            i++;
            break;
        }
        goto scan_fail;
    }
    if (found != 1) {
        goto scan_fail;
    }
    *out_body_off = body_off;
    *out_body_size = body_end - body_off;
    rc = CLST_OK;
    goto out;
scan_fail:
    rc = clst_err_set(err, CLST_E_MALFORMED,
                      "signed JSON: cannot locate the bytes of \"%s\" in the document", member);
out:
    json_decref(doc);
    return rc;
}

/* ---- member helpers -------------------------------------------------------------------------- */

static enum clst_status
bad(struct clst_err *err, const char *doc, const char *what)
{
    return clst_err_set(err, CLST_E_MALFORMED, "%s: %s", doc, what);
}

static enum clst_status
get_int(const json_t *obj, const char *name, json_int_t min, json_int_t max, json_int_t *out,
        const char *doc, struct clst_err *err)
{
    const json_t *v = json_object_get(obj, name);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        return clst_err_set(err, CLST_E_MALFORMED, "%s: \"%s\" must be an integer in %lld..%lld",
                            doc, name, (long long)min, (long long)max);
    }
    *out = json_integer_value(v);
    return CLST_OK;
}

static enum clst_status
get_hex(const json_t *obj, const char *name, uint8_t *out, size_t n, const char *doc,
        struct clst_err *err)
{
    const json_t *v = json_object_get(obj, name);
    if (!json_is_string(v) ||
        clst_hex_decode_fixed(json_string_value(v), json_string_length(v), out, n) != CLST_OK) {
        return clst_err_set(err, CLST_E_MALFORMED, "%s: \"%s\" must be %zu hex characters", doc,
                            name, 2 * n);
    }
    return CLST_OK;
}

static enum clst_status
get_date(const json_t *obj, const char *name, int64_t *out, const char *doc, struct clst_err *err)
{
    const json_t *v = json_object_get(obj, name);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        clst_time_parse(json_string_value(v), out, NULL) != CLST_OK) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "%s: \"%s\" must be a date like 2024-03-13T00:00:00Z", doc, name);
    }
    return CLST_OK;
}

static enum clst_status
get_status(const json_t *obj, enum dcap_tcb_status *out, const char *doc, struct clst_err *err)
{
    const json_t *v = json_object_get(obj, "tcbStatus");
    if (!json_is_string(v) ||
        dcap_tcb_status_parse(json_string_value(v), json_string_length(v), out) != CLST_OK) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "%s: \"tcbStatus\" must be one of UpToDate, SWHardeningNeeded, "
                            "ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, OutOfDate, "
                            "OutOfDateConfigurationNeeded, Revoked",
                            doc);
    }
    return CLST_OK;
}

/* Optional "advisoryIDs": strings appended to the pool. */
static enum clst_status
get_advisories(const json_t *obj, struct dcap_advisory_pool *pool, size_t *first, size_t *count,
               const char *doc, struct clst_err *err)
{
    const json_t *arr = json_object_get(obj, "advisoryIDs");
    *first = pool->count;
    *count = 0;
    if (arr == NULL) {
        return CLST_OK;
    }
    if (!json_is_array(arr)) {
        return bad(err, doc, "\"advisoryIDs\" must be an array of strings");
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *s = json_array_get(arr, i);
        if (!json_is_string(s) || json_string_length(s) == 0 ||
            json_string_length(s) >= DCAP_ADVISORY_ID_SIZE) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "%s: advisory ids must be strings of 1..%d characters", doc,
                                DCAP_ADVISORY_ID_SIZE - 1);
        }
        const char *text = json_string_value(s);
        for (size_t k = 0; k < json_string_length(s); k++) {
            if (text[k] < 0x21 || text[k] > 0x7e) {
                return bad(err, doc, "advisory ids must be printable ASCII without spaces");
            }
        }
        if (pool->count >= DCAP_MAX_ADVISORY_POOL) {
            return clst_err_set(err, CLST_E_LIMIT, "%s: more than %d advisory ids", doc,
                                DCAP_MAX_ADVISORY_POOL);
        }
        memcpy(pool->id[pool->count], text, json_string_length(s) + 1);
        pool->count++;
        (*count)++;
    }
    return CLST_OK;
}

/* One {"tcb":{"isvsvn":N},"tcbDate":...,"tcbStatus":...,"advisoryIDs":[...]} level. */
static enum clst_status
parse_isv_level(const json_t *lv, struct dcap_isv_level *out, struct dcap_advisory_pool *pool,
                const char *doc, struct clst_err *err)
{
    enum clst_status rc;
    json_int_t v = 0;
    const json_t *tcb = json_object_get(lv, "tcb");
    if (!json_is_object(lv) || !json_is_object(tcb)) {
        return bad(err, doc, "every TCB level needs a \"tcb\" object");
    }
    if ((rc = get_int(tcb, "isvsvn", 0, 65535, &v, doc, err)) != CLST_OK ||
        (rc = get_date(lv, "tcbDate", &out->tcb_date, doc, err)) != CLST_OK ||
        (rc = get_status(lv, &out->status, doc, err)) != CLST_OK ||
        (rc = get_advisories(lv, pool, &out->adv_first, &out->adv_count, doc, err)) != CLST_OK) {
        return rc;
    }
    out->isvsvn = (uint16_t)v;
    return CLST_OK;
}

static enum clst_status
load_object(const uint8_t *json, size_t size, const char *doc, json_t **out, struct clst_err *err)
{
    json_error_t jerr;
    if (json == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "%s: no input", doc);
    }
    if (size > DCAP_COLL_JSON_MAX) {
        return clst_err_set(err, CLST_E_LIMIT, "%s of %zu bytes is over the limit of %u", doc, size,
                            DCAP_COLL_JSON_MAX);
    }
    json_t *j = json_loadb((const char *)json, size, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        return clst_err_set(err, CLST_E_MALFORMED, "%s is not a JSON object: %s", doc,
                            j == NULL ? jerr.text : "another JSON value");
    }
    *out = j;
    return CLST_OK;
}

/* ---- tcbInfo ---------------------------------------------------------------------------------- */

static enum clst_status
parse_svn_array(const json_t *tcb, const char *name, uint8_t out[16], const char *doc,
                struct clst_err *err)
{
    const json_t *arr = json_object_get(tcb, name);
    if (!json_is_array(arr) || json_array_size(arr) != 16) {
        return clst_err_set(err, CLST_E_MALFORMED, "%s: \"%s\" must be an array of 16 components",
                            doc, name);
    }
    for (size_t i = 0; i < 16; i++) {
        json_int_t v = 0;
        const json_t *comp = json_array_get(arr, i);
        if (!json_is_object(comp)) {
            return clst_err_set(err, CLST_E_MALFORMED, "%s: \"%s\"[%zu] must be an object", doc,
                                name, i);
        }
        enum clst_status rc = get_int(comp, "svn", 0, 255, &v, doc, err);
        if (rc != CLST_OK) {
            return rc;
        }
        out[i] = (uint8_t)v;
    }
    return CLST_OK;
}

static enum clst_status
parse_tcb_level(const json_t *lv, const struct dcap_tcb_info *info, struct dcap_tcb_level *out,
                struct dcap_advisory_pool *pool, struct clst_err *err)
{
    static const char doc[] = "tcbInfo";
    enum clst_status rc;
    json_int_t v = 0;
    const json_t *tcb = json_object_get(lv, "tcb");

    if (!json_is_object(lv) || !json_is_object(tcb)) {
        return bad(err, doc, "every TCB level needs a \"tcb\" object");
    }
    if (info->version == 2) {
        for (size_t i = 0; i < 16; i++) {
            char name[24];
            snprintf(name, sizeof(name), "sgxtcbcomp%02zusvn", i + 1);
            if ((rc = get_int(tcb, name, 0, 255, &v, doc, err)) != CLST_OK) {
                return rc;
            }
            out->sgx_svn[i] = (uint8_t)v;
        }
    } else {
        if ((rc = parse_svn_array(tcb, "sgxtcbcomponents", out->sgx_svn, doc, err)) != CLST_OK) {
            return rc;
        }
        if (info->id == DCAP_TCB_INFO_TDX &&
            (rc = parse_svn_array(tcb, "tdxtcbcomponents", out->tdx_svn, doc, err)) != CLST_OK) {
            return rc;
        }
    }
    if ((rc = get_int(tcb, "pcesvn", 0, 65535, &v, doc, err)) != CLST_OK) {
        return rc;
    }
    out->pcesvn = (uint16_t)v;
    if ((rc = get_date(lv, "tcbDate", &out->tcb_date, doc, err)) != CLST_OK ||
        (rc = get_status(lv, &out->status, doc, err)) != CLST_OK ||
        (rc = get_advisories(lv, pool, &out->adv_first, &out->adv_count, doc, err)) != CLST_OK) {
        return rc;
    }
    return CLST_OK;
}

static enum clst_status
parse_module(const json_t *m, struct dcap_module_identity *out, struct dcap_advisory_pool *pool,
             struct clst_err *err)
{
    static const char doc[] = "tcbInfo tdxModuleIdentities";
    enum clst_status rc;
    const json_t *id = json_object_get(m, "id");
    const json_t *levels = json_object_get(m, "tcbLevels");

    if (!json_is_object(m) || !json_is_string(id) || json_string_length(id) == 0 ||
        json_string_length(id) >= sizeof(out->id) ||
        strlen(json_string_value(id)) != json_string_length(id)) {
        return bad(err, doc, "every module identity needs an \"id\" of 1..15 characters");
    }
    memcpy(out->id, json_string_value(id), json_string_length(id) + 1);
    if ((rc = get_hex(m, "mrsigner", out->mrsigner, 48, doc, err)) != CLST_OK ||
        (rc = get_hex(m, "attributes", out->attributes, 8, doc, err)) != CLST_OK ||
        (rc = get_hex(m, "attributesMask", out->attributes_mask, 8, doc, err)) != CLST_OK) {
        return rc;
    }
    if (!json_is_array(levels) || json_array_size(levels) == 0) {
        return bad(err, doc, "\"tcbLevels\" must be a non-empty array");
    }
    if (json_array_size(levels) > DCAP_MAX_MODULE_LEVELS) {
        return clst_err_set(err, CLST_E_LIMIT, "%s: more than %d TCB levels in %s", doc,
                            DCAP_MAX_MODULE_LEVELS, out->id);
    }
    for (size_t i = 0; i < json_array_size(levels); i++) {
        if ((rc = parse_isv_level(json_array_get(levels, i), &out->level[i], pool, doc, err)) !=
            CLST_OK) {
            return rc;
        }
        if (out->level[i].isvsvn > 255) {
            return bad(err, doc, "a TDX module isvsvn is one byte (0..255)");
        }
    }
    out->level_count = json_array_size(levels);
    return CLST_OK;
}

enum clst_status
dcap_tcb_info_parse(const uint8_t *json, size_t size, struct dcap_tcb_info *out,
                    struct clst_err *err)
{
    static const char doc[] = "tcbInfo";
    enum clst_status rc = CLST_E_MALFORMED;
    json_t *j = NULL;
    json_int_t v = 0;

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "tcbInfo: no output");
    }
    memset(out, 0, sizeof(*out));
    if ((rc = load_object(json, size, doc, &j, err)) != CLST_OK) {
        return rc;
    }
    if ((rc = get_int(j, "version", 2, 3, &v, doc, err)) != CLST_OK) {
        goto out;
    }
    out->version = (int)v;
    const json_t *id = json_object_get(j, "id");
    if (id == NULL && out->version == 2) {
        out->id = DCAP_TCB_INFO_SGX;
    } else if (json_is_string(id) && strcmp(json_string_value(id), "SGX") == 0 &&
               json_string_length(id) == 3) {
        out->id = DCAP_TCB_INFO_SGX;
    } else if (json_is_string(id) && strcmp(json_string_value(id), "TDX") == 0 &&
               json_string_length(id) == 3 && out->version == 3) {
        out->id = DCAP_TCB_INFO_TDX;
    } else {
        rc = bad(err, doc, "\"id\" must be \"SGX\" or (version 3) \"TDX\"");
        goto out;
    }
    if ((rc = get_date(j, "issueDate", &out->issue_date, doc, err)) != CLST_OK ||
        (rc = get_date(j, "nextUpdate", &out->next_update, doc, err)) != CLST_OK ||
        (rc = get_hex(j, "fmspc", out->fmspc, sizeof(out->fmspc), doc, err)) != CLST_OK ||
        (rc = get_hex(j, "pceId", out->pceid, sizeof(out->pceid), doc, err)) != CLST_OK ||
        (rc = get_int(j, "tcbType", 0, 0xffffffffLL, &v, doc, err)) != CLST_OK) {
        goto out;
    }
    out->tcb_type = (uint32_t)v;
    if ((rc = get_int(j, "tcbEvaluationDataNumber", 0, 0xffffffffLL, &v, doc, err)) != CLST_OK) {
        goto out;
    }
    out->eval_number = (uint32_t)v;

    const json_t *mod = json_object_get(j, "tdxModule");
    if (mod != NULL) {
        if (!json_is_object(mod)) {
            rc = bad(err, doc, "\"tdxModule\" must be an object");
            goto out;
        }
        if ((rc = get_hex(mod, "mrsigner", out->module_mrsigner, 48, doc, err)) != CLST_OK ||
            (rc = get_hex(mod, "attributes", out->module_attributes, 8, doc, err)) != CLST_OK ||
            (rc = get_hex(mod, "attributesMask", out->module_attributes_mask, 8, doc, err)) !=
                CLST_OK) {
            goto out;
        }
        out->has_tdx_module = true;
    }
    const json_t *mods = json_object_get(j, "tdxModuleIdentities");
    if (mods != NULL) {
        if (!json_is_array(mods)) {
            rc = bad(err, doc, "\"tdxModuleIdentities\" must be an array");
            goto out;
        }
        if (json_array_size(mods) > DCAP_MAX_MODULES) {
            rc = clst_err_set(err, CLST_E_LIMIT, "%s: more than %d TDX module identities", doc,
                              DCAP_MAX_MODULES);
            goto out;
        }
        for (size_t i = 0; i < json_array_size(mods); i++) {
            if ((rc = parse_module(json_array_get(mods, i), &out->module[i], &out->adv, err)) !=
                CLST_OK) {
                goto out;
            }
            out->module_count = i + 1;
        }
    }
    if (out->id == DCAP_TCB_INFO_TDX && !out->has_tdx_module) {
        rc = bad(err, doc, "a TDX tcbInfo needs \"tdxModule\"");
        goto out;
    }

    const json_t *levels = json_object_get(j, "tcbLevels");
    if (!json_is_array(levels) || json_array_size(levels) == 0) {
        rc = bad(err, doc, "\"tcbLevels\" must be a non-empty array");
        goto out;
    }
    if (json_array_size(levels) > DCAP_MAX_TCB_LEVELS) {
        rc = clst_err_set(err, CLST_E_LIMIT, "%s: more than %d TCB levels", doc,
                          DCAP_MAX_TCB_LEVELS);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(levels); i++) {
        if ((rc = parse_tcb_level(json_array_get(levels, i), out, &out->level[i], &out->adv,
                                  err)) != CLST_OK) {
            goto out;
        }
        out->level_count = i + 1;
    }
    rc = CLST_OK;
out:
    json_decref(j);
    return rc;
}

/* ---- enclaveIdentity -------------------------------------------------------------------------- */

enum clst_status
dcap_qe_identity_parse(const uint8_t *json, size_t size, struct dcap_qe_identity *out,
                       struct clst_err *err)
{
    static const char doc[] = "enclaveIdentity";
    enum clst_status rc = CLST_E_MALFORMED;
    json_t *j = NULL;
    json_int_t v = 0;
    uint8_t misc[4];

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "enclaveIdentity: no output");
    }
    memset(out, 0, sizeof(*out));
    if ((rc = load_object(json, size, doc, &j, err)) != CLST_OK) {
        return rc;
    }
    const json_t *id = json_object_get(j, "id");
    if (json_is_string(id) && json_string_length(id) == 2 &&
        strcmp(json_string_value(id), "QE") == 0) {
        out->id = DCAP_QE_ID_QE;
    } else if (json_is_string(id) && json_string_length(id) == 5 &&
               strcmp(json_string_value(id), "TD_QE") == 0) {
        out->id = DCAP_QE_ID_TD_QE;
    } else {
        rc = bad(err, doc, "\"id\" must be \"QE\" or \"TD_QE\" (a quoting enclave identity)");
        goto out;
    }
    if ((rc = get_int(j, "version", 2, 2, &v, doc, err)) != CLST_OK) {
        goto out;
    }
    out->version = (int)v;
    if ((rc = get_date(j, "issueDate", &out->issue_date, doc, err)) != CLST_OK ||
        (rc = get_date(j, "nextUpdate", &out->next_update, doc, err)) != CLST_OK ||
        (rc = get_int(j, "tcbEvaluationDataNumber", 0, 0xffffffffLL, &v, doc, err)) != CLST_OK) {
        goto out;
    }
    out->eval_number = (uint32_t)v;
    /* miscselect is written as a number in big-endian hex ("00000000"). */
    if ((rc = get_hex(j, "miscselect", misc, 4, doc, err)) != CLST_OK) {
        goto out;
    }
    out->miscselect = (uint32_t)misc[0] << 24 | (uint32_t)misc[1] << 16 |
                      (uint32_t)misc[2] << 8 | misc[3];
    if ((rc = get_hex(j, "miscselectMask", misc, 4, doc, err)) != CLST_OK) {
        goto out;
    }
    out->miscselect_mask = (uint32_t)misc[0] << 24 | (uint32_t)misc[1] << 16 |
                           (uint32_t)misc[2] << 8 | misc[3];
    if ((rc = get_hex(j, "attributes", out->attributes, 16, doc, err)) != CLST_OK ||
        (rc = get_hex(j, "attributesMask", out->attributes_mask, 16, doc, err)) != CLST_OK ||
        (rc = get_hex(j, "mrsigner", out->mrsigner, 32, doc, err)) != CLST_OK ||
        (rc = get_int(j, "isvprodid", 0, 65535, &v, doc, err)) != CLST_OK) {
        goto out;
    }
    out->isvprodid = (uint16_t)v;
    const json_t *levels = json_object_get(j, "tcbLevels");
    if (!json_is_array(levels) || json_array_size(levels) == 0) {
        rc = bad(err, doc, "\"tcbLevels\" must be a non-empty array");
        goto out;
    }
    if (json_array_size(levels) > DCAP_MAX_QE_LEVELS) {
        rc = clst_err_set(err, CLST_E_LIMIT, "%s: more than %d TCB levels", doc,
                          DCAP_MAX_QE_LEVELS);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(levels); i++) {
        if ((rc = parse_isv_level(json_array_get(levels, i), &out->level[i], &out->adv, doc,
                                  err)) != CLST_OK) {
            goto out;
        }
        out->level_count = i + 1;
    }
    rc = CLST_OK;
out:
    json_decref(j);
    return rc;
}
