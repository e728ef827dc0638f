/*
 * Renderings of an evaluation result: a one-line summary (logs, error messages), an indented
 * text trace (`cloister policy test`) and JSON (the 403 body, `--json`). Strings that come from
 * tokens or policies are escaped in text so that they cannot forge lines or terminal escapes;
 * values are cut at CLST_POLICY_RENDER_VALUE_MAX bytes in text, and replaced by their type when
 * redacting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

const char *
clst_policy_op_name(enum clst_policy_op op)
{
    switch (op) {
    case CLST_POLICY_OP_EQUALS:
        return "equals";
    case CLST_POLICY_OP_NOT_EQUALS:
        return "notEquals";
    case CLST_POLICY_OP_LESS:
        return "less";
    case CLST_POLICY_OP_LESS_OR_EQUALS:
        return "lessOrEquals";
    case CLST_POLICY_OP_GREATER:
        return "greater";
    case CLST_POLICY_OP_GREATER_OR_EQUALS:
        return "greaterOrEquals";
    case CLST_POLICY_OP_EXISTS:
        return "exists";
    case CLST_POLICY_OP_ONE_OF:
        return "oneOf";
    case CLST_POLICY_OP_NONE:
        break;
    }
    return NULL;
}

const char *
clst_policy_outcome_name(enum clst_policy_outcome outcome)
{
    switch (outcome) {
    case CLST_POLICY_HOLDS:
        return "holds";
    case CLST_POLICY_FAILS:
        return "fails";
    case CLST_POLICY_MISSING:
        return "missing";
    case CLST_POLICY_TYPE_MISMATCH:
        return "type-mismatch";
    case CLST_POLICY_ISSUER_MISMATCH:
        return "issuer-mismatch";
    case CLST_POLICY_NO_REFERENCE:
        return "no-reference";
    case CLST_POLICY_CHILDREN_FAIL:
        return "children-fail";
    }
    return "unknown";
}

const char *
clst_policy_node_name(enum clst_policy_node node)
{
    switch (node) {
    case CLST_POLICY_NODE_ROOT:
        return "root";
    case CLST_POLICY_NODE_AUTHORITY:
        return "authority";
    case CLST_POLICY_NODE_ANY_OF:
        return "anyOf";
    case CLST_POLICY_NODE_ALL_OF:
        return "allOf";
    case CLST_POLICY_NODE_CLAIM:
        return "claim";
    case CLST_POLICY_NODE_REFERENCE:
        return "referenceValues";
    case CLST_POLICY_NODE_REF_VALUE:
        return "referenceValue";
    }
    return "unknown";
}

enum clst_status
policy_append_safe(struct clst_buf *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        enum clst_status rc;
        /* Bytes >= 0x80 too: a UTF-8 bidi override could reorder what a person reads. */
        if (*p < 0x20 || *p >= 0x7f) {
            char e[4] = {'\\', 'x', hex[*p >> 4], hex[*p & 0xf]};
            rc = clst_buf_append(out, e, sizeof(e));
        } else if (*p == '\\') {
            rc = clst_buf_append(out, "\\\\", 2);
        } else {
            rc = clst_buf_append_byte(out, *p);
        }
        if (rc != CLST_OK) {
            return rc;
        }
    }
    return CLST_OK;
}

enum clst_status
policy_append_value(struct clst_buf *out, const json_t *v, bool redact)
{
    if (v == NULL) {
        return clst_buf_append_str(out, "missing");
    }
    if (redact) {
        return clst_buf_appendf(out, "<%s>", policy_type_name(v));
    }
    /* ASCII only (\uXXXX escapes): the same protection as policy_append_safe. */
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    if (text == NULL) {
        return CLST_E_NOMEM;
    }
    size_t n = strlen(text);
    enum clst_status rc;
    if (n > CLST_POLICY_RENDER_VALUE_MAX) {
        rc = clst_buf_append(out, text, CLST_POLICY_RENDER_VALUE_MAX);
        if (rc == CLST_OK) {
            rc = clst_buf_appendf(out, "... (%zu bytes)", n);
        }
    } else {
        rc = clst_buf_append(out, text, n);
    }
    free(text);
    return rc;
}

