/*
 * Policy parsing and validation: JSON text or a jansson document in, an immutable tree of nodes
 * (struct pnode, document order) out, or a message that names the path of what was wrong.
 * The grammar is the cloud key vault's secure-key-release grammar (docs/policy.md); every
 * member we do not know is refused rather than ignored, so a typo can never silently weaken a
 * policy.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/policy_int.h"

struct pctx {
    struct clst_policy *p;
    struct clst_err *err;
    size_t leaves; /* claim conditions + reference entries */
};

struct opname {
    const char *name;
    enum clst_policy_op op;
};

static const struct opname operators[] = {
    {"equals", CLST_POLICY_OP_EQUALS},   {"notEquals", CLST_POLICY_OP_NOT_EQUALS},
    {"less", CLST_POLICY_OP_LESS},       {"lessOrEquals", CLST_POLICY_OP_LESS_OR_EQUALS},
    {"greater", CLST_POLICY_OP_GREATER}, {"greaterOrEquals", CLST_POLICY_OP_GREATER_OR_EQUALS},
    {"exists", CLST_POLICY_OP_EXISTS},
};
#define OPERATOR_COUNT (sizeof(operators) / sizeof(operators[0]))

/* Every member name the grammar knows, for "did you mean" hints. */
static const char *const known_names[] = {
    "equals",
    "notEquals",
    "less",
    "lessOrEquals",
    "greater",
    "greaterOrEquals",
    "exists",
    "claim",
    "anyOf",
    "allOf",
    "authority",
    "version",
    "authorizationRules",
    "referenceValues",
};
#define KNOWN_COUNT (sizeof(known_names) / sizeof(known_names[0]))

static enum clst_policy_op
op_lookup(const char *name)
{
    for (size_t i = 0; i < OPERATOR_COUNT; i++) {
        if (strcmp(name, operators[i].name) == 0) {
            return operators[i].op;
        }
    }
    return CLST_POLICY_OP_NONE;
}

/* A known name that `name` is probably a misspelling of (case, or a few letters missing at the
 * end: "equal", "anyof", "greaterOrEqual"); NULL when none. */
static const char *
suggest(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < KNOWN_COUNT; i++) {
        size_t k = strlen(known_names[i]);
        if (strcmp(name, known_names[i]) == 0) {
            return NULL; /* a known name in the wrong place: no hint helps */
        }
        if (strcasecmp(name, known_names[i]) == 0) {
            return known_names[i];
        }
        if (n >= 4 && n < k && k - n <= 2 && strncasecmp(known_names[i], name, n) == 0) {
            return known_names[i];
        }
    }
    return NULL;
}

/* "<path>: <what> '<name>' (did you mean 'x'?)"; names from the document are shown escaped. */
static enum clst_status
unknown_member(struct pctx *c, const char *path, const char *what, const char *name)
{
    char shown[80];
    size_t j = 0;
    for (const unsigned char *s = (const unsigned char *)name; *s != '\0' && j + 5 < sizeof(shown);
         s++) {
        if (*s < 0x20 || *s == 0x7f) {
            j += (size_t)snprintf(shown + j, sizeof(shown) - j, "\\x%02x", *s);
        } else {
            shown[j++] = (char)*s;
        }
    }
    shown[j] = '\0';
    const char *hint = suggest(name);
    if (hint != NULL) {
        return clst_err_set(c->err, CLST_E_MALFORMED, "%s: %s '%s' (did you mean '%s'?)", path,
                            what, shown, hint);
    }
    return clst_err_set(c->err, CLST_E_MALFORMED, "%s: %s '%s'", path, what, shown);
}

