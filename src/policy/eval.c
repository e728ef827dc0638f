/*
 * Policy evaluation: claims (a JSON object) and the token's issuer in, a decision and the
 * verdict of every node out. Comparisons are typed: a string never equals a boolean or a number,
 * numbers compare as numbers (integers exactly, an integer against a real exactly too), and a
 * claim of another type than the operand makes the condition false whatever the operator, so
 * {"notEquals": "true"} can never be satisfied by a boolean true. Claim paths walk JSON objects
 * only ("a.b.c"); arrays cannot be addressed, as in the cloud grammar.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

struct ectx {
    const struct clst_policy *p;
    const json_t *claims;
    const char *issuer; /* NULL: none */
    size_t issuer_size;
    struct clst_policy_result *r;
    enum clst_status rc; /* CLST_E_NOMEM once an allocation failed */
};

enum tclass { T_STRING, T_NUMBER, T_BOOL, T_NULL, T_OBJECT, T_ARRAY };

static enum tclass
tclass(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return T_STRING;
    case JSON_INTEGER:
    case JSON_REAL:
        return T_NUMBER;
    case JSON_TRUE:
    case JSON_FALSE:
        return T_BOOL;
    case JSON_OBJECT:
        return T_OBJECT;
    case JSON_ARRAY:
        return T_ARRAY;
    case JSON_NULL:
        break;
    }
    return T_NULL;
}

/* Compares the integer i with the real d exactly: -1 (i < d), 0, 1 (i > d), 2 (d is NaN). */
static int
int_real_cmp(json_int_t i, double d)
{
    if (isnan(d)) {
        return 2;
    }
    /* 2^63 and -2^63 are exact doubles; beyond them d is outside every int64. */
    if (d >= 9223372036854775808.0) {
        return -1;
    }
    if (d < -9223372036854775808.0) {
        return 1;
    }
    /* In range, the conversion truncates toward zero and is exact back: a double of magnitude
     * >= 2^52 is already an integer, a smaller one's integer part fits in 53 bits. */
    json_int_t t = (json_int_t)d;
    if (i < t) {
        return -1;
    }
    if (i > t) {
        return 1;
    }
    double td = (double)t;
    if (d > td) {
        return -1;
    }
    if (d < td) {
        return 1;
    }
    return 0;
}

/* Numeric comparison of two JSON numbers: -1, 0, 1, or 2 when unordered (NaN). */
static int
num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : (x > y ? 1 : 0);
    }
    if (json_is_real(a) && json_is_real(b)) {
        double x = json_real_value(a), y = json_real_value(b);
        if (isnan(x) || isnan(y)) {
            return 2;
        }
        return x < y ? -1 : (x > y ? 1 : 0);
    }
    if (json_is_integer(a)) {
        return int_real_cmp(json_integer_value(a), json_real_value(b));
    }
    int r = int_real_cmp(json_integer_value(b), json_real_value(a));
    return r == 2 ? 2 : -r;
}

/* Equality of two values of the same class (string, number or boolean). */
static bool
scalar_equal(const json_t *a, const json_t *b)
{
    switch (tclass(a)) {
    case T_STRING: {
        size_t n = json_string_length(a);
        return n == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), n) == 0;
    }
    case T_NUMBER:
        return num_cmp(a, b) == 0;
    case T_BOOL:
        return json_typeof(a) == json_typeof(b);
    default:
        return false;
    }
}

static char *
dup_or_null(struct ectx *c, const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    char *d = strdup(s);
    if (d == NULL) {
        c->rc = CLST_E_NOMEM;
    }
    return d;
}

/*
 * A value the result keeps: scalars are copied; objects and arrays (a claim such as x-ms-runtime
 * may be large, and a policy may name it in many conditions) are shared by reference, so the
 * memory an evaluation takes does not grow with conditions x claim size. jansson's reference
 * counts are atomic, so sharing is safe across threads.
 */
static json_t *
copy_or_null(struct ectx *c, const json_t *v)
{
    if (v == NULL) {
        return NULL;
    }
    if (json_is_object(v) || json_is_array(v)) {
        return json_incref((json_t *)v);
    }
    json_t *d = json_deep_copy(v);
    if (d == NULL) {
        c->rc = CLST_E_NOMEM;
    }
    return d;
}

