/*
 * Appraisal: the policy in force for each attestation type, and its evaluation.
 *
 * The policy in force = the administrator's appraisal policy for the type (policy.h,
 * CLST_POLICY_APPRAISAL: authorizationRules in the release-policy condition grammar, optional
 * referenceValues), or the type's default when none was set, with the reference values managed
 * through `cloister attest refval` merged into referenceValues[<x-ms-attestation-type>][claim].
 * Its canonical hash (clst_policy_hash_b64url) is the token's x-ms-policy-hash, so a relying party
 * can tell exactly which policy admitted the evidence. The state is rebuilt from attest.db on every
 * change (under the engine's write lock) and evaluated under the read lock.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "attest_int.h"

json_t *
attest_default_policy(const struct clst_attest_type *type)
{
    json_t *rules = json_pack("[{s:s, s:s}]", "claim", CLST_CLAIM_ATTESTATION_TYPE, "equals",
                              type->attestation_type);
    if (rules == NULL) {
        return NULL;
    }
    /* Debuggable TEEs are refused by the verifiers already; the rule says so in the policy. */
    const char *debug_claim = NULL;
    switch (type->kind) {
    case CLST_EVIDENCE_SIM:
        debug_claim = CLST_SIM_CLAIM_IS_DEBUGGABLE;
        break;
    case CLST_EVIDENCE_SGX:
        debug_claim = "x-ms-sgx-is-debuggable";
        break;
    case CLST_EVIDENCE_TDX:
        debug_claim = "tdx_is_debuggable";
        break;
    case CLST_EVIDENCE_SEVSNP:
        debug_claim = "x-ms-sevsnpvm-is-debuggable";
        break;
    case CLST_EVIDENCE_NITRO:
        debug_claim = "aws-nitro-is-debuggable";
        break;
    case CLST_EVIDENCE_AZURE_VTPM:
        /* SEV-SNP or TDX underneath: each claim exists only for its own kind. */
        if (json_array_append_new(
                rules,
                json_pack("{s:[{s:s, s:b}, {s:s, s:b}]}", "anyOf", "claim",
                          "x-ms-isolation-tee.x-ms-sevsnpvm-is-debuggable", "equals", 0, "claim",
                          "x-ms-isolation-tee.tdx_is_debuggable", "equals", 0)) != 0) {
            json_decref(rules);
            return NULL;
        }
        break;
    default: /* a TPM has no debug state */
        break;
    }
    if (debug_claim != NULL &&
        json_array_append_new(rules, json_pack("{s:s, s:b}", "claim", debug_claim, "equals",
                                               0)) != 0) {
        json_decref(rules);
        return NULL;
    }
    /* DCAP: the accepted TCB statuses are a policy setting; by default UpToDate only. */
    if ((type->kind == CLST_EVIDENCE_SGX || type->kind == CLST_EVIDENCE_TDX) &&
        json_array_append_new(rules, json_pack("{s:s, s:s}", "claim", "attester_tcb_status",
                                               "equals", "UpToDate")) != 0) {
        json_decref(rules);
        return NULL;
    }
    return json_pack("{s:s, s:{s:o}}", "version", CLST_POLICY_VERSION, "authorizationRules",
                     "allOf", rules);
}

void
attest_appraisal_cleanup(struct attest_appraisal *ap)
{
    json_decref(ap->stored);
    json_decref(ap->refvals);
    json_decref(ap->effective_json);
    clst_policy_free(ap->effective);
    memset(ap, 0, sizeof(*ap));
}