const char *
policy_type_name(const json_t *v)
{
    if (v == NULL) {
        return "missing";
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

const char *
policy_type_article(const json_t *v)
{
    if (v == NULL) {
        return "missing";
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* Joins a path: "<base>.<name>" or "<name>" at the top, with "[index]" when index != SIZE_MAX. */
static void
path_join(char out[static POLICY_PATH_CAP], const char *base, const char *name, size_t index)
{
    int n;
    const char *dot = base[0] != '\0' ? "." : "";
    if (index == SIZE_MAX) {
        n = snprintf(out, POLICY_PATH_CAP, "%s%s%s", base, dot, name);
    } else {
        n = snprintf(out, POLICY_PATH_CAP, "%s%s%s[%zu]", base, dot, name, index);
    }
    if (n < 0 || (size_t)n >= POLICY_PATH_CAP) {
        /* Cannot happen within the limits (POLICY_PATH_CAP covers the deepest path); a cut
         * path is still a correct prefix for a person to read. */
        out[POLICY_PATH_CAP - 1] = '\0';
    }
}

/* Where messages about the top level point. */
static const char *
shown_path(const char *path)
{
    return path[0] != '\0' ? path : "policy";
}

/*
 * A string that names something (claim path, authority, attestation type): at most `max` bytes,
 * no NUL (json_t strings may hold one), no control characters, not empty.
 */
static enum clst_status
check_name(struct pctx *c, const json_t *v, const char *path, const char *what, size_t max)
{
    if (!json_is_string(v)) {
        return clst_err_set(c->err, CLST_E_MALFORMED, "%s: %s must be a string, got %s", path, what,
                            policy_type_name(v));
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0) {
        return clst_err_set(c->err, CLST_E_MALFORMED, "%s: %s is empty", path, what);
    }
    if (n > max) {
        return clst_err_set(c->err, CLST_E_LIMIT, "%s: %s is too long (%zu bytes; at most %zu)",
                            path, what, n, max);
    }
    if (strlen(s) != n) {
        return clst_err_set(c->err, CLST_E_MALFORMED, "%s: %s contains a NUL character", path,
                            what);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) {
            return clst_err_set(c->err, CLST_E_MALFORMED,
                                "%s: %s contains a control character (0x%02x)", path, what, ch);
        }
    }
    return CLST_OK;
}

/* An operand that can be compared: a string (no NUL, bounded), a number or a boolean. */
static enum clst_status
check_scalar(struct pctx *c, const json_t *v, const char *path)
{
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        if (n > CLST_POLICY_MAX_VALUE_SIZE) {
            return clst_err_set(c->err, CLST_E_LIMIT, "%s: string too long (%zu bytes; at most %d)",
                                path, n, CLST_POLICY_MAX_VALUE_SIZE);
        }
        if (strlen(json_string_value(v)) != n) {
            return clst_err_set(c->err, CLST_E_MALFORMED, "%s: string contains a NUL character",
                                path);
        }
        return CLST_OK;
    }
    if (json_is_number(v) || json_is_boolean(v)) {
        return CLST_OK;
    }
    return clst_err_set(c->err, CLST_E_MALFORMED,
                        "%s: %s cannot be compared; use a string, a number or true/false", path,
                        policy_type_article(v));
}

static enum clst_status
add_node(struct pctx *c, enum clst_policy_node kind, unsigned depth, const char *path,
         size_t *out_index)
{
    struct clst_policy *p = c->p;
    if (p->count >= CLST_POLICY_MAX_NODES) {
        return clst_err_set(c->err, CLST_E_LIMIT,
                            "%s: the policy has more than %d nodes (authorities, groups and "
                            "conditions); split it or simplify it",
                            shown_path(path), CLST_POLICY_MAX_NODES);
    }
    if (p->count == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        struct pnode *n = realloc(p->nodes, ncap * sizeof(*n));
        if (n == NULL) {
            return clst_err_set(c->err, CLST_E_NOMEM, "out of memory parsing the policy");
        }
        p->nodes = n;
        p->cap = ncap;
    }
    struct pnode *n = &p->nodes[p->count];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->depth = depth;
    n->subtree = 1;
    n->path = strdup(path);
    if (n->path == NULL) {
        return clst_err_set(c->err, CLST_E_NOMEM, "out of memory parsing the policy");
    }
    *out_index = p->count++;
    return CLST_OK;
}

/* Validates and splits a claim path into node->segs / node->seg. */
static enum clst_status
set_claim(struct pctx *c, size_t index, const json_t *v, const char *path)
{
    char where[POLICY_PATH_CAP];
    path_join(where, path, "claim", SIZE_MAX);
    enum clst_status rc = check_name(c, v, where, "the claim path", CLST_POLICY_MAX_CLAIM_SIZE);
    if (rc != CLST_OK) {
        return rc;
    }
    const char *s = json_string_value(v);
    struct pnode *n = &c->p->nodes[index];
    n->claim = strdup(s);
    n->segs = strdup(s);
    if (n->claim == NULL || n->segs == NULL) {
        return clst_err_set(c->err, CLST_E_NOMEM, "out of memory parsing the policy");
    }
    char *seg = n->segs;
    for (;;) {
        char *dot = strchr(seg, '.');
        if (dot != NULL) {
            *dot = '\0';
        }
        if (seg[0] == '\0') {
            return clst_err_set(c->err, CLST_E_MALFORMED,
                                "%s: empty segment in claim path '%s' (a leading, trailing or "
                                "doubled '.')",
                                where, s);
        }
        if (n->seg_count == CLST_POLICY_MAX_SEGMENTS) {
            return clst_err_set(c->err, CLST_E_LIMIT,
                                "%s: claim path '%s' has more than %d segments", where, s,
                                CLST_POLICY_MAX_SEGMENTS);
        }
        n->seg[n->seg_count++] = seg;
        if (dot == NULL) {
            break;
        }
        seg = dot + 1;
    }
    return CLST_OK;
}

static enum clst_status parse_condition(struct pctx *c, const json_t *obj, const char *path,
                                        unsigned level, unsigned depth);

/*
 * An anyOf/allOf group: `node_path` is the group's own path, `child_base` what its members'
 * paths start with ("<child_base>[i]"). `level` is the group's nesting level (1 for the group of
 * an authority or of authorizationRules).
 */
static enum clst_status
parse_group(struct pctx *c, const json_t *arr, enum clst_policy_node kind, const char *node_path,
            const char *child_base, unsigned level, unsigned depth)
{
    if (level > CLST_POLICY_MAX_DEPTH) {
        return clst_err_set(c->err, CLST_E_LIMIT, "%s: nested deeper than %d anyOf/allOf levels",
                            node_path, CLST_POLICY_MAX_DEPTH);
    }
    if (!json_is_array(arr)) {
        return clst_err_set(c->err, CLST_E_MALFORMED, "%s: must be an array of conditions, got %s",
                            child_base, policy_type_name(arr));
    }
    if (json_array_size(arr) == 0) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "%s: empty; the grammar requires at least one condition", child_base);
    }
    size_t index;
    enum clst_status rc = add_node(c, kind, depth, node_path, &index);
    if (rc != CLST_OK) {
        return rc;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) {
        char child[POLICY_PATH_CAP];
        int n = snprintf(child, sizeof(child), "%s[%zu]", child_base, i);
        if (n < 0 || (size_t)n >= sizeof(child)) {
            return clst_err_set(c->err, CLST_E_LIMIT, "%s: path too long", child_base);
        }
        rc = parse_condition(c, v, child, level, depth + 1);
        if (rc != CLST_OK) {
            return rc;
        }
    }
    c->p->nodes[index].subtree = c->p->count - index;
    return CLST_OK;
}