/* Appends a trace entry for node `n`; SIZE_MAX when out of memory. */
static size_t
trace_add(struct ectx *c, const struct pnode *n)
{
    struct clst_policy_result *r = c->r;
    if (c->rc != CLST_OK) {
        return SIZE_MAX;
    }
    if (r->count == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 16;
        struct rtrace *t = realloc(r->trace, ncap * sizeof(*t));
        if (t == NULL) {
            c->rc = CLST_E_NOMEM;
            return SIZE_MAX;
        }
        r->trace = t;
        r->cap = ncap;
    }
    struct rtrace *t = &r->trace[r->count];
    memset(t, 0, sizeof(*t));
    t->span = 1;
    t->path = dup_or_null(c, n->path);
    t->claim = dup_or_null(c, n->claim);
    t->authority = dup_or_null(c, n->authority);
    t->expected = copy_or_null(c, n->operand);
    t->pub.node = n->kind;
    t->pub.depth = n->depth;
    t->pub.op = n->op;
    /* Counted even when an allocation failed, so clst_policy_result_free releases it. */
    r->count++;
    if (c->rc != CLST_OK) {
        return SIZE_MAX;
    }
    return r->count - 1;
}

/* Points pub's strings and values at what the entry owns (after every change of them). */
static void
trace_publish(struct rtrace *t)
{
    t->pub.path = t->path;
    t->pub.claim = t->claim;
    t->pub.missing_note = t->missing_note;
    t->pub.authority = t->authority;
    t->pub.issuer = t->issuer;
    t->pub.attestation_type = t->att_type;
    t->pub.expected = t->expected;
    t->pub.actual = t->actual;
}

/* "seg0.seg1...segk" into a fresh string. */
static char *
join_prefix(const struct pnode *n, size_t k)
{
    size_t size = 0;
    for (size_t i = 0; i <= k; i++) {
        size += strlen(n->seg[i]) + 1;
    }
    char *s = malloc(size);
    if (s == NULL) {
        return NULL;
    }
    size_t off = 0;
    for (size_t i = 0; i <= k; i++) {
        size_t len = strlen(n->seg[i]);
        memcpy(s + off, n->seg[i], len);
        off += len;
        s[off++] = i < k ? '.' : '\0';
    }
    return s;
}

/* A malloc'ed formatted note; NULL when out of memory. */
static char *note_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
note_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0) {
        return NULL;
    }
    char *s = malloc((size_t)len + 1);
    if (s == NULL) {
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return s;
}

/*
 * Resolves the node's claim path in the claims. Returns the value (borrowed) or NULL when it is
 * missing; then *note may receive why (malloc'ed), e.g. "'x-ms-runtime' is a string, not an
 * object" or "'x-ms-isolation-tee' has no member 'x-ms-attestation-type'".
 */
static const json_t *
resolve(struct ectx *c, const struct pnode *n, char **note)
{
    const json_t *cur = c->claims;
    *note = NULL;
    for (size_t k = 0; k < n->seg_count; k++) {
        const json_t *next = json_is_object(cur) ? json_object_get(cur, n->seg[k]) : NULL;
        if (next != NULL) {
            cur = next;
            continue;
        }
        if (k == 0) {
            return NULL; /* simply absent */
        }
        char *prefix = join_prefix(n, k - 1);
        if (prefix == NULL) {
            c->rc = CLST_E_NOMEM;
            return NULL;
        }
        if (json_is_object(cur)) {
            *note = note_printf("'%s' has no member '%s'", prefix, n->seg[k]);
        } else if (json_is_array(cur)) {
            *note =
                note_printf("'%s' is an array; claim paths cannot address array elements", prefix);
        } else {
            *note = note_printf("'%s' is %s, not an object", prefix, policy_type_article(cur));
        }
        free(prefix);
        if (*note == NULL) {
            c->rc = CLST_E_NOMEM;
        }
        return NULL;
    }
    return cur;
}