/* policy + refvals -> the document in force (a new object). */
static enum clst_status
merge(const json_t *policy, const json_t *refvals, const char *att_type, json_t **out,
      struct clst_err *err)
{
    json_t *doc = json_deep_copy(policy);
    if (doc == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    if (json_array_size(refvals) > 0) {
        json_t *refs = json_object_get(doc, "referenceValues");
        if (refs == NULL) {
            refs = json_object();
            if (refs == NULL || json_object_set_new(doc, "referenceValues", refs) != 0) {
                goto nomem;
            }
        }
        if (!json_is_object(refs)) {
            json_decref(doc);
            return clst_err_set(err, CLST_E_MALFORMED, "the stored policy's referenceValues is "
                                                       "not an object");
        }
        json_t *per_type = json_object_get(refs, att_type);
        if (per_type == NULL) {
            per_type = json_object();
            if (per_type == NULL || json_object_set_new(refs, att_type, per_type) != 0) {
                goto nomem;
            }
        }
        if (!json_is_object(per_type)) {
            json_decref(doc);
            return clst_err_set(err, CLST_E_MALFORMED,
                                "the stored policy's referenceValues.%s is not an object",
                                att_type);
        }
        size_t i;
        const json_t *rv;
        json_array_foreach(refvals, i, rv) {
            const char *claim = json_string_value(json_object_get(rv, "claim"));
            const json_t *value = json_object_get(rv, "value");
            if (claim == NULL || value == NULL) {
                continue;
            }
            json_t *allowed = json_object_get(per_type, claim);
            if (allowed == NULL) {
                allowed = json_array();
                if (allowed == NULL || json_object_set_new(per_type, claim, allowed) != 0) {
                    goto nomem;
                }
            }
            if (!json_is_array(allowed)) {
                json_decref(doc);
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "the stored policy's reference values for %s are not an "
                                    "array",
                                    claim);
            }
            bool present = false;
            size_t j;
            const json_t *e;
            json_array_foreach(allowed, j, e) {
                present |= json_equal((json_t *)e, (json_t *)value) != 0;
            }
            if (!present && json_array_append(allowed, (json_t *)value) != 0) {
                goto nomem;
            }
        }
    }
    *out = doc;
    return CLST_OK;
nomem:
    json_decref(doc);
    return clst_err_set(err, CLST_E_NOMEM, "out of memory");
}

/* Builds the state of one type from a policy document and the refvals (both borrowed). */
static enum clst_status
build(const struct clst_attest_type *type, json_t *stored, json_t *refvals,
      struct attest_appraisal *out, struct clst_err *err)
{
    enum clst_status rc;
    struct attest_appraisal ap;
    memset(&ap, 0, sizeof(ap));
    json_t *base = stored ? json_incref(stored) : attest_default_policy(type);
    if (base == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    if ((rc = merge(base, refvals, type->attestation_type, &ap.effective_json, err)) != CLST_OK) {
        goto out;
    }
    if ((rc = clst_policy_from_json(ap.effective_json, CLST_POLICY_APPRAISAL, &ap.effective,
                                    err)) != CLST_OK) {
        clst_err_prefix(err, "the %s policy with its reference values does not parse",
                        type->name);
        goto out;
    }
    if ((rc = clst_policy_hash_b64url(ap.effective, ap.hash)) != CLST_OK) {
        rc = clst_err_set(err, rc, "cannot hash the %s policy", type->name);
        goto out;
    }
    ap.stored = stored ? json_incref(stored) : NULL;
    ap.refvals = json_incref(refvals);
    *out = ap;
    memset(&ap, 0, sizeof(ap));
out:
    json_decref(base);
    attest_appraisal_cleanup(&ap);
    return rc;
}

enum clst_status
attest_appraisal_reload(struct clst_attest *a, size_t i, struct clst_err *err)
{
    enum clst_status rc;
    const struct clst_attest_type *type = clst_attest_type_at(i);
    char *text = NULL;
    json_t *stored = NULL;
    json_t *refvals = NULL;
    struct attest_appraisal ap;
    memset(&ap, 0, sizeof(ap));

    rc = attest_store_policy_get(a->store, type->name, &text, err);
    if (rc == CLST_OK) {
        json_error_t jerr;
        stored = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(stored)) {
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "attest.db: the stored %s policy is not a JSON object", type->name);
            goto out;
        }
    } else if (rc != CLST_E_NOTFOUND) {
        goto out;
    }
    if ((rc = attest_store_refval_list(a->store, type->name, &refvals, err)) != CLST_OK ||
        (rc = build(type, stored, refvals, &ap, err)) != CLST_OK) {
        goto out;
    }
    attest_appraisal_cleanup(&a->appraisal[i]);
    a->appraisal[i] = ap;
    rc = CLST_OK;
out:
    free(text);
    json_decref(stored);
    json_decref(refvals);
    return rc;
}