/* A condition: {"claim": ..., <operator>: ...} or {"anyOf": [...]} or {"allOf": [...]}. `level`
 * is the nesting level of the enclosing group. */
static enum clst_status
parse_condition(struct pctx *c, const json_t *obj, const char *path, unsigned level, unsigned depth)
{
    if (!json_is_object(obj)) {
        return clst_err_set(c->err, CLST_E_MALFORMED, "%s: a condition must be an object, got %s",
                            path, policy_type_name(obj));
    }
    const json_t *claim = json_object_get(obj, "claim");
    const json_t *any = json_object_get(obj, "anyOf");
    const json_t *all = json_object_get(obj, "allOf");
    const char *key;
    const json_t *v;

    if (any != NULL && all != NULL) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "%s: both 'anyOf' and 'allOf'; a condition takes one of them", path);
    }
    if (claim != NULL && (any != NULL || all != NULL)) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "%s: 'claim' together with '%s'; a condition is either a claim "
                            "condition or a group",
                            path, any != NULL ? "anyOf" : "allOf");
    }
    if (any != NULL || all != NULL) {
        const char *gname = any != NULL ? "anyOf" : "allOf";
        json_object_foreach((json_t *)obj, key, v) {
            if (strcmp(key, gname) != 0) {
                return unknown_member(c, path, "unknown member", key);
            }
        }
        char child_base[POLICY_PATH_CAP];
        path_join(child_base, path, gname, SIZE_MAX);
        return parse_group(c, any != NULL ? any : all,
                           any != NULL ? CLST_POLICY_NODE_ANY_OF : CLST_POLICY_NODE_ALL_OF, path,
                           child_base, level + 1, depth);
    }
    if (claim == NULL) {
        json_object_foreach((json_t *)obj, key, v) {
            if (op_lookup(key) != CLST_POLICY_OP_NONE) {
                return clst_err_set(c->err, CLST_E_MALFORMED,
                                    "%s: operator '%s' without a 'claim' to apply it to", path,
                                    key);
            }
            return unknown_member(c, path, "unknown member", key);
        }
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "%s: empty condition; write {\"claim\": ..., <operator>: ...} or "
                            "{\"anyOf\"|\"allOf\": [...]}",
                            path);
    }

    /* A claim condition: "claim" and exactly one operator. */
    enum clst_policy_op op = CLST_POLICY_OP_NONE;
    const char *op_key = NULL;
    const json_t *operand = NULL;
    json_object_foreach((json_t *)obj, key, v) {
        if (strcmp(key, "claim") == 0) {
            continue;
        }
        enum clst_policy_op o = op_lookup(key);
        if (o == CLST_POLICY_OP_NONE) {
            return unknown_member(c, path, "unknown operator", key);
        }
        if (op != CLST_POLICY_OP_NONE) {
            return clst_err_set(c->err, CLST_E_MALFORMED,
                                "%s: two operators ('%s' and '%s'); a claim condition takes "
                                "exactly one",
                                path, op_key, key);
        }
        op = o;
        op_key = key;
        operand = v;
    }
    if (op == CLST_POLICY_OP_NONE) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "%s: claim condition without an operator (equals, notEquals, less, "
                            "lessOrEquals, greater, greaterOrEquals or exists)",
                            path);
    }
    char where[POLICY_PATH_CAP];
    path_join(where, path, op_key, SIZE_MAX);
    enum clst_status rc;
    switch (op) {
    case CLST_POLICY_OP_EQUALS:
    case CLST_POLICY_OP_NOT_EQUALS:
        rc = check_scalar(c, operand, where);
        break;
    case CLST_POLICY_OP_EXISTS:
        rc = json_is_boolean(operand)
                 ? CLST_OK
                 : clst_err_set(c->err, CLST_E_MALFORMED,
                                "%s: 'exists' takes true or false (a JSON boolean), got %s", where,
                                policy_type_name(operand));
        break;
    default: /* the ordering operators */
        rc = json_is_number(operand)
                 ? CLST_OK
                 : clst_err_set(c->err, CLST_E_MALFORMED,
                                "%s: '%s' compares numbers; the operand must be a number, got %s",
                                where, op_key, policy_type_name(operand));
        break;
    }
    if (rc != CLST_OK) {
        return rc;
    }
    if (c->leaves >= CLST_POLICY_MAX_CONDITIONS) {
        return clst_err_set(c->err, CLST_E_LIMIT, "%s: the policy has more than %d conditions",
                            path, CLST_POLICY_MAX_CONDITIONS);
    }
    c->leaves++;
    size_t index;
    rc = add_node(c, CLST_POLICY_NODE_CLAIM, depth, path, &index);
    if (rc != CLST_OK) {
        return rc;
    }
    c->p->nodes[index].op = op;
    c->p->nodes[index].operand = operand;
    return set_claim(c, index, claim, path);
}