/* Evaluates one claim condition (or reference entry) into trace entry ti. */
static bool
eval_claim(struct ectx *c, const struct pnode *n, size_t ti)
{
    char *note = NULL;
    const json_t *actual = resolve(c, n, &note);
    struct rtrace *t = &c->r->trace[ti];
    t->missing_note = note;
    t->actual = copy_or_null(c, actual);
    bool v = false;
    enum clst_policy_outcome o = CLST_POLICY_FAILS;

    if (n->op == CLST_POLICY_OP_EXISTS) {
        bool want = json_is_true(n->operand);
        v = (actual != NULL) == want;
        o = v ? CLST_POLICY_HOLDS : (actual != NULL ? CLST_POLICY_FAILS : CLST_POLICY_MISSING);
    } else if (actual == NULL) {
        o = CLST_POLICY_MISSING;
    } else if (n->op == CLST_POLICY_OP_ONE_OF) {
        bool same_type = false;
        size_t i;
        const json_t *a;
        json_array_foreach(n->operand, i, a) {
            if (tclass(a) == tclass(actual)) {
                same_type = true;
                if (scalar_equal(a, actual)) {
                    v = true;
                }
            }
        }
        o = v ? CLST_POLICY_HOLDS : (same_type ? CLST_POLICY_FAILS : CLST_POLICY_TYPE_MISMATCH);
    } else if (tclass(actual) != tclass(n->operand)) {
        /* Whatever the operator: a notEquals across types must not hold either. */
        o = CLST_POLICY_TYPE_MISMATCH;
    } else if (n->op == CLST_POLICY_OP_EQUALS || n->op == CLST_POLICY_OP_NOT_EQUALS) {
        bool eq = scalar_equal(actual, n->operand);
        v = n->op == CLST_POLICY_OP_EQUALS ? eq : !eq;
        o = v ? CLST_POLICY_HOLDS : CLST_POLICY_FAILS;
    } else {
        int cmp = num_cmp(actual, n->operand); /* both numbers: the parser saw to the operand */
        switch (n->op) {
        case CLST_POLICY_OP_LESS:
            v = cmp == -1;
            break;
        case CLST_POLICY_OP_LESS_OR_EQUALS:
            v = cmp == -1 || cmp == 0;
            break;
        case CLST_POLICY_OP_GREATER:
            v = cmp == 1;
            break;
        case CLST_POLICY_OP_GREATER_OR_EQUALS:
            v = cmp == 1 || cmp == 0;
            break;
        default:
            v = false;
            break;
        }
        o = v ? CLST_POLICY_HOLDS : CLST_POLICY_FAILS;
    }
    t->pub.verdict = v;
    t->pub.outcome = o;
    trace_publish(t);
    return v;
}

/* Exact match after removing one trailing '/' from each side. */
static bool
issuer_matches(const struct ectx *c, const char *authority)
{
    if (c->issuer == NULL) {
        return false;
    }
    size_t a = strlen(authority), i = c->issuer_size;
    if (a > 0 && authority[a - 1] == '/') {
        a--;
    }
    if (i > 0 && c->issuer[i - 1] == '/') {
        i--;
    }
    return a == i && memcmp(authority, c->issuer, a) == 0;
}

static bool eval_node(struct ectx *c, size_t ni);

/* The children of node ni under anyOf (any) or allOf (!any) semantics; evaluates them all. */
static bool
eval_children(struct ectx *c, size_t ni, bool any)
{
    const struct pnode *n = &c->p->nodes[ni];
    bool v = !any;
    for (size_t j = ni + 1; j < ni + n->subtree; j += c->p->nodes[j].subtree) {
        bool cv = eval_node(c, j);
        v = any ? (v || cv) : (v && cv);
    }
    return v;
}

