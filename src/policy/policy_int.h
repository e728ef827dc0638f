/* Private to src/policy: the parsed policy tree and the evaluation result. */
#ifndef CLST_POLICY_INT_H
#define CLST_POLICY_INT_H

#include <cloister/policy.h>

/* Longest path of a node, "authorizationRules" or "anyOf[63]" followed by at most
 * CLST_POLICY_MAX_DEPTH ".allOf[255]" steps, or a reference entry
 * referenceValues.<type>["<claim>"]: the latter is the longest (19 + 64 + 4 + 256). */
#define POLICY_PATH_CAP 400

/*
 * One node of a parsed policy, stored in document order (pre-order): a node's children follow
 * it, and `subtree` counts the node and all its descendants, so the next sibling of node i is
 * i + subtree. Strings are owned by the node; `operand` and `authority`/`att_type` point into
 * the policy's own document.
 */
struct pnode {
    enum clst_policy_node kind;
    enum clst_policy_op op;
    unsigned depth; /* trace depth: root 0 */
    size_t subtree;
    char *path;
    char *claim; /* CLAIM and REF_VALUE */
    char *segs;  /* the claim split at '.', NULs between */
    size_t seg_count;
    const char *seg[CLST_POLICY_MAX_SEGMENTS]; /* into segs */
    const json_t *operand;                     /* CLAIM: the operand; REF_VALUE: the array */
    const char *authority;                     /* AUTHORITY */
    const char *att_type;                      /* REFERENCE children (REF_VALUE) */
};

struct clst_policy {
    enum clst_policy_kind kind;
    json_t *doc;
    struct pnode *nodes;
    size_t count;
    size_t cap;
    size_t authorities;
    size_t conditions;
    uint8_t hash[CLST_POLICY_HASH_SIZE];
    char hash_b64[CLST_POLICY_HASH_STR_SIZE];
};

/* One trace entry with what it owns; `pub` is what callers see. */
struct rtrace {
    struct clst_policy_trace pub;
    size_t span; /* entries in this entry's subtree, itself included */
    char *path;
    char *claim;
    char *missing_note;
    char *authority;
    char *issuer;
    char *att_type;
    json_t *expected;
    json_t *actual;
};

struct clst_policy_result {
    enum clst_policy_decision decision;
    enum clst_policy_kind kind;
    struct rtrace *trace;
    size_t count;
    size_t cap;
    size_t denial; /* index into trace; SIZE_MAX when allowed */
    char hash_b64[CLST_POLICY_HASH_STR_SIZE];
};

/* The canonical JSON text of a document (malloc'ed; free()), used by the hash. */
char *policy_canonical_json(const json_t *doc);
/* Computes policy->hash and policy->hash_b64 from policy->doc. */
enum clst_status policy_compute_hash(struct clst_policy *policy);

/* The JSON type of a value as it is named in explanations: "string", "number", "boolean",
 * "null", "object", "array". */
const char *policy_type_name(const json_t *v);
/* The same with an article: "a string", "an object", "null", ... */
const char *policy_type_article(const json_t *v);

/* Appends `s` with control characters, DEL and backslash escaped (\xHH, \\), so strings taken
 * from tokens cannot forge lines or terminal escapes in renderings. */
enum clst_status policy_append_safe(struct clst_buf *out, const char *s);
/* Appends a value as compact JSON cut at CLST_POLICY_RENDER_VALUE_MAX bytes, or as "<type>"
 * when redacting; NULL (missing) renders as "missing". */
enum clst_status policy_append_value(struct clst_buf *out, const json_t *v, bool redact);

#endif