/* "version": absent (read as 1.0.0) or exactly "1.0.0". */
static enum clst_status
check_version(struct pctx *c, const json_t *doc)
{
    const json_t *v = json_object_get(doc, "version");
    if (v == NULL) {
        return CLST_OK;
    }
    if (!json_is_string(v)) {
        return clst_err_set(c->err, CLST_E_MALFORMED, "version: must be the string \"%s\", got %s",
                            CLST_POLICY_VERSION, policy_type_name(v));
    }
    if (strcmp(json_string_value(v), CLST_POLICY_VERSION) != 0 ||
        json_string_length(v) != strlen(CLST_POLICY_VERSION)) {
        char shown[32];
        snprintf(shown, sizeof(shown), "%s", json_string_value(v));
        for (char *s = shown; *s != '\0'; s++) {
            if ((unsigned char)*s < 0x20 || *s == 0x7f) {
                *s = '?';
            }
        }
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "version: unsupported version '%s'; this grammar is \"%s\"", shown,
                            CLST_POLICY_VERSION);
    }
    return CLST_OK;
}

static enum clst_status
parse_authority(struct pctx *c, const json_t *obj, const char *path)
{
    if (!json_is_object(obj)) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "%s: an authority must be an object {\"authority\": ..., \"allOf\"|"
                            "\"anyOf\": [...]}, got %s",
                            path, policy_type_name(obj));
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (strcmp(key, "authority") != 0 && strcmp(key, "anyOf") != 0 &&
            strcmp(key, "allOf") != 0) {
            if (strcmp(key, "claim") == 0 || op_lookup(key) != CLST_POLICY_OP_NONE) {
                return clst_err_set(c->err, CLST_E_MALFORMED,
                                    "%s: '%s' directly in an authority; conditions go inside its "
                                    "'allOf' or 'anyOf'",
                                    path, key);
            }
            return unknown_member(c, path, "unknown member", key);
        }
    }
    const json_t *auth = json_object_get(obj, "authority");
    if (auth == NULL) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "%s: 'authority' is required (the issuer whose tokens this entry "
                            "accepts)",
                            path);
    }
    char where[POLICY_PATH_CAP];
    path_join(where, path, "authority", SIZE_MAX);
    enum clst_status rc = check_name(c, auth, where, "the authority", CLST_POLICY_MAX_VALUE_SIZE);
    if (rc != CLST_OK) {
        return rc;
    }
    const json_t *any = json_object_get(obj, "anyOf");
    const json_t *all = json_object_get(obj, "allOf");
    if (any != NULL && all != NULL) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "%s: both 'allOf' and 'anyOf'; an authority takes exactly one", path);
    }
    if (any == NULL && all == NULL) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "%s: no conditions; an authority needs 'allOf' or 'anyOf'", path);
    }
    size_t index;
    rc = add_node(c, CLST_POLICY_NODE_AUTHORITY, 1, path, &index);
    if (rc != CLST_OK) {
        return rc;
    }
    c->p->nodes[index].authority = json_string_value(auth);
    const char *gname = any != NULL ? "anyOf" : "allOf";
    char group[POLICY_PATH_CAP];
    path_join(group, path, gname, SIZE_MAX);
    rc = parse_group(c, any != NULL ? any : all,
                     any != NULL ? CLST_POLICY_NODE_ANY_OF : CLST_POLICY_NODE_ALL_OF, group, group,
                     1, 2);
    if (rc != CLST_OK) {
        return rc;
    }
    c->p->nodes[index].subtree = c->p->count - index;
    return CLST_OK;
}