/* Appraisal: the reference values of the claims' attestation type. */
static bool
eval_reference(struct ectx *c, size_t ni, size_t ti)
{
    const struct pnode *n = &c->p->nodes[ni];
    const json_t *type = json_object_get(c->claims, CLST_POLICY_TYPE_CLAIM);
    struct rtrace *t = &c->r->trace[ti];
    t->claim = dup_or_null(c, CLST_POLICY_TYPE_CLAIM);
    t->actual = copy_or_null(c, type);
    if (type == NULL) {
        t->pub.outcome = CLST_POLICY_MISSING;
        return false;
    }
    if (!json_is_string(type)) {
        t->pub.outcome = CLST_POLICY_TYPE_MISMATCH;
        return false;
    }
    const char *ts = json_string_value(type);
    size_t tsize = json_string_length(type);
    t->att_type = dup_or_null(c, ts);
    bool found = false, v = true;
    for (size_t j = ni + 1; j < ni + n->subtree; j++) {
        const struct pnode *e = &c->p->nodes[j];
        if (strlen(e->att_type) != tsize || memcmp(e->att_type, ts, tsize) != 0) {
            continue;
        }
        found = true;
        size_t ej = trace_add(c, e);
        if (ej == SIZE_MAX) {
            return false;
        }
        c->r->trace[ej].att_type = dup_or_null(c, e->att_type);
        v = eval_claim(c, e, ej) && v;
    }
    t = &c->r->trace[ti]; /* the trace may have moved */
    if (!found) {
        t->pub.outcome = CLST_POLICY_NO_REFERENCE;
        return false;
    }
    t->pub.outcome = v ? CLST_POLICY_HOLDS : CLST_POLICY_CHILDREN_FAIL;
    return v;
}

static bool
eval_node(struct ectx *c, size_t ni)
{
    const struct pnode *n = &c->p->nodes[ni];
    size_t ti = trace_add(c, n);
    if (ti == SIZE_MAX) {
        return false;
    }
    bool v = false;
    enum clst_policy_outcome o = CLST_POLICY_CHILDREN_FAIL;
    switch (n->kind) {
    case CLST_POLICY_NODE_CLAIM:
    case CLST_POLICY_NODE_REF_VALUE:
        return eval_claim(c, n, ti);
    case CLST_POLICY_NODE_ROOT:
        /* Release: anyOf over the authorities. Appraisal: reference values and rules. */
        v = eval_children(c, ni, c->p->kind == CLST_POLICY_RELEASE);
        o = v ? CLST_POLICY_HOLDS : CLST_POLICY_CHILDREN_FAIL;
        break;
    case CLST_POLICY_NODE_ANY_OF:
    case CLST_POLICY_NODE_ALL_OF:
        v = eval_children(c, ni, n->kind == CLST_POLICY_NODE_ANY_OF);
        o = v ? CLST_POLICY_HOLDS : CLST_POLICY_CHILDREN_FAIL;
        break;
    case CLST_POLICY_NODE_AUTHORITY: {
        bool match = issuer_matches(c, n->authority);
        c->r->trace[ti].issuer = dup_or_null(c, c->issuer);
        /* The conditions are evaluated even when the issuer differs, for a complete trace. */
        bool cv = eval_children(c, ni, false);
        v = match && cv;
        o = v ? CLST_POLICY_HOLDS
              : (match ? CLST_POLICY_CHILDREN_FAIL : CLST_POLICY_ISSUER_MISMATCH);
        break;
    }
    case CLST_POLICY_NODE_REFERENCE:
        v = eval_reference(c, ni, ti);
        o = c->r->trace[ti].pub.outcome;
        break;
    }
    struct rtrace *t = &c->r->trace[ti];
    t->span = c->r->count - ti;
    t->pub.verdict = v;
    t->pub.outcome = o;
    trace_publish(t);
    return v;
}

/* From trace entry t, follows the first failing child down to the node that explains it. */
static size_t
descend(const struct clst_policy_result *r, size_t t)
{
    for (;;) {
        const struct rtrace *e = &r->trace[t];
        size_t next = SIZE_MAX;
        for (size_t j = t + 1; j < t + e->span; j += r->trace[j].span) {
            if (!r->trace[j].pub.verdict) {
                next = j;
                break;
            }
        }
        /* An authority whose issuer differs explains itself, whatever its conditions did. */
        if (next == SIZE_MAX || e->pub.outcome == CLST_POLICY_ISSUER_MISMATCH) {
            return t;
        }
        t = next;
    }
}