/* Members directly below trace entry i. */
static size_t
child_count(const struct clst_policy_result *r, size_t i)
{
    size_t n = 0;
    for (size_t j = i + 1; j < i + r->trace[i].span; j += r->trace[j].span) {
        n++;
    }
    return n;
}

/* Appends "'<s>'" with s escaped. */
static enum clst_status
quoted(struct clst_buf *out, const char *s)
{
    enum clst_status rc = clst_buf_append_byte(out, '\'');
    if (rc == CLST_OK) {
        rc = policy_append_safe(out, s);
    }
    if (rc == CLST_OK) {
        rc = clst_buf_append_byte(out, '\'');
    }
    return rc;
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        rc = (expr);                                                                               \
        if (rc != CLST_OK) {                                                                       \
            return rc;                                                                             \
        }                                                                                          \
    } while (0)

/* What the node is: "claim 'x' equals \"y\"", "authority 'https://...'", "allOf (3)". */
static enum clst_status
describe(struct clst_buf *out, const struct clst_policy_result *r, size_t i, bool redact)
{
    const struct clst_policy_trace *t = &r->trace[i].pub;
    enum clst_status rc = CLST_OK;
    switch (t->node) {
    case CLST_POLICY_NODE_ROOT:
        if (r->kind == CLST_POLICY_RELEASE) {
            TRY(clst_buf_appendf(out, "release policy: anyOf over %zu authorit%s",
                                 child_count(r, i), child_count(r, i) == 1 ? "y" : "ies"));
        } else {
            TRY(clst_buf_append_str(out, "appraisal policy: all of"));
            for (size_t j = i + 1; j < i + r->trace[i].span; j += r->trace[j].span) {
                TRY(clst_buf_appendf(out, "%s %s", j == i + 1 ? "" : ",", r->trace[j].pub.path));
            }
        }
        break;
    case CLST_POLICY_NODE_AUTHORITY:
        TRY(clst_buf_append_str(out, "authority "));
        TRY(quoted(out, t->authority));
        break;
    case CLST_POLICY_NODE_ANY_OF:
    case CLST_POLICY_NODE_ALL_OF:
        TRY(clst_buf_appendf(out, "%s (%zu condition%s)", clst_policy_node_name(t->node),
                             child_count(r, i), child_count(r, i) == 1 ? "" : "s"));
        break;
    case CLST_POLICY_NODE_CLAIM:
    case CLST_POLICY_NODE_REF_VALUE:
        TRY(clst_buf_append_str(out, "claim "));
        TRY(quoted(out, t->claim));
        TRY(clst_buf_appendf(out, " %s ", clst_policy_op_name(t->op)));
        TRY(policy_append_value(out, t->expected, redact));
        break;
    case CLST_POLICY_NODE_REFERENCE:
        TRY(clst_buf_append_str(out, "reference values"));
        if (t->attestation_type != NULL) {
            TRY(clst_buf_append_str(out, " for attestation type "));
            TRY(quoted(out, t->attestation_type));
        } else {
            TRY(clst_buf_append_str(out, " (chosen by claim '" CLST_POLICY_TYPE_CLAIM "')"));
        }
        break;
    }
    return rc;
}

