/*
 * Vault governance rules: the rules file, the checks of one object version, the 403 reply, the
 * release-policy analysis and the check of a whole store (include/cloister/vault_governance.h,
 * src/vault/governance.h; the format is in docs/operations.md ("Governance rules")).
 *
 * The release-policy rule ("release-policy-non-debug") walks the policy as parsed by
 * src/policy (clst_policy_parse validates the grammar; clst_policy_json gives the document) and
 * asks, for each kind of token the policy could be shown, whether the policy can admit it while
 * the TEE is debuggable. A token kind is a pair (top-level x-ms-attestation-type,
 * x-ms-isolation-tee.x-ms-attestation-type) drawn from the TEE types Cloister knows, the type
 * literals the policy itself names, "some other type" and (for the isolation-tee one) "absent".
 * In that token every debug claim of its types is true. A condition on a claim the analysis does
 * not model may hold or not (it is assumed it can hold), so the answer errs on the side of
 * refusing: a policy passes only when each admitted token kind is a TEE type with a debug claim
 * and that claim is pinned to false on every path that admits it.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>
#include <cloister/policy.h>
#include <cloister/vault_governance.h>

#include "governance.h"

#define SECONDS_PER_DAY 86400
#define TYPE_LITERALS_MAX 32 /* distinct type strings a policy may name (beyond: refused) */
#define SOURCE_MAX 200

struct size_list {
    bool allowed;
    size_t count; /* 0 with allowed: none listed (cannot happen once parsed) */
    int64_t sizes[CLST_GOV_SIZES_MAX];
};

struct clst_vault_governance {
    char source[SOURCE_MAX + 1];
    bool has_key_types;
    struct size_list rsa;
    struct size_list oct;
    bool ec_allowed;
    bool ec_curves[4]; /* indexed by enum clst_curve */
    int64_t max_validity_days; /* 0: off */
    bool require_expiry;
    bool exportable_needs_immutable;
    bool non_debug;
    char *tags[CLST_GOV_TAGS_MAX];
    size_t tag_count;
};

/* ---- the rules file ------------------------------------------------------------------------- */

static enum clst_status
field_err(struct clst_err *err, const char *source, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum clst_status
field_err(struct clst_err *err, const char *source, const char *field, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    (void)n;
    return clst_err_set(err, CLST_E_MALFORMED, "governance rules %s: field '%s': %s", source, field,
                        what);
}

static enum clst_status
parse_bool(const json_t *v, const char *source, const char *field, bool *out, struct clst_err *err)
{
    if (!json_is_boolean(v)) {
        return field_err(err, source, field, "must be true or false");
    }
    *out = json_is_true(v);
    return CLST_OK;
}

static enum clst_status
parse_sizes(const json_t *arr, const char *source, const char *field, int64_t min, int64_t max,
            struct size_list *out, struct clst_err *err)
{
    size_t i;
    const json_t *e;
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        return field_err(err, source, field, "must be a non-empty array of key sizes in bits");
    }
    if (json_array_size(arr) > CLST_GOV_SIZES_MAX) {
        return field_err(err, source, field, "lists more than %d sizes", CLST_GOV_SIZES_MAX);
    }
    out->allowed = true;
    out->count = 0;
    json_array_foreach(arr, i, e) {
        if (!json_is_integer(e) || json_integer_value(e) < min || json_integer_value(e) > max) {
            return field_err(err, source, field,
                             "element %zu must be an integer number of bits %" PRId64
                             "..%" PRId64,
                             i, min, max);
        }
        out->sizes[out->count++] = (int64_t)json_integer_value(e);
    }
    return CLST_OK;
}

static enum clst_status
parse_key_types(struct clst_vault_governance *g, json_t *v, struct clst_err *err)
{
    const char *key;
    json_t *val;
    if (!json_is_object(v) || json_object_size(v) == 0) {
        return field_err(err, g->source, CLST_GOV_RULE_KEY_TYPES,
                         "must be an object such as {\"RSA\": [3072, 4096], \"EC\": [\"P-256\"], "
                         "\"oct\": [256]}");
    }
    g->has_key_types = true;
    json_object_foreach(v, key, val) {
        enum clst_status st;
        if (strcmp(key, "RSA") == 0) {
            st = parse_sizes(val, g->source, "key-types.RSA", CLST_RSA_MIN_BITS, CLST_RSA_MAX_BITS,
                             &g->rsa, err);
        } else if (strcmp(key, "oct") == 0) {
            st = parse_sizes(val, g->source, "key-types.oct", 128, 256, &g->oct, err);
            for (size_t i = 0; st == CLST_OK && i < g->oct.count; i++) {
                if (g->oct.sizes[i] % 64 != 0) {
                    st = field_err(err, g->source, "key-types.oct",
                                   "AES keys are 128, 192 or 256 bits (got %" PRId64 ")",
                                   g->oct.sizes[i]);
                }
            }
        } else if (strcmp(key, "EC") == 0) {
            size_t i;
            const json_t *e;
            if (!json_is_array(val) || json_array_size(val) == 0) {
                return field_err(err, g->source, "key-types.EC",
                                 "must be a non-empty array of curve names (\"P-256\", "
                                 "\"P-384\", \"P-521\")");
            }
            g->ec_allowed = true;
            json_array_foreach(val, i, e) {
                enum clst_curve c;
                if (!json_is_string(e) || clst_curve_parse(json_string_value(e), &c) != CLST_OK ||
                    (size_t)c >= sizeof g->ec_curves / sizeof g->ec_curves[0]) {
                    return field_err(err, g->source, "key-types.EC",
                                     "element %zu must be \"P-256\", \"P-384\" or \"P-521\"", i);
                }
                g->ec_curves[c] = true;
            }
            st = CLST_OK;
        } else {
            const char *hint = "";
            if (strncmp(key, "RSA-", 4) == 0 || strncmp(key, "EC-", 3) == 0 ||
                strncmp(key, "oct-", 4) == 0) {
                hint = " (the -HSM types are not kept by Cloister; name the software type)";
            }
            return field_err(err, g->source, CLST_GOV_RULE_KEY_TYPES,
                             "unknown key type '%.40s'; use \"RSA\", \"EC\" or \"oct\"%s", key,
                             hint);
        }
        if (st != CLST_OK) {
            return st;
        }
    }
    return CLST_OK;
}