static size_t
find_denial(const struct clst_policy_result *r)
{
    if (r->kind == CLST_POLICY_APPRAISAL) {
        return descend(r, 0);
    }
    /* The first authority that matches the issuer explains the denial; if none matches, the
     * first authority does (its outcome says the issuer is another). */
    for (size_t t = 1; t < r->count; t += r->trace[t].span) {
        if (r->trace[t].pub.outcome != CLST_POLICY_ISSUER_MISMATCH) {
            return descend(r, t);
        }
    }
    return r->count > 1 ? 1 : 0;
}

void
clst_policy_result_free(struct clst_policy_result *result)
{
    if (result == NULL) {
        return;
    }
    for (size_t i = 0; i < result->count; i++) {
        struct rtrace *t = &result->trace[i];
        free(t->path);
        free(t->claim);
        free(t->missing_note);
        free(t->authority);
        free(t->issuer);
        free(t->att_type);
        json_decref(t->expected);
        json_decref(t->actual);
    }
    free(result->trace);
    free(result);
}

enum clst_status
clst_policy_evaluate(const struct clst_policy *policy, const json_t *claims, const char *issuer,
                     struct clst_policy_result **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_policy_result *r = NULL;

    if (policy == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_policy_evaluate: invalid arguments");
    }
    if (!json_is_object(claims)) {
        return clst_err_set(err, CLST_E_INVAL, "the claims must be a JSON object, got %s",
                            claims == NULL ? "nothing" : policy_type_name(claims));
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory evaluating the policy");
        goto out;
    }
    r->kind = policy->kind;
    r->denial = SIZE_MAX;
    memcpy(r->hash_b64, policy->hash_b64, sizeof(r->hash_b64));

    struct ectx c = {policy, claims, NULL, 0, r, CLST_OK};
    if (issuer != NULL) {
        c.issuer = issuer;
        c.issuer_size = strlen(issuer);
    } else {
        const json_t *iss = json_object_get(claims, "iss");
        /* A string with a NUL inside cannot be compared as a C string: no issuer then. */
        if (json_is_string(iss) && strlen(json_string_value(iss)) == json_string_length(iss)) {
            c.issuer = json_string_value(iss);
            c.issuer_size = json_string_length(iss);
        }
    }
    bool allow = eval_node(&c, 0);
    if (c.rc != CLST_OK) {
        rc = clst_err_set(err, c.rc, "out of memory evaluating the policy");
        goto out;
    }
    r->decision = allow ? CLST_POLICY_ALLOW : CLST_POLICY_DENY;
    if (!allow) {
        r->denial = find_denial(r);
    }
    *out = r;
    r = NULL;
    rc = allow ? CLST_OK : CLST_E_DENIED;
    if (!allow) {
        /* The message may reach logs: values redacted there, the result has them. */
        struct clst_buf msg;
        clst_buf_init(&msg, CLST_ERR_MSG_SIZE * 4);
        if (clst_policy_result_summary(*out, CLST_POLICY_REDACT, &msg) == CLST_OK) {
            clst_err_set(err, CLST_E_DENIED, "%s", (const char *)msg.data);
        } else {
            clst_err_set(err, CLST_E_DENIED, "denied by the policy");
        }
        clst_buf_cleanup(&msg);
    }
out:
    clst_policy_result_free(r);
    return rc;
}

enum clst_policy_decision
clst_policy_result_decision(const struct clst_policy_result *result)
{
    return result->decision;
}

size_t
clst_policy_result_trace_count(const struct clst_policy_result *result)
{
    return result->count;
}

const struct clst_policy_trace *
clst_policy_result_trace(const struct clst_policy_result *result, size_t i)
{
    if (i >= result->count) {
        return NULL;
    }
    return &result->trace[i].pub;
}

const struct clst_policy_trace *
clst_policy_result_denial(const struct clst_policy_result *result)
{
    if (result->decision == CLST_POLICY_ALLOW || result->denial >= result->count) {
        return NULL;
    }
    return &result->trace[result->denial].pub;
}

const char *
clst_policy_result_policy_hash(const struct clst_policy_result *result)
{
    return result->hash_b64;
}