/*
 * The members of a policy's top level: each one must be in `allowed` (NULL-terminated); `other`,
 * a top-level member of the other kind of policy, is refused with `other_msg`. Then "version".
 */
static enum clst_status
check_top(struct pctx *c, const json_t *doc, const char *const allowed[], const char *other,
          const char *other_msg)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)doc, key, v) {
        size_t i = 0;
        while (allowed[i] != NULL && strcmp(key, allowed[i]) != 0) {
            i++;
        }
        if (allowed[i] == NULL) {
            if (strcmp(key, other) == 0) {
                return clst_err_set(c->err, CLST_E_MALFORMED, "%s", other_msg);
            }
            return unknown_member(c, "policy", "unknown member", key);
        }
    }
    return check_version(c, doc);
}

static enum clst_status
parse_release(struct pctx *c, const json_t *doc)
{
    static const char *const allowed[] = {"version", "anyOf", NULL};
    const json_t *v;
    enum clst_status rc = check_top(c, doc, allowed, "allOf",
                                    "policy: the top level of a release policy is 'anyOf' (a "
                                    "list of authorities), not 'allOf'");
    if (rc != CLST_OK) {
        return rc;
    }
    const json_t *any = json_object_get(doc, "anyOf");
    if (any == NULL) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "policy: 'anyOf' is required: {\"version\": \"1.0.0\", \"anyOf\": "
                            "[{\"authority\": ..., \"allOf\": [...]}]}");
    }
    if (!json_is_array(any)) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "anyOf: must be an array of authorities, got %s",
                            policy_type_name(any));
    }
    size_t count = json_array_size(any);
    if (count == 0) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "anyOf: empty; the grammar requires at least one authority");
    }
    if (count > CLST_POLICY_MAX_AUTHORITIES) {
        return clst_err_set(c->err, CLST_E_LIMIT, "anyOf: %zu authorities; at most %d", count,
                            CLST_POLICY_MAX_AUTHORITIES);
    }
    size_t root;
    rc = add_node(c, CLST_POLICY_NODE_ROOT, 0, "", &root);
    if (rc != CLST_OK) {
        return rc;
    }
    size_t i;
    json_array_foreach(any, i, v) {
        char path[POLICY_PATH_CAP];
        path_join(path, "", "anyOf", i);
        rc = parse_authority(c, v, path);
        if (rc != CLST_OK) {
            return rc;
        }
    }
    c->p->authorities = count;
    c->p->nodes[root].subtree = c->p->count - root;
    return CLST_OK;
}