static enum clst_status
parse_tags(struct clst_vault_governance *g, const json_t *v, struct clst_err *err)
{
    size_t i;
    const json_t *e;
    if (!json_is_array(v) || json_array_size(v) == 0) {
        return field_err(err, g->source, CLST_GOV_RULE_REQUIRED_TAGS,
                         "must be a non-empty array of tag names, e.g. [\"owner\"]");
    }
    if (json_array_size(v) > CLST_GOV_TAGS_MAX) {
        return field_err(err, g->source, CLST_GOV_RULE_REQUIRED_TAGS,
                         "lists more than %d tags (an object holds at most %d)", CLST_GOV_TAGS_MAX,
                         CLST_VAULT_TAG_COUNT_MAX);
    }
    json_array_foreach(v, i, e) {
        const char *s = json_is_string(e) ? json_string_value(e) : NULL;
        if (s == NULL || s[0] == '\0' || strlen(s) > CLST_VAULT_TAG_NAME_MAX) {
            return field_err(err, g->source, CLST_GOV_RULE_REQUIRED_TAGS,
                             "element %zu must be a tag name of 1..%d characters", i,
                             CLST_VAULT_TAG_NAME_MAX);
        }
        for (size_t j = 0; j < g->tag_count; j++) {
            if (strcmp(g->tags[j], s) == 0) {
                return field_err(err, g->source, CLST_GOV_RULE_REQUIRED_TAGS,
                                 "tag '%.60s' is listed twice", s);
            }
        }
        if ((g->tags[g->tag_count] = strdup(s)) == NULL) {
            return clst_err_set(err, CLST_E_NOMEM, "out of memory reading governance rules");
        }
        g->tag_count++;
    }
    return CLST_OK;
}

static enum clst_status
parse_doc(struct clst_vault_governance *g, json_t *doc, struct clst_err *err)
{
    const char *key;
    json_t *v;
    enum clst_status st = CLST_OK;
    json_object_foreach(doc, key, v) {
        if (strcmp(key, "version") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) != CLST_GOV_FILE_VERSION) {
                return field_err(err, g->source, "version", "must be %d (the only format there is)",
                                 CLST_GOV_FILE_VERSION);
            }
        } else if (strcmp(key, "description") == 0) {
            if (!json_is_string(v)) {
                return field_err(err, g->source, "description", "must be a string");
            }
        } else if (strcmp(key, CLST_GOV_RULE_KEY_TYPES) == 0) {
            st = parse_key_types(g, v, err);
        } else if (strcmp(key, CLST_GOV_RULE_MAX_VALIDITY) == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > CLST_GOV_MAX_VALIDITY_DAYS_MAX) {
                char got[32] = "not an integer";
                if (json_is_integer(v)) {
                    snprintf(got, sizeof got, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                }
                return field_err(err, g->source, key, "must be an integer 1..%d (got %s)",
                                 CLST_GOV_MAX_VALIDITY_DAYS_MAX, got);
            }
            g->max_validity_days = (int64_t)json_integer_value(v);
        } else if (strcmp(key, CLST_GOV_RULE_REQUIRE_EXPIRY) == 0) {
            st = parse_bool(v, g->source, key, &g->require_expiry, err);
        } else if (strcmp(key, CLST_GOV_RULE_EXPORTABLE_POLICY) == 0) {
            st = parse_bool(v, g->source, key, &g->exportable_needs_immutable, err);
        } else if (strcmp(key, CLST_GOV_RULE_NON_DEBUG) == 0) {
            st = parse_bool(v, g->source, key, &g->non_debug, err);
        } else if (strcmp(key, CLST_GOV_RULE_REQUIRED_TAGS) == 0) {
            st = parse_tags(g, v, err);
        } else {
            return field_err(err, g->source, key,
                             "unknown field; the rules are key-types, max-validity-days, "
                             "require-expiry, exportable-needs-immutable-policy, "
                             "release-policy-non-debug, required-tags");
        }
        if (st != CLST_OK) {
            return st;
        }
    }
    return CLST_OK;
}