/* Evaluates `policy` and, on a denial, says why (err) and explains (out_denial). */
static enum clst_status
evaluate(const struct clst_policy *policy, const char *att_type, const json_t *claims,
         json_t **out_denial, struct clst_err *err)
{
    struct clst_policy_result *res = NULL;
    struct clst_buf summary;
    clst_buf_init(&summary, 2048);
    enum clst_status rc = clst_policy_evaluate(policy, claims, NULL, &res, err);
    if (rc == CLST_E_DENIED) {
        if (clst_policy_result_summary(res, 0, &summary) != CLST_OK || summary.size == 0) {
            clst_buf_reset(&summary);
            (void)clst_buf_append_str(&summary, "denied");
            (void)clst_buf_terminate(&summary);
        }
        const struct clst_policy_trace *d = clst_policy_result_denial(res);
        if (d != NULL && d->node == CLST_POLICY_NODE_REF_VALUE) {
            /* The allowed list can be long: name the claim and its actual value. */
            char *actual = d->actual ? json_dumps(d->actual, JSON_ENCODE_ANY) : NULL;
            clst_err_set(err, CLST_E_DENIED,
                         "appraisal denied: %s = %s is not one of the %zu reference values of "
                         "%s (cloister attest refval list)",
                         d->claim ? d->claim : "?", actual ? actual : "(missing)",
                         json_array_size(d->expected), att_type);
            free(actual);
        } else {
            clst_err_set(err, CLST_E_DENIED, "appraisal policy %s", (const char *)summary.data);
        }
        if (out_denial != NULL && clst_policy_result_to_json(res, 0, out_denial) != CLST_OK) {
            *out_denial = NULL;
        }
    }
    clst_policy_result_free(res);
    clst_buf_cleanup(&summary);
    return rc;
}

enum clst_status
attest_appraisal_check(struct clst_attest *a, size_t i, const json_t *claims,
                       char hash_out[static CLST_POLICY_HASH_STR_SIZE], json_t **out_denial,
                       struct clst_err *err)
{
    const struct attest_appraisal *ap = &a->appraisal[i];
    enum clst_status rc = evaluate(ap->effective, clst_attest_type_at(i)->attestation_type, claims,
                                   out_denial, err);
    if (rc == CLST_OK) {
        memcpy(hash_out, ap->hash, CLST_POLICY_HASH_STR_SIZE);
    }
    return rc;
}

enum clst_status
attest_draft_check(const struct clst_attest_type *type, const char *text, const json_t *claims,
                   char hash_out[static CLST_POLICY_HASH_STR_SIZE], json_t **out_denial,
                   struct clst_err *err)
{
    struct clst_policy *draft = NULL;
    enum clst_status rc = clst_policy_parse(text, strlen(text), CLST_POLICY_APPRAISAL, &draft, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "draftPolicyForAttestation (an appraisal policy in JSON, "
                             "docs/attestation.md) does not parse");
        return rc == CLST_E_LIMIT ? CLST_E_LIMIT : CLST_E_MALFORMED;
    }
    if ((rc = clst_policy_hash_b64url(draft, hash_out)) != CLST_OK) {
        clst_policy_free(draft);
        return clst_err_set(err, rc, "cannot hash the draft policy");
    }
    rc = evaluate(draft, type->attestation_type, claims, out_denial, err);
    if (rc == CLST_E_DENIED) {
        clst_err_prefix(err, "draft");
    }
    clst_policy_free(draft);
    return rc;
}

/* ---- administration ------------------------------------------------------------------------- */