/* Attestation types name reference-value sets: letters, digits, '.', '_' and '-'. */
static enum clst_status
check_type_name(struct pctx *c, const char *type)
{
    size_t n = strlen(type);
    if (n == 0 || n > CLST_POLICY_MAX_TYPE_SIZE) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "referenceValues: an attestation type must have 1..%d characters",
                            CLST_POLICY_MAX_TYPE_SIZE);
    }
    for (size_t i = 0; i < n; i++) {
        char ch = type[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) {
            return clst_err_set(c->err, CLST_E_MALFORMED,
                                "referenceValues: attestation type with a character other than "
                                "letters, digits, '.', '_' and '-'");
        }
    }
    return CLST_OK;
}

static enum clst_status
parse_reference(struct pctx *c, const json_t *refs)
{
    if (!json_is_object(refs)) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "referenceValues: must be an object {\"<attestation type>\": "
                            "{\"<claim>\": [allowed values]}}, got %s",
                            policy_type_name(refs));
    }
    if (json_object_size(refs) == 0) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "referenceValues: empty; leave it out to check no reference values");
    }
    size_t index;
    enum clst_status rc = add_node(c, CLST_POLICY_NODE_REFERENCE, 1, "referenceValues", &index);
    if (rc != CLST_OK) {
        return rc;
    }
    const char *type;
    const json_t *entries;
    json_object_foreach((json_t *)refs, type, entries) {
        rc = check_type_name(c, type);
        if (rc != CLST_OK) {
            return rc;
        }
        char tpath[POLICY_PATH_CAP];
        path_join(tpath, "referenceValues", type, SIZE_MAX);
        if (!json_is_object(entries)) {
            return clst_err_set(c->err, CLST_E_MALFORMED,
                                "%s: must be an object {\"<claim>\": [allowed values]}, got %s",
                                tpath, policy_type_name(entries));
        }
        if (json_object_size(entries) == 0) {
            return clst_err_set(c->err, CLST_E_MALFORMED,
                                "%s: empty; list at least one claim and its allowed values", tpath);
        }
        const char *claim;
        const json_t *allowed;
        json_object_foreach((json_t *)entries, claim, allowed) {
            /* The claim is a member name here; check it like a "claim" value. */
            json_t *cv = json_string(claim);
            if (cv == NULL) {
                return clst_err_set(c->err, CLST_E_MALFORMED,
                                    "%s: a claim name that is not valid UTF-8", tpath);
            }
            rc = check_name(c, cv, tpath, "the claim name", CLST_POLICY_MAX_CLAIM_SIZE);
            if (rc != CLST_OK) {
                json_decref(cv);
                return rc;
            }
            char path[POLICY_PATH_CAP];
            int n = snprintf(path, sizeof(path), "%s[\"%.*s\"]", tpath,
                             (int)CLST_POLICY_MAX_CLAIM_SIZE, claim);
            if (n < 0 || (size_t)n >= sizeof(path)) {
                json_decref(cv);
                return clst_err_set(c->err, CLST_E_LIMIT, "%s: path too long", tpath);
            }
            if (!json_is_array(allowed) || json_array_size(allowed) == 0) {
                json_decref(cv);
                return clst_err_set(c->err, CLST_E_MALFORMED,
                                    "%s: must be a non-empty array of allowed values", path);
            }
            if (json_array_size(allowed) > CLST_POLICY_MAX_REF_VALUES) {
                json_decref(cv);
                return clst_err_set(c->err, CLST_E_LIMIT, "%s: %zu allowed values; at most %d",
                                    path, json_array_size(allowed), CLST_POLICY_MAX_REF_VALUES);
            }
            size_t i;
            const json_t *a;
            json_array_foreach(allowed, i, a) {
                char where[POLICY_PATH_CAP + 24];
                snprintf(where, sizeof(where), "%s[%zu]", path, i);
                rc = check_scalar(c, a, where);
                if (rc != CLST_OK) {
                    json_decref(cv);
                    return rc;
                }
            }
            if (c->leaves >= CLST_POLICY_MAX_CONDITIONS) {
                json_decref(cv);
                return clst_err_set(c->err, CLST_E_LIMIT,
                                    "%s: the policy has more than %d conditions", path,
                                    CLST_POLICY_MAX_CONDITIONS);
            }
            c->leaves++;
            size_t ri;
            rc = add_node(c, CLST_POLICY_NODE_REF_VALUE, 2, path, &ri);
            if (rc == CLST_OK) {
                c->p->nodes[ri].op = CLST_POLICY_OP_ONE_OF;
                c->p->nodes[ri].operand = allowed;
                c->p->nodes[ri].att_type = type;
                rc = set_claim(c, ri, cv, path);
            }
            json_decref(cv);
            if (rc != CLST_OK) {
                return rc;
            }
        }
    }
    c->p->nodes[index].subtree = c->p->count - index;
    return CLST_OK;
}