enum clst_status
clst_vault_governance_parse(const char *text, size_t size, const char *source,
                            struct clst_vault_governance **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_MALFORMED;
    struct clst_vault_governance *g = NULL;
    json_t *doc = NULL;
    json_error_t jerr;

    if (text == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_vault_governance_parse: text and out needed");
    }
    if (source == NULL) {
        source = "(text)";
    }
    if (size > CLST_GOV_FILE_MAX) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "governance rules %.200s: the file is larger than %d bytes", source,
                            CLST_GOV_FILE_MAX);
    }
    g = calloc(1, sizeof *g);
    if (g == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory reading governance rules");
    }
    snprintf(g->source, sizeof g->source, "%s", source);
    doc = json_loadb(text, size, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "governance rules %s: not valid JSON at line %d column %d: %.80s; "
                          "fix the file",
                          g->source, jerr.line, jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(doc)) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "governance rules %s: the file must hold one JSON object of rules",
                          g->source);
        goto out;
    }
    rc = parse_doc(g, doc, err);
    if (rc != CLST_OK) {
        goto out;
    }
    *out = g;
    g = NULL;
    rc = CLST_OK;
out:
    json_decref(doc);
    clst_vault_governance_free(g);
    return rc;
}

enum clst_status
clst_vault_governance_load(const char *path, struct clst_vault_governance **out,
                           struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = NULL;

    if (path == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_vault_governance_load: path and out needed");
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        return clst_err_set(err, CLST_E_IO, "governance rules %.200s: cannot open: %s", path,
                            strerror(errno));
    }
    buf = malloc(CLST_GOV_FILE_MAX + 1);
    if (buf == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory reading governance rules");
        goto out;
    }
    n = fread(buf, 1, CLST_GOV_FILE_MAX + 1, f);
    if (ferror(f)) {
        rc = clst_err_set(err, CLST_E_IO, "governance rules %.200s: cannot read the file", path);
        goto out;
    }
    if (n > CLST_GOV_FILE_MAX) {
        rc = clst_err_set(err, CLST_E_LIMIT,
                          "governance rules %.200s: the file is larger than %d bytes", path,
                          CLST_GOV_FILE_MAX);
        goto out;
    }
    rc = clst_vault_governance_parse(buf, n, path, out, err);
out:
    free(buf);
    fclose(f);
    return rc;
}

void
clst_vault_governance_free(struct clst_vault_governance *g)
{
    if (g == NULL) {
        return;
    }
    for (size_t i = 0; i < g->tag_count; i++) {
        free(g->tags[i]);
    }
    free(g);
}

size_t
clst_vault_governance_rule_count(const struct clst_vault_governance *g)
{
    if (g == NULL) {
        return 0;
    }
    return (size_t)g->has_key_types + (size_t)(g->max_validity_days > 0) +
           (size_t)g->require_expiry + (size_t)g->exportable_needs_immutable +
           (size_t)g->non_debug + (size_t)(g->tag_count > 0);
}

int64_t
clst_gov_max_validity_seconds(const struct clst_vault_governance *g)
{
    return g != NULL ? g->max_validity_days * SECONDS_PER_DAY : 0;
}

bool
clst_gov_requires_expiry(const struct clst_vault_governance *g)
{
    return g != NULL && g->require_expiry;
}

/* ---- the release-policy analysis ------------------------------------------------------------ */

struct tee_type {
    const char *type;
    const char *debug_claim;  /* NULL: the type has no debug state in its claims */
    const char *debug_claim2; /* another name of the same bit, or NULL */
};

/* The attestation types Cloister's verifiers produce and their debug claims (src/evidence). */
static const struct tee_type TEE_TYPES[] = {
    {"sim", "x-cloister-sim-is-debuggable", NULL},
    {"sevsnpvm", "x-ms-sevsnpvm-is-debuggable", NULL},
    {"tdxvm", "tdx_td_attributes_debug", "tdx_is_debuggable"},
    {"sgx", "x-ms-sgx-is-debuggable", NULL},
    {"nitro", "aws-nitro-is-debuggable", NULL},
    {"tpm", NULL, NULL},
    {"azurevm", NULL, NULL},
};
#define TEE_TYPE_COUNT (sizeof TEE_TYPES / sizeof TEE_TYPES[0])

#define TYPE_CLAIM     "x-ms-attestation-type"
#define ISO_PREFIX     "x-ms-isolation-tee."
#define ISO_TYPE_CLAIM ISO_PREFIX TYPE_CLAIM

/* Sentinels for a scenario's type: a string no literal equals, and (isolation tee) absent. */
static const char OTHER_TYPE[] = "<any other type>";
static const char ABSENT_TYPE[] = "<absent>";

struct scenario {
    const char *top; /* a type string, OTHER_TYPE */
    const char *iso; /* a type string, OTHER_TYPE or ABSENT_TYPE */
};