enum clst_status
clst_attest_policy_get(struct clst_attest *a, const struct clst_attest_type *type,
                       json_t **out_policy, bool *out_is_default, struct clst_err *err)
{
    size_t i = attest_type_index(type);
    if (a == NULL || i >= ATTEST_TYPE_COUNT || out_policy == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_policy_get: bad argument");
    }
    pthread_rwlock_rdlock(&a->lock);
    const struct attest_appraisal *ap = &a->appraisal[i];
    bool is_default = ap->stored == NULL;
    json_t *p = is_default ? attest_default_policy(type) : json_deep_copy(ap->stored);
    pthread_rwlock_unlock(&a->lock);
    if (p == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    *out_policy = p;
    if (out_is_default != NULL) {
        *out_is_default = is_default;
    }
    return CLST_OK;
}

enum clst_status
clst_attest_policy_effective(struct clst_attest *a, const struct clst_attest_type *type,
                             json_t **out_policy, char **out_hash, struct clst_err *err)
{
    size_t i = attest_type_index(type);
    if (a == NULL || i >= ATTEST_TYPE_COUNT) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_policy_effective: bad argument");
    }
    pthread_rwlock_rdlock(&a->lock);
    const struct attest_appraisal *ap = &a->appraisal[i];
    json_t *p = out_policy ? json_deep_copy(ap->effective_json) : NULL;
    char *h = out_hash ? strdup(ap->hash) : NULL;
    pthread_rwlock_unlock(&a->lock);
    if ((out_policy != NULL && p == NULL) || (out_hash != NULL && h == NULL)) {
        json_decref(p);
        free(h);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    if (out_policy != NULL) {
        *out_policy = p;
    }
    if (out_hash != NULL) {
        *out_hash = h;
    }
    return CLST_OK;
}

enum clst_status
clst_attest_policy_set(struct clst_attest *a, const struct clst_attest_type *type,
                       const char *text, size_t size, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_policy *p = NULL;
    char *canon = NULL;
    size_t i = attest_type_index(type);
    if (a == NULL || i >= ATTEST_TYPE_COUNT || (text == NULL && size > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_policy_set: bad argument");
    }
    if ((rc = clst_policy_parse(text ? text : "", size, CLST_POLICY_APPRAISAL, &p, err)) !=
        CLST_OK) {
        clst_err_prefix(err, "the %s appraisal policy was not set", type->name);
        return rc;
    }
    canon = json_dumps(clst_policy_json(p), JSON_COMPACT | JSON_SORT_KEYS);
    if (canon == NULL) {
        clst_policy_free(p);
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    pthread_rwlock_wrlock(&a->lock);
    rc = attest_store_policy_put(a->store, type->name, canon, attest_now(a), err);
    if (rc == CLST_OK && (rc = attest_appraisal_reload(a, i, err)) != CLST_OK) {
        /* The policy parsed alone but not with the reference values: undo. */
        struct clst_err ignored;
        (void)attest_store_policy_delete(a->store, type->name, &ignored);
        (void)attest_appraisal_reload(a, i, &ignored);
    }
    pthread_rwlock_unlock(&a->lock);
    if (rc == CLST_OK) {
        clst_log_info("attest: appraisal policy for %s set", type->name);
    }
    free(canon);
    clst_policy_free(p);
    return rc;
}

enum clst_status
clst_attest_policy_reset(struct clst_attest *a, const struct clst_attest_type *type,
                         struct clst_err *err)
{
    size_t i = attest_type_index(type);
    if (a == NULL || i >= ATTEST_TYPE_COUNT) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_policy_reset: bad argument");
    }
    pthread_rwlock_wrlock(&a->lock);
    enum clst_status rc = attest_store_policy_delete(a->store, type->name, err);
    if (rc == CLST_OK) {
        rc = attest_appraisal_reload(a, i, err);
    }
    pthread_rwlock_unlock(&a->lock);
    if (rc == CLST_OK) {
        clst_log_info("attest: appraisal policy for %s reset to the default", type->name);
    }
    return rc;
}

static enum clst_status
check_claim_name(const char *claim, struct clst_err *err)
{
    size_t n = claim ? strlen(claim) : 0;
    if (n == 0 || n > CLST_POLICY_MAX_CLAIM_SIZE) {
        return clst_err_set(err, CLST_E_INVAL, "a claim name has 1 to %d characters",
                            CLST_POLICY_MAX_CLAIM_SIZE);
    }
    for (size_t i = 0; i < n; i++) {
        char c = claim[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            return clst_err_set(err, CLST_E_INVAL,
                                "a claim name may hold letters, digits, '-', '_' and '.' only");
        }
    }
    return CLST_OK;
}

/* Checks a reference value and normalizes it (measurement claims: lower-case hex of the right
 * length) into out. */
static enum clst_status
normalize_value(const struct clst_attest_type *type, const char *claim, const char *value,
                char out[static CLST_ATTEST_MAX_REFVAL_SIZE + 1], struct clst_err *err)
{
    size_t n = value ? strlen(value) : 0;
    if (n == 0 || n > CLST_ATTEST_MAX_REFVAL_SIZE) {
        return clst_err_set(err, CLST_E_INVAL, "a reference value has 1 to %d characters",
                            CLST_ATTEST_MAX_REFVAL_SIZE);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c > 0x7e) {
            return clst_err_set(err, CLST_E_INVAL,
                                "a reference value may hold printable ASCII characters only");
        }
        out[i] = value[i];
    }
    out[n] = '\0';
    size_t want = 0;
    if (type->kind == CLST_EVIDENCE_SIM && strcmp(claim, CLST_SIM_CLAIM_MRENCLAVE) == 0) {
        want = 2 * CLST_SIM_MEASUREMENT_SIZE;
    } else if (type->kind == CLST_EVIDENCE_SIM && strcmp(claim, CLST_SIM_CLAIM_MRSIGNER) == 0) {
        want = 2 * CLST_SIM_SIGNER_SIZE;
    }
    if (want != 0) {
        if (n != want) {
            return clst_err_set(err, CLST_E_INVAL, "%s values are %zu hex characters, not %zu",
                                claim, want, n);
        }
        for (size_t i = 0; i < n; i++) {
            char c = out[i];
            if (c >= 'A' && c <= 'F') {
                out[i] = (char)(c - 'A' + 'a');
            } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
                return clst_err_set(err, CLST_E_INVAL, "%s values are hexadecimal", claim);
            }
        }
    }
    return CLST_OK;
}

