/*
 * The canonical policy hash (docs/policy.md): SHA-256 over the UTF-8 text that jansson's
 * json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) writes for the parsed document: members sorted
 * by name (byte order), no whitespace, strings with jansson's escaping (control characters,
 * '"' and '\' escaped, everything else as UTF-8), integers in decimal, reals as "%.17g" with a
 * ".0" added when that looks like an integer. Parsing first means whitespace, member order and
 * equivalent escapes ("\u0041" and "A") do not change the hash; any change of a name or value
 * does. The attestation service reports it in x-ms-policy-hash as base64url without padding.
 */
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>

#include "policy/policy_int.h"

char *
policy_canonical_json(const json_t *doc)
{
    return json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
}

enum clst_status
policy_compute_hash(struct clst_policy *policy)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_buf b64;
    char *text = NULL;

    clst_buf_init(&b64, CLST_POLICY_HASH_STR_SIZE);
    text = policy_canonical_json(policy->doc);
    if (text == NULL) {
        rc = CLST_E_NOMEM;
        goto out;
    }
    rc = clst_sha256(text, strlen(text), policy->hash);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = clst_b64url_encode(policy->hash, sizeof(policy->hash), &b64);
    if (rc != CLST_OK) {
        goto out;
    }
    if (b64.size != CLST_POLICY_HASH_STR_SIZE - 1) {
        rc = CLST_E_INTERNAL;
        goto out;
    }
    memcpy(policy->hash_b64, b64.data, b64.size);
    policy->hash_b64[b64.size] = '\0';
    rc = CLST_OK;
out:
    clst_buf_cleanup(&b64);
    free(text);
    return rc;
}

enum clst_status
clst_policy_hash(const struct clst_policy *policy, uint8_t out[static CLST_POLICY_HASH_SIZE])
{
    if (policy == NULL) {
        return CLST_E_INVAL;
    }
    memcpy(out, policy->hash, CLST_POLICY_HASH_SIZE);
    return CLST_OK;
}

enum clst_status
clst_policy_hash_b64url(const struct clst_policy *policy,
                        char out[static CLST_POLICY_HASH_STR_SIZE])
{
    if (policy == NULL) {
        return CLST_E_INVAL;
    }
    memcpy(out, policy->hash_b64, CLST_POLICY_HASH_STR_SIZE);
    return CLST_OK;
}