/* The type's debug claim (its first name), or NULL. */
static const char *
debug_claim_of(const char *type)
{
    if (type == OTHER_TYPE || type == ABSENT_TYPE) {
        return NULL;
    }
    for (size_t i = 0; i < TEE_TYPE_COUNT; i++) {
        if (strcmp(TEE_TYPES[i].type, type) == 0) {
            return TEE_TYPES[i].debug_claim;
        }
    }
    return NULL;
}

/* Whether `claim` is a debug claim of `type`, the type's claims being under `prefix`. */
static bool
is_debug_claim(const char *type, const char *claim, const char *prefix)
{
    size_t n = strlen(prefix);
    if (type == OTHER_TYPE || type == ABSENT_TYPE || strncmp(claim, prefix, n) != 0) {
        return false;
    }
    claim += n;
    for (size_t i = 0; i < TEE_TYPE_COUNT; i++) {
        const struct tee_type *t = &TEE_TYPES[i];
        if (strcmp(t->type, type) == 0) {
            return (t->debug_claim != NULL && strcmp(claim, t->debug_claim) == 0) ||
                   (t->debug_claim2 != NULL && strcmp(claim, t->debug_claim2) == 0);
        }
    }
    return false;
}

enum val_kind { V_UNKNOWN, V_MISSING, V_STRING, V_OTHER_STRING, V_TRUE };

static enum val_kind
value_of(const char *claim, const struct scenario *s, const char **out_str)
{
    *out_str = NULL;
    if (strcmp(claim, TYPE_CLAIM) == 0) {
        if (s->top == OTHER_TYPE) {
            return V_OTHER_STRING;
        }
        *out_str = s->top;
        return V_STRING;
    }
    if (strcmp(claim, ISO_TYPE_CLAIM) == 0) {
        if (s->iso == ABSENT_TYPE) {
            return V_MISSING;
        }
        if (s->iso == OTHER_TYPE) {
            return V_OTHER_STRING;
        }
        *out_str = s->iso;
        return V_STRING;
    }
    if (is_debug_claim(s->top, claim, "") || is_debug_claim(s->iso, claim, ISO_PREFIX)) {
        return V_TRUE;
    }
    /* Anything else (other TEEs' debug claims included: a token from another issuer may carry
     * them) may have any value. */
    return V_UNKNOWN;
}

/* The operators of the grammar (docs/policy.md); a parsed condition has exactly one. */
static const char *const OPS[] = {"equals",  "notEquals",       "less",  "lessOrEquals",
                                  "greater", "greaterOrEquals", "exists"};
#define OP_COUNT (sizeof OPS / sizeof OPS[0])

/* Can the condition {"claim": claim, op: operand} hold in scenario s? */
static bool
cond_possible(const char *claim, const char *op, const json_t *operand, const struct scenario *s)
{
    const char *str = NULL;
    enum val_kind k = value_of(claim, s, &str);
    bool exists = strcmp(op, "exists") == 0;
    bool eq = strcmp(op, "equals") == 0;
    bool ne = strcmp(op, "notEquals") == 0;

    switch (k) {
    case V_UNKNOWN:
        return true;
    case V_MISSING:
        return exists && json_is_false(operand);
    case V_STRING:
        if (exists) {
            return json_is_true(operand);
        }
        if (!json_is_string(operand)) {
            return false; /* type mismatch: false whatever the operator */
        }
        if (eq) {
            return strcmp(json_string_value(operand), str) == 0;
        }
        if (ne) {
            return strcmp(json_string_value(operand), str) != 0;
        }
        return false;
    case V_OTHER_STRING:
        if (exists) {
            return json_is_true(operand);
        }
        return ne && json_is_string(operand);
    case V_TRUE:
        if (exists) {
            return json_is_true(operand);
        }
        if (eq) {
            return json_is_true(operand);
        }
        if (ne) {
            return json_is_false(operand);
        }
        return false;
    }
    return true;
}

/* Can the node (a condition, a group, an authority member) hold in scenario s? The document has
 * passed clst_policy_parse, so its shape is known; anything unexpected counts as "can hold". */
static bool
node_possible(const json_t *node, const struct scenario *s)
{
    const json_t *claim = json_object_get(node, "claim");
    const json_t *all = json_object_get(node, "allOf");
    const json_t *any = json_object_get(node, "anyOf");
    size_t i;
    const json_t *e;

    if (json_is_string(claim)) {
        for (size_t k = 0; k < OP_COUNT; k++) {
            const json_t *val = json_object_get(node, OPS[k]);
            if (val != NULL) {
                return cond_possible(json_string_value(claim), OPS[k], val, s);
            }
        }
        return true;
    }
    if (json_is_array(all)) {
        json_array_foreach(all, i, e) {
            if (!node_possible(e, s)) {
                return false;
            }
        }
        return true;
    }
    if (json_is_array(any)) {
        json_array_foreach(any, i, e) {
            if (node_possible(e, s)) {
                return true;
            }
        }
        return false;
    }
    return true;
}