/* Why it has its verdict: "holds", "fails: actual 3", "fails: claim missing (...)". */
static enum clst_status
explain(struct clst_buf *out, const struct clst_policy_result *r, size_t i, bool redact)
{
    const struct clst_policy_trace *t = &r->trace[i].pub;
    enum clst_status rc = CLST_OK;
    bool leaf = t->node == CLST_POLICY_NODE_CLAIM || t->node == CLST_POLICY_NODE_REF_VALUE;

    switch (t->outcome) {
    case CLST_POLICY_HOLDS:
        TRY(clst_buf_append_str(out, "holds"));
        if (leaf) {
            if (t->op == CLST_POLICY_OP_EXISTS) {
                TRY(clst_buf_append_str(out, t->actual != NULL ? " (present)" : " (absent)"));
            } else {
                TRY(clst_buf_append_str(out, " (actual "));
                TRY(policy_append_value(out, t->actual, redact));
                TRY(clst_buf_append_byte(out, ')'));
            }
        }
        break;
    case CLST_POLICY_FAILS:
        if (leaf && t->op == CLST_POLICY_OP_EXISTS) {
            TRY(clst_buf_append_str(out, "fails: the claim is present (actual "));
            TRY(policy_append_value(out, t->actual, redact));
            TRY(clst_buf_append_byte(out, ')'));
        } else {
            TRY(clst_buf_append_str(out, "fails: actual "));
            TRY(policy_append_value(out, t->actual, redact));
        }
        break;
    case CLST_POLICY_MISSING:
        if (t->node == CLST_POLICY_NODE_REFERENCE) {
            TRY(clst_buf_append_str(out, "fails: claim '" CLST_POLICY_TYPE_CLAIM "' missing"));
        } else {
            TRY(clst_buf_append_str(out, "fails: claim missing"));
        }
        if (t->missing_note != NULL) {
            TRY(clst_buf_append_str(out, " ("));
            TRY(policy_append_safe(out, t->missing_note));
            TRY(clst_buf_append_byte(out, ')'));
        }
        break;
    case CLST_POLICY_TYPE_MISMATCH:
        if (t->node == CLST_POLICY_NODE_REFERENCE) {
            TRY(clst_buf_appendf(
                out, "fails: type mismatch: '" CLST_POLICY_TYPE_CLAIM "' is %s, not a string",
                policy_type_article(t->actual)));
        } else if (t->op == CLST_POLICY_OP_ONE_OF) {
            TRY(clst_buf_appendf(out, "fails: type mismatch: no allowed value is %s (actual ",
                                 policy_type_article(t->actual)));
            TRY(policy_append_value(out, t->actual, redact));
            TRY(clst_buf_append_byte(out, ')'));
        } else {
            TRY(clst_buf_appendf(out, "fails: type mismatch: expected %s, got %s (actual ",
                                 policy_type_name(t->expected), policy_type_name(t->actual)));
            TRY(policy_append_value(out, t->actual, redact));
            TRY(clst_buf_append_byte(out, ')'));
        }
        break;
    case CLST_POLICY_ISSUER_MISMATCH:
        if (t->issuer == NULL) {
            TRY(clst_buf_append_str(out, "fails: the token has no issuer ('iss')"));
        } else {
            TRY(clst_buf_append_str(out, "fails: issuer mismatch: the token's issuer is "));
            TRY(quoted(out, t->issuer));
        }
        break;
    case CLST_POLICY_NO_REFERENCE:
        TRY(clst_buf_append_str(out, "fails: the policy has no reference values for "
                                     "attestation type "));
        TRY(quoted(out, t->attestation_type != NULL ? t->attestation_type : ""));
        break;
    case CLST_POLICY_CHILDREN_FAIL:
        if (t->node == CLST_POLICY_NODE_AUTHORITY) {
            TRY(clst_buf_append_str(out, "fails: the issuer matches, a condition fails"));
        } else if (t->node == CLST_POLICY_NODE_ANY_OF ||
                   (t->node == CLST_POLICY_NODE_ROOT && r->kind == CLST_POLICY_RELEASE)) {
            TRY(clst_buf_append_str(out, "fails: none holds"));
        } else {
            TRY(clst_buf_append_str(out, "fails: not all hold"));
        }
        break;
    }
    return rc;
}

enum clst_status
clst_policy_result_summary(const struct clst_policy_result *result, unsigned flags,
                           struct clst_buf *out)
{
    enum clst_status rc = CLST_OK;
    bool redact = (flags & CLST_POLICY_REDACT) != 0;