static enum clst_status
parse_appraisal(struct pctx *c, const json_t *doc)
{
    static const char *const allowed[] = {"version", "authorizationRules", "referenceValues", NULL};
    enum clst_status rc = check_top(c, doc, allowed, "anyOf",
                                    "policy: 'anyOf' at the top level is a release policy; an "
                                    "appraisal policy has 'authorizationRules' and "
                                    "'referenceValues'");
    if (rc != CLST_OK) {
        return rc;
    }
    const json_t *rules = json_object_get(doc, "authorizationRules");
    if (rules == NULL) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "policy: 'authorizationRules' is required: {\"allOf\"|\"anyOf\": "
                            "[conditions]}");
    }
    size_t root;
    rc = add_node(c, CLST_POLICY_NODE_ROOT, 0, "", &root);
    if (rc != CLST_OK) {
        return rc;
    }
    const json_t *refs = json_object_get(doc, "referenceValues");
    if (refs != NULL) {
        rc = parse_reference(c, refs);
        if (rc != CLST_OK) {
            return rc;
        }
    }
    if (!json_is_object(rules)) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "authorizationRules: must be {\"allOf\"|\"anyOf\": [conditions]}, "
                            "got %s",
                            policy_type_name(rules));
    }
    const json_t *any = json_object_get(rules, "anyOf");
    const json_t *all = json_object_get(rules, "allOf");
    if (any == NULL && all == NULL) {
        return clst_err_set(c->err, CLST_E_MALFORMED,
                            "authorizationRules: must be {\"allOf\"|\"anyOf\": [conditions]}");
    }
    /* parse_condition checks the rest (both groups, unknown members) and adds the group at
     * nesting level 1. */
    rc = parse_condition(c, rules, "authorizationRules", 0, 1);
    if (rc != CLST_OK) {
        return rc;
    }
    c->p->nodes[root].subtree = c->p->count - root;
    return CLST_OK;
}

static void
nodes_free(struct clst_policy *p)
{
    for (size_t i = 0; i < p->count; i++) {
        free(p->nodes[i].path);
        free(p->nodes[i].claim);
        free(p->nodes[i].segs);
    }
    free(p->nodes);
    p->nodes = NULL;
    p->count = p->cap = 0;
}