struct literals {
    const char *top[TYPE_LITERALS_MAX];
    size_t top_count;
    const char *iso[TYPE_LITERALS_MAX];
    size_t iso_count;
    bool overflow;
};

static void
add_literal(const char **list, size_t *count, bool *overflow, const char *s)
{
    if (debug_claim_of(s) != NULL) {
        return;
    }
    for (size_t i = 0; i < TEE_TYPE_COUNT; i++) {
        if (strcmp(TEE_TYPES[i].type, s) == 0) {
            return;
        }
    }
    for (size_t i = 0; i < *count; i++) {
        if (strcmp(list[i], s) == 0) {
            return;
        }
    }
    if (*count >= TYPE_LITERALS_MAX) {
        *overflow = true;
        return;
    }
    list[(*count)++] = s;
}

/* The type strings the policy compares the type claims with (other than the known types). */
static void
collect_literals(const json_t *node, struct literals *lit)
{
    const json_t *claim = json_object_get(node, "claim");
    size_t i;
    const json_t *e;
    if (json_is_string(claim)) {
        const char *c = json_string_value(claim);
        for (size_t k = 0; k < OP_COUNT; k++) {
            const json_t *val = json_object_get(node, OPS[k]);
            if (!json_is_string(val)) {
                continue;
            }
            if (strcmp(c, TYPE_CLAIM) == 0) {
                add_literal(lit->top, &lit->top_count, &lit->overflow, json_string_value(val));
            } else if (strcmp(c, ISO_TYPE_CLAIM) == 0) {
                add_literal(lit->iso, &lit->iso_count, &lit->overflow, json_string_value(val));
            }
        }
        return;
    }
    const char *groups[] = {"allOf", "anyOf"};
    for (size_t g = 0; g < 2; g++) {
        const json_t *arr = json_object_get(node, groups[g]);
        if (json_is_array(arr)) {
            json_array_foreach(arr, i, e) {
                collect_literals(e, lit);
            }
        }
    }
}

/* A description of an admitted token kind and what would exclude it. */
static void
describe(const struct scenario *s, char *out, size_t cap)
{
    const char *td = debug_claim_of(s->top);
    const char *id = debug_claim_of(s->iso);
    if (td != NULL) {
        snprintf(out, cap, "'%.40s' tokens with '%s' true (add {\"claim\": \"%s\", \"equals\": "
                           "false})",
                 s->top, td, td);
    } else if (id != NULL) {
        snprintf(out, cap, "tokens whose isolation TEE is '%.40s' with '%s%s' true (add "
                           "{\"claim\": \"%s%s\", \"equals\": false})",
                 s->iso, ISO_PREFIX, id, ISO_PREFIX, id);
    } else if (s->top == OTHER_TYPE) {
        snprintf(out, cap, "tokens of any attestation type (pin '%s' to a TEE type)", TYPE_CLAIM);
    } else {
        snprintf(out, cap, "'%.40s' tokens, which carry no debug claim (admit only sim, "
                           "sevsnpvm, tdxvm, sgx or nitro, with its debug claim pinned to false)",
                 s->top);
    }
}

bool
clst_gov_policy_non_debug(const char *policy_text, char *why, size_t why_size)
{
    struct clst_policy *p = NULL;
    struct clst_err perr = {0};
    struct literals lit;
    const char *tops[TEE_TYPE_COUNT + TYPE_LITERALS_MAX + 1];
    const char *isos[TEE_TYPE_COUNT + TYPE_LITERALS_MAX + 2];
    size_t ntop = 0, niso = 0, found = 0;
    bool ok = false;

    if (why_size > 0) {
        why[0] = '\0';
    }
    if (policy_text == NULL) {
        return true; /* no policy: nothing can be released */
    }
    if (clst_policy_parse(policy_text, strlen(policy_text), CLST_POLICY_RELEASE, &p, &perr) !=
        CLST_OK) {
        snprintf(why, why_size, "the release policy does not parse (%.150s); set a valid one",
                 perr.msg);
        return false;
    }
    const json_t *doc = clst_policy_json(p);
    memset(&lit, 0, sizeof lit);
    collect_literals(doc, &lit);
    if (lit.overflow) {
        snprintf(why, why_size,
                 "the release policy names more than %d attestation types; split it",
                 TYPE_LITERALS_MAX);
        goto out;
    }
    /* "Any other type" and "absent" first: when they are admitted, that is the first thing to
     * say. */
    tops[ntop++] = OTHER_TYPE;
    isos[niso++] = ABSENT_TYPE;
    isos[niso++] = OTHER_TYPE;
    for (size_t i = 0; i < TEE_TYPE_COUNT; i++) {
        tops[ntop++] = TEE_TYPES[i].type;
        isos[niso++] = TEE_TYPES[i].type;
    }
    for (size_t i = 0; i < lit.top_count; i++) {
        tops[ntop++] = lit.top[i];
    }
    for (size_t i = 0; i < lit.iso_count; i++) {
        isos[niso++] = lit.iso[i];
    }

    /* One description per top-level type (its first admitted isolation-TEE kind), at most
     * three in the message. */
    char list[CLST_GOV_DETAIL_MAX] = "";
    size_t used = 0, shown = 0;
    for (size_t t = 0; t < ntop; t++) {
        for (size_t u = 0; u < niso; u++) {
            struct scenario s = {tops[t], isos[u]};
            /* The root: one of the authority members holds. */
            if (!node_possible(doc, &s)) {
                continue;
            }
            found++;
            if (shown < 3) {
                char d[200];
                describe(&s, d, sizeof d);
                int n = snprintf(list + used, sizeof list - used, "%s%s", shown > 0 ? "; " : "",
                                 d);
                if (n > 0 && (size_t)n < sizeof list - used) {
                    used += (size_t)n;
                    shown++;
                } else {
                    list[used] = '\0';
                    shown = 3;
                }
            }
            break;
        }
    }
    if (found == 0) {
        ok = true;
        goto out;
    }
    snprintf(why, why_size,
             "the release policy can release the key to a debuggable or unidentified TEE: %s%s",
             list, found > shown ? "; and more" : "");
out:
    clst_policy_free(p);
    return ok;
}