static bool
note_ok(const char *note)
{
    size_t n = 0;
    for (const char *p = note; *p != '\0'; p++, n++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c > 0x7e || n >= 256) {
            return false;
        }
    }
    return true;
}

enum clst_status
clst_attest_refval_add(struct clst_attest *a, const struct clst_attest_type *type,
                       const char *claim, const char *value, const char *note,
                       struct clst_err *err)
{
    enum clst_status rc;
    char v[CLST_ATTEST_MAX_REFVAL_SIZE + 1];
    size_t i = attest_type_index(type);
    if (a == NULL || i >= ATTEST_TYPE_COUNT) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_refval_add: bad argument");
    }
    if (claim == NULL) {
        claim = type->measurement_claim;
    }
    if ((rc = check_claim_name(claim, err)) != CLST_OK ||
        (rc = normalize_value(type, claim, value, v, err)) != CLST_OK) {
        return rc;
    }
    if (note != NULL && !note_ok(note)) {
        return clst_err_set(err, CLST_E_INVAL,
                            "a note has at most 256 printable ASCII characters");
    }
    pthread_rwlock_wrlock(&a->lock);
    rc = attest_store_refval_add(a->store, type->name, claim, v, note, attest_now(a),
                                 CLST_ATTEST_MAX_REFVALS, err);
    if (rc == CLST_OK && (rc = attest_appraisal_reload(a, i, err)) != CLST_OK) {
        struct clst_err ignored;
        (void)attest_store_refval_remove(a->store, type->name, claim, v, &ignored);
        (void)attest_appraisal_reload(a, i, &ignored);
    }
    pthread_rwlock_unlock(&a->lock);
    if (rc == CLST_OK) {
        clst_log_info("attest: reference value added for %s %s", type->name, claim);
    }
    return rc;
}

enum clst_status
clst_attest_refval_remove(struct clst_attest *a, const struct clst_attest_type *type,
                          const char *claim, const char *value, struct clst_err *err)
{
    enum clst_status rc;
    char v[CLST_ATTEST_MAX_REFVAL_SIZE + 1];
    size_t i = attest_type_index(type);
    if (a == NULL || i >= ATTEST_TYPE_COUNT) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_refval_remove: bad argument");
    }
    if (claim == NULL) {
        claim = type->measurement_claim;
    }
    if ((rc = check_claim_name(claim, err)) != CLST_OK ||
        (rc = normalize_value(type, claim, value, v, err)) != CLST_OK) {
        return rc;
    }
    pthread_rwlock_wrlock(&a->lock);
    rc = attest_store_refval_remove(a->store, type->name, claim, v, err);
    if (rc == CLST_OK) {
        rc = attest_appraisal_reload(a, i, err);
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

enum clst_status
clst_attest_refval_list(struct clst_attest *a, const struct clst_attest_type *type, json_t **out,
                        struct clst_err *err)
{
    size_t i = attest_type_index(type);
    if (a == NULL || i >= ATTEST_TYPE_COUNT || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_attest_refval_list: bad argument");
    }
    pthread_rwlock_rdlock(&a->lock);
    json_t *copy = json_deep_copy(a->appraisal[i].refvals);
    pthread_rwlock_unlock(&a->lock);
    if (copy == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    *out = copy;
    return CLST_OK;
}