    if (result == NULL || out == NULL || result->count == 0) {
        return CLST_E_INVAL;
    }
    if (result->decision == CLST_POLICY_ALLOW) {
        if (result->kind == CLST_POLICY_RELEASE) {
            for (size_t t = 1; t < result->count; t += result->trace[t].span) {
                if (result->trace[t].pub.verdict) {
                    TRY(clst_buf_append_str(out, "allowed by "));
                    TRY(policy_append_safe(out, result->trace[t].pub.path));
                    TRY(clst_buf_append_str(out, " (authority "));
                    TRY(quoted(out, result->trace[t].pub.authority));
                    TRY(clst_buf_append_byte(out, ')'));
                    break;
                }
            }
        } else {
            TRY(clst_buf_append_str(out, "allowed: "));
            TRY(describe(out, result, 0, redact));
            TRY(clst_buf_append_str(out, " hold"));
        }
        return clst_buf_terminate(out);
    }
    size_t d = result->denial < result->count ? result->denial : 0;
    const struct clst_policy_trace *t = &result->trace[d].pub;
    TRY(clst_buf_append_str(out, "denied at "));
    TRY(policy_append_safe(out, t->path[0] != '\0' ? t->path : "policy"));
    TRY(clst_buf_append_str(out, ": "));
    TRY(describe(out, result, d, redact));
    TRY(clst_buf_append_str(out, ": "));
    TRY(explain(out, result, d, redact));
    if (t->node == CLST_POLICY_NODE_AUTHORITY && t->outcome == CLST_POLICY_ISSUER_MISMATCH &&
        child_count(result, 0) > 1) {
        TRY(clst_buf_appendf(out, " (and no other of the %zu authorities matches)",
                             child_count(result, 0)));
    }
    return clst_buf_terminate(out);
}

enum clst_status
clst_policy_result_to_text(const struct clst_policy_result *result, unsigned flags,
                           struct clst_buf *out)
{
    enum clst_status rc = CLST_OK;
    bool redact = (flags & CLST_POLICY_REDACT) != 0;

    if (result == NULL || out == NULL || result->count == 0) {
        return CLST_E_INVAL;
    }
    TRY(clst_buf_appendf(out, "decision: %s\n",
                         result->decision == CLST_POLICY_ALLOW ? "ALLOW" : "DENY"));
    TRY(clst_buf_append_str(out, "reason:   "));
    TRY(clst_policy_result_summary(result, flags, out));
    TRY(clst_buf_appendf(out, "\npolicy:   %s %s (sha-256, base64url)\ntrace:\n",
                         result->kind == CLST_POLICY_RELEASE ? "release" : "appraisal",
                         result->hash_b64));
    for (size_t i = 0; i < result->count; i++) {
        const struct clst_policy_trace *t = &result->trace[i].pub;
        TRY(clst_buf_appendf(out, "%*s%s  ", (int)(2 + 2 * t->depth), "",
                             t->verdict ? "true " : "false"));
        TRY(policy_append_safe(out, t->path[0] != '\0' ? t->path : "policy"));
        TRY(clst_buf_append_str(out, "  "));
        TRY(describe(out, result, i, redact));
        TRY(clst_buf_append_str(out, "  => "));
        TRY(explain(out, result, i, redact));
        if (i == result->denial) {
            TRY(clst_buf_append_str(out, "   <== denial"));
        }
        TRY(clst_buf_append_byte(out, '\n'));
    }
    if (redact) {
        TRY(clst_buf_append_str(out, "(values redacted: shown as <type>)\n"));
    }
    return clst_buf_terminate(out);
}

/* Sets key to a deep copy of v (NULL: nothing). */
static int
set_copy(json_t *obj, const char *key, const json_t *v)
{
    if (v == NULL) {
        return 0;
    }
    return json_object_set_new(obj, key, json_deep_copy(v));
}

/* The issuer as a JSON string: as given when it is UTF-8 (a verified token's always is), else
 * escaped; null when there is none. */
static json_t *
issuer_json(const char *issuer)
{
    if (issuer == NULL) {
        return json_null();
    }
    json_t *s = json_string(issuer);
    if (s != NULL) {
        return s;
    }
    struct clst_buf b;
    clst_buf_init(&b, 64 * 1024);
    if (policy_append_safe(&b, issuer) == CLST_OK) {
        s = json_stringn((const char *)b.data, b.size);
    }
    clst_buf_cleanup(&b);
    return s;
}