/* ---- checks of one object version ----------------------------------------------------------- */

unsigned
clst_gov_rules_for_update(unsigned fields)
{
    unsigned r = 0;
    if (fields & (CLST_VAULT_UPDATE_NBF | CLST_VAULT_UPDATE_EXP)) {
        r |= CLST_GOV_R_MAX_VALIDITY | CLST_GOV_R_REQUIRE_EXPIRY;
    }
    if (fields & CLST_VAULT_UPDATE_TAGS) {
        r |= CLST_GOV_R_REQUIRED_TAGS;
    }
    if (fields & (CLST_VAULT_UPDATE_POLICY | CLST_VAULT_UPDATE_EXPORTABLE)) {
        r |= CLST_GOV_R_EXPORTABLE | CLST_GOV_R_NON_DEBUG;
    }
    return r;
}

static struct clst_gov_violation *
add(struct clst_gov_violation *out, size_t *count, const char *rule)
{
    struct clst_gov_violation *v = &out[*count];
    (*count)++;
    v->rule = rule;
    v->detail[0] = '\0';
    return v;
}

static void
list_sizes(const struct size_list *l, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < l->count && used < cap; i++) {
        int n = snprintf(out + used, cap - used, "%s%" PRId64, i > 0 ? ", " : "", l->sizes[i]);
        if (n < 0) {
            break;
        }
        used += (size_t)n;
    }
}

static void
allowed_types(const struct clst_vault_governance *g, char *out, size_t cap)
{
    size_t used = 0;
    char sizes[128];
    out[0] = '\0';
    if (g->rsa.allowed) {
        list_sizes(&g->rsa, sizes, sizeof sizes);
        int n = snprintf(out + used, cap - used, "RSA %s", sizes);
        used += n > 0 ? (size_t)n : 0;
    }
    if (g->ec_allowed && used < cap) {
        int n = snprintf(out + used, cap - used, "%sEC", used > 0 ? "; " : "");
        used += n > 0 ? (size_t)n : 0;
        const char *sep = " ";
        for (int c = CLST_CURVE_P256; c <= CLST_CURVE_P521 && used < cap; c++) {
            if (g->ec_curves[c]) {
                n = snprintf(out + used, cap - used, "%s%s", sep,
                             clst_curve_name((enum clst_curve)c));
                used += n > 0 ? (size_t)n : 0;
                sep = ", ";
            }
        }
    }
    if (g->oct.allowed && used < cap) {
        list_sizes(&g->oct, sizes, sizeof sizes);
        int n = snprintf(out + used, cap - used, "%soct %s", used > 0 ? "; " : "", sizes);
        (void)n;
    }
}

static bool
size_listed(const struct size_list *l, int64_t bits)
{
    for (size_t i = 0; i < l->count; i++) {
        if (l->sizes[i] == bits) {
            return true;
        }
    }
    return false;
}

static void
check_key_type(const struct clst_vault_governance *g, const struct clst_vault_object *obj,
               const struct clst_vault_keymat_spec *spec, struct clst_gov_violation *out,
               size_t *count)
{
    struct clst_vault_keymat_spec stored;
    char allowed[200];
    bool ok = false;
    char what[64] = "";

    if (spec == NULL) {
        struct clst_err e = {0};
        if (obj->public_data == NULL ||
            clst_vault_keymat_spec_from_public(obj->public_data, obj->public_size, &stored, &e) !=
                CLST_OK) {
            snprintf(add(out, count, CLST_GOV_RULE_KEY_TYPES)->detail, CLST_GOV_DETAIL_MAX,
                     "the stored key's type and size cannot be read (%.120s)", e.msg);
            return;
        }
        spec = &stored;
    }
    switch (spec->type) {
    case CLST_KEYMAT_RSA:
        ok = size_listed(&g->rsa, spec->bits);
        snprintf(what, sizeof what, "RSA %d-bit keys", spec->bits);
        break;
    case CLST_KEYMAT_EC:
        ok = g->ec_allowed && (size_t)spec->curve < sizeof g->ec_curves / sizeof g->ec_curves[0] &&
             g->ec_curves[spec->curve];
        snprintf(what, sizeof what, "EC keys on %s", clst_curve_name(spec->curve) != NULL
                                                         ? clst_curve_name(spec->curve)
                                                         : "an unknown curve");
        break;
    case CLST_KEYMAT_OCT:
        ok = size_listed(&g->oct, spec->bits);
        snprintf(what, sizeof what, "oct (AES) %d-bit keys", spec->bits);
        break;
    default:
        snprintf(what, sizeof what, "keys of type '%s'", obj->kty);
        break;
    }
    if (ok) {
        return;
    }
    allowed_types(g, allowed, sizeof allowed);
    snprintf(add(out, count, CLST_GOV_RULE_KEY_TYPES)->detail, CLST_GOV_DETAIL_MAX,
             "%s are not allowed; use one of: %s", what,
             allowed[0] != '\0' ? allowed : "(no key type is allowed)");
}