void
clst_policy_free(struct clst_policy *policy)
{
    if (policy == NULL) {
        return;
    }
    nodes_free(policy);
    json_decref(policy->doc);
    free(policy);
}

/* Builds the node tree of `doc` into `p` (whose nodes must be empty). */
static enum clst_status
build(struct clst_policy *p, const json_t *doc, struct clst_err *err)
{
    struct pctx c = {p, err, 0};
    if (!json_is_object(doc)) {
        return clst_err_set(err, CLST_E_MALFORMED, "policy: must be a JSON object, got %s",
                            policy_type_name(doc));
    }
    enum clst_status rc =
        p->kind == CLST_POLICY_RELEASE ? parse_release(&c, doc) : parse_appraisal(&c, doc);
    if (rc == CLST_OK) {
        p->conditions = c.leaves;
    }
    return rc;
}

static bool
kind_valid(enum clst_policy_kind kind)
{
    return kind == CLST_POLICY_RELEASE || kind == CLST_POLICY_APPRAISAL;
}

/*
 * Makes a policy of `kind` (arguments already checked): from the caller's document `doc`, which
 * is validated and then copied, or, when `doc` is NULL, from the JSON text `text` of `size`
 * bytes (1..CLST_POLICY_MAX_SIZE). Then builds the node tree of the policy's own document and
 * computes its hash.
 */
static enum clst_status
make(const json_t *doc, const char *text, size_t size, enum clst_policy_kind kind,
     struct clst_policy **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct clst_policy *p = calloc(1, sizeof(*p));
    json_error_t jerr;

    if (p == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory parsing the policy");
        goto out;
    }
    p->kind = kind;
    if (doc != NULL) {
        /* Validate the caller's document first: its depth is then bounded (no unknown members,
         * no nested operands), so the deep copy below cannot recurse without bound. */
        rc = build(p, doc, err);
        if (rc != CLST_OK) {
            goto out;
        }
        nodes_free(p);
        p->doc = json_deep_copy(doc);
        if (p->doc == NULL) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory copying the policy");
            goto out;
        }
    } else {
        /* Duplicate members are refused: {"claim": "a", "equals": 1, "equals": 2} has no single
         * meaning. NULs inside strings are refused by jansson without JSON_ALLOW_NUL. */
        p->doc = json_loadb(text, size, JSON_REJECT_DUPLICATES, &jerr);
        if (p->doc == NULL) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "policy: not valid JSON: %s (line %d, column %d)", jerr.text,
                              jerr.line, jerr.column);
            goto out;
        }
    }
    rc = build(p, p->doc, err);
    if (rc != CLST_OK) {
        goto out;
    }
    rc = policy_compute_hash(p);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "cannot compute the policy hash");
        goto out;
    }
    *out = p;
    p = NULL;
    rc = CLST_OK;
out:
    clst_policy_free(p);
    return rc;
}

enum clst_status
clst_policy_from_json(const json_t *doc, enum clst_policy_kind kind, struct clst_policy **out,
                      struct clst_err *err)
{
    if (doc == NULL || out == NULL || !kind_valid(kind)) {
        return clst_err_set(err, CLST_E_INVAL, "clst_policy_from_json: invalid arguments");
    }
    return make(doc, NULL, 0, kind, out, err);
}

enum clst_status
clst_policy_parse(const char *text, size_t size, enum clst_policy_kind kind,
                  struct clst_policy **out, struct clst_err *err)
{
    if ((text == NULL && size > 0) || out == NULL || !kind_valid(kind)) {
        return clst_err_set(err, CLST_E_INVAL, "clst_policy_parse: invalid arguments");
    }
    if (size > CLST_POLICY_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT, "policy: %zu bytes; at most %d", size,
                            CLST_POLICY_MAX_SIZE);
    }
    if (size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "policy: empty");
    }
    return make(NULL, text, size, kind, out, err);
}

enum clst_policy_kind
clst_policy_get_kind(const struct clst_policy *policy)
{
    return policy->kind;
}

const json_t *
clst_policy_json(const struct clst_policy *policy)
{
    return policy->doc;
}

size_t
clst_policy_authority_count(const struct clst_policy *policy)
{
    return policy->authorities;
}

size_t
clst_policy_condition_count(const struct clst_policy *policy)
{
    return policy->conditions;
}