static json_t *
entry_json(const struct clst_policy_result *r, size_t i, bool redact, bool with_depth)
{
    const struct clst_policy_trace *t = &r->trace[i].pub;
    json_t *o = json_object();
    int bad = o == NULL;
    bool leaf = t->node == CLST_POLICY_NODE_CLAIM || t->node == CLST_POLICY_NODE_REF_VALUE;

    bad = bad || json_object_set_new(o, "path", json_string(t->path)) != 0;
    bad = bad || json_object_set_new(o, "node", json_string(clst_policy_node_name(t->node))) != 0;
    if (with_depth) {
        bad = bad || json_object_set_new(o, "depth", json_integer(t->depth)) != 0;
    }
    bad = bad || json_object_set_new(o, "verdict", json_boolean(t->verdict)) != 0;
    bad = bad ||
          json_object_set_new(o, "outcome", json_string(clst_policy_outcome_name(t->outcome))) != 0;
    if (t->claim != NULL) {
        bad = bad || json_object_set_new(o, "claim", json_string(t->claim)) != 0;
    }
    if (leaf) {
        bad =
            bad || json_object_set_new(o, "operator", json_string(clst_policy_op_name(t->op))) != 0;
        bad = bad || json_object_set_new(o, "expectedType",
                                         json_string(policy_type_name(t->expected))) != 0;
        if (!redact) {
            bad = bad || set_copy(o, "expected", t->expected) != 0;
        }
    }
    if (leaf || t->node == CLST_POLICY_NODE_REFERENCE) {
        bad = bad ||
              json_object_set_new(o, "actualType", json_string(policy_type_name(t->actual))) != 0;
        if (!redact) {
            bad = bad || set_copy(o, "actual", t->actual) != 0;
        }
        if (t->missing_note != NULL) {
            bad = bad || json_object_set_new(o, "missingNote", json_string(t->missing_note)) != 0;
        }
        if (redact) {
            bad = bad || json_object_set_new(o, "redacted", json_true()) != 0;
        }
    }
    if (t->node == CLST_POLICY_NODE_AUTHORITY) {
        bad = bad || json_object_set_new(o, "authority", json_string(t->authority)) != 0;
        bad = bad || json_object_set_new(o, "issuer", issuer_json(t->issuer)) != 0;
    }
    if (t->attestation_type != NULL) {
        bad =
            bad || json_object_set_new(o, "attestationType", json_string(t->attestation_type)) != 0;
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

enum clst_status
clst_policy_result_to_json(const struct clst_policy_result *result, unsigned flags, json_t **out)
{
    enum clst_status rc = CLST_E_NOMEM;
    bool redact = (flags & CLST_POLICY_REDACT) != 0;
    json_t *o = NULL;
    struct clst_buf summary;

    clst_buf_init(&summary, 64 * 1024);
    if (result == NULL || out == NULL || result->count == 0) {
        rc = CLST_E_INVAL;
        goto out;
    }
    rc = clst_policy_result_summary(result, flags, &summary);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = CLST_E_NOMEM;
    o = json_object();
    if (o == NULL ||
        json_object_set_new(
            o, "decision", json_string(result->decision == CLST_POLICY_ALLOW ? "allow" : "deny")) !=
            0 ||
        json_object_set_new(o, "policyHash", json_string(result->hash_b64)) != 0 ||
        json_object_set_new(o, "message", json_stringn((const char *)summary.data, summary.size)) !=
            0) {
        goto out;
    }
    if (result->decision == CLST_POLICY_DENY && result->denial < result->count) {
        json_t *d = entry_json(result, result->denial, redact, false);
        if (d == NULL || json_object_set_new(o, "denial", d) != 0) {
            goto out;
        }
    }
    if ((flags & CLST_POLICY_WITH_TRACE) != 0) {
        json_t *arr = json_array();
        if (arr == NULL || json_object_set_new(o, "trace", arr) != 0) {
            goto out;
        }
        for (size_t i = 0; i < result->count; i++) {
            json_t *e = entry_json(result, i, redact, true);
            if (e == NULL || json_array_append_new(arr, e) != 0) {
                goto out;
            }
        }
    }
    *out = o;
    o = NULL;
    rc = CLST_OK;
out:
    json_decref(o);
    clst_buf_cleanup(&summary);
    return rc;
}