/* True when the tags text (canonical JSON object) has a member `name`. */
static bool
has_tag(const json_t *tags, const char *name)
{
    return tags != NULL && json_object_get(tags, name) != NULL;
}

size_t
clst_gov_check(const struct clst_vault_governance *g, const struct clst_vault_object *obj,
               const struct clst_vault_keymat_spec *spec, int64_t start, unsigned rules,
               struct clst_gov_violation out[static CLST_GOV_RULE_COUNT])
{
    size_t count = 0;
    bool key = obj->kind == CLST_VAULT_KIND_KEY;
    const char *what = key ? "key" : "secret";

    if (g == NULL) {
        return 0;
    }
    if (key && g->has_key_types && (rules & CLST_GOV_R_KEY_TYPES)) {
        check_key_type(g, obj, spec, out, &count);
    }
    if (g->require_expiry && (rules & CLST_GOV_R_REQUIRE_EXPIRY) && obj->attrs.exp == 0) {
        snprintf(add(out, &count, CLST_GOV_RULE_REQUIRE_EXPIRY)->detail, CLST_GOV_DETAIL_MAX,
                 "the %s has no expiry; set attributes.exp (Unix seconds)%s", what,
                 g->max_validity_days > 0 ? " within the maximum validity" : "");
    }
    if (g->max_validity_days > 0 && (rules & CLST_GOV_R_MAX_VALIDITY) && obj->attrs.exp != 0) {
        int64_t from = obj->attrs.nbf != 0 ? obj->attrs.nbf : start;
        int64_t max = g->max_validity_days * SECONDS_PER_DAY;
        if (obj->attrs.exp - from > max) {
            int64_t span = obj->attrs.exp - from;
            snprintf(add(out, &count, CLST_GOV_RULE_MAX_VALIDITY)->detail, CLST_GOV_DETAIL_MAX,
                     "the %s is valid for %" PRId64 " days%s (exp %" PRId64 " - %s %" PRId64
                     "), more than the %" PRId64 " days allowed; set exp to at most %" PRId64,
                     what, span / SECONDS_PER_DAY, span % SECONDS_PER_DAY != 0 ? " and more" : "",
                     obj->attrs.exp, obj->attrs.nbf != 0 ? "nbf" : "created", from,
                     g->max_validity_days, from + max);
        }
    }
    if (key && g->exportable_needs_immutable && (rules & CLST_GOV_R_EXPORTABLE) &&
        obj->attrs.exportable && (obj->release_policy == NULL || !obj->policy_immutable)) {
        snprintf(add(out, &count, CLST_GOV_RULE_EXPORTABLE_POLICY)->detail, CLST_GOV_DETAIL_MAX,
                 "the key is exportable but its release policy is %s; set release_policy with "
                 "\"immutable\": true",
                 obj->release_policy == NULL ? "missing" : "mutable");
    }
    if (key && g->non_debug && (rules & CLST_GOV_R_NON_DEBUG) && obj->release_policy != NULL) {
        char why[CLST_GOV_DETAIL_MAX];
        if (!clst_gov_policy_non_debug(obj->release_policy, why, sizeof why)) {
            snprintf(add(out, &count, CLST_GOV_RULE_NON_DEBUG)->detail, CLST_GOV_DETAIL_MAX, "%s",
                     why);
        }
    }
    if (g->tag_count > 0 && (rules & CLST_GOV_R_REQUIRED_TAGS)) {
        json_t *tags = obj->tags != NULL ? json_loads(obj->tags, 0, NULL) : NULL;
        char missing[256] = "";
        size_t used = 0, n_missing = 0;
        for (size_t i = 0; i < g->tag_count; i++) {
            if (has_tag(tags, g->tags[i])) {
                continue;
            }
            n_missing++;
            if (used < sizeof missing) {
                int n = snprintf(missing + used, sizeof missing - used, "%s'%.60s'",
                                 used > 0 ? ", " : "", g->tags[i]);
                used += n > 0 ? (size_t)n : 0;
            }
        }
        json_decref(tags);
        if (n_missing > 0) {
            snprintf(add(out, &count, CLST_GOV_RULE_REQUIRED_TAGS)->detail, CLST_GOV_DETAIL_MAX,
                     "the %s lacks the required tag%s %s; add %s to its tags", what,
                     n_missing > 1 ? "s" : "", missing, n_missing > 1 ? "them" : "it");
        }
    }
    return count;
}

enum clst_status
clst_gov_reply(struct clst_vault_rctx *rc, const struct clst_gov_violation *v, size_t count)
{
    struct clst_buf msg;
    enum clst_status st;
    clst_buf_init(&msg, 8192);
    st = clst_buf_append_str(&msg, "the vault's governance rules refuse this request:");
    for (size_t i = 0; st == CLST_OK && i < count; i++) {
        st = clst_buf_appendf(&msg, "%s rule '%s': %s", i > 0 ? ";" : "", v[i].rule,
                              v[i].detail);
    }
    if (st == CLST_OK) {
        st = clst_buf_terminate(&msg);
    }
    if (st == CLST_OK) {
        clst_log_info("vault: request %s refused by governance: %s",
                      rc->req != NULL ? clst_http_request_id(rc->req) : "-",
                      (const char *)msg.data);
        clst_http_response_error(rc->resp, 403, CLST_GOV_HTTP_CODE, "%s", (const char *)msg.data);
    }
    clst_buf_cleanup(&msg);
    return st;
}

/* ---- the check of a whole store ------------------------------------------------------------- */

struct walk {
    const struct clst_vault_governance *g;
    struct clst_vault_store *store;
    void (*report)(void *ctx, const struct clst_vault_governance_finding *f);
    void *ctx;
    size_t versions;
    size_t findings;
};

static void
check_version(struct walk *w, const struct clst_vault_object *obj)
{
    struct clst_gov_violation v[CLST_GOV_RULE_COUNT];
    size_t n = clst_gov_check(w->g, obj, NULL, obj->attrs.created, CLST_GOV_R_ALL, v);
    w->versions++;
    for (size_t i = 0; i < n; i++) {
        struct clst_vault_governance_finding f = {
            .kind = obj->kind,
            .name = obj->name,
            .version = obj->version,
            .rule = v[i].rule,
            .detail = v[i].detail,
        };
        w->findings++;
        if (w->report != NULL) {
            w->report(w->ctx, &f);
        }
    }
}

static enum clst_status
walk_versions(struct walk *w, enum clst_vault_kind kind, const char *name, struct clst_err *err)
{
    enum clst_status st = CLST_OK;
    char *token = NULL;
    do {
        struct clst_vault_object_list page = {0};
        st = clst_vault_store_list_versions(w->store, kind, name, 0, token, &page, err);
        free(token);
        token = NULL;
        if (st == CLST_E_NOTFOUND) {
            /* Deleted since it was listed: nothing to check. */
            clst_err_clear(err);
            return CLST_OK;
        }
        if (st != CLST_OK) {
            return clst_err_prefix(err, "listing the versions of %s '%s'",
                                   clst_vault_kind_name(kind), name);
        }
        for (size_t i = 0; i < page.count; i++) {
            check_version(w, &page.items[i]);
        }
        token = page.next;
        page.next = NULL;
        clst_vault_object_list_cleanup(&page);
    } while (token != NULL);
    return st;
}

static enum clst_status
walk_kind(struct walk *w, enum clst_vault_kind kind, struct clst_err *err)
{
    enum clst_status st = CLST_OK;
    char *token = NULL;
    do {
        struct clst_vault_object_list page = {0};
        st = clst_vault_store_list(w->store, kind, 0, token, &page, err);
        free(token);
        token = NULL;
        if (st != CLST_OK) {
            return clst_err_prefix(err, "listing the %ss", clst_vault_kind_name(kind));
        }
        for (size_t i = 0; st == CLST_OK && i < page.count; i++) {
            st = walk_versions(w, kind, page.items[i].name, err);
        }
        token = page.next;
        page.next = NULL;
        clst_vault_object_list_cleanup(&page);
    } while (st == CLST_OK && token != NULL);
    free(token);
    return st;
}

enum clst_status
clst_vault_governance_check_store(
    const struct clst_vault_governance *g, struct clst_vault_store *store,
    void (*report)(void *ctx, const struct clst_vault_governance_finding *finding), void *ctx,
    size_t *out_versions, size_t *out_findings, struct clst_err *err)
{
    struct walk w = {g, store, report, ctx, 0, 0};
    enum clst_status st;
    if (g == NULL || store == NULL) {
        return clst_err_set(err, CLST_E_INVAL,
                            "clst_vault_governance_check_store: rules and store needed");
    }
    st = walk_kind(&w, CLST_VAULT_KIND_KEY, err);
    if (st == CLST_OK) {
        st = walk_kind(&w, CLST_VAULT_KIND_SECRET, err);
    }
    if (st != CLST_OK) {
        return st;
    }
    if (out_versions != NULL) {
        *out_versions = w.versions;
    }
    if (out_findings != NULL) {
        *out_findings = w.findings;
    }
    return CLST_OK;
}
