/*
 * Cloister policy: the release-policy grammar of the cloud key vault's secure key release
 * (anyOf/allOf, claim conditions with equals/notEquals/less/lessOrEquals/greater/greaterOrEquals/
 * exists, authorities matched against the token's issuer) and the attestation appraisal policy
 * (authorization rules in the same condition grammar plus reference values per attestation
 * type). Every evaluation returns an explanation: the verdict of every node, and for a denial the
 * failing path ("anyOf[0].allOf[2]"), the claim, the operator, the expected and the actual value
 * (or "missing"), with values redactable. The grammar, every choice where the cloud's text is
 * ambiguous, and the canonical policy hash are documented in docs/policy.md.
 *
 * Ownership: `_free(NULL)` is a no-op. A parsed policy is immutable, so one policy may be
 * evaluated by several threads at once. A result keeps copies of the policy's strings and
 * operands and of the scalar claim values it reports, and references to the object and array
 * claim values (do not modify those while the result is in use), so it outlives both the claims
 * and the policy. Pointers returned by accessors live as long as the object they came from.
 */
#ifndef CLOISTER_POLICY_H
#define CLOISTER_POLICY_H

#include <cloister/core.h>

#include <jansson.h>

/* ---- limits (a policy beyond one is refused with CLST_E_LIMIT and a message) ----------------- */

#define CLST_POLICY_MAX_SIZE  (128 * 1024) /* bytes of policy JSON text */
#define CLST_POLICY_MAX_DEPTH 8            /* nested anyOf/allOf levels, the outermost group is 1 */
/* Claim conditions and reference-value entries, counted over the whole policy. */
#define CLST_POLICY_MAX_CONDITIONS  256
#define CLST_POLICY_MAX_NODES       1024 /* all nodes: authorities, groups, conditions */
#define CLST_POLICY_MAX_AUTHORITIES 64   /* members of a release policy's top-level "anyOf" */
#define CLST_POLICY_MAX_CLAIM_SIZE  256  /* bytes of a "claim" path */
#define CLST_POLICY_MAX_SEGMENTS    16   /* dot-separated segments of a "claim" path */
#define CLST_POLICY_MAX_VALUE_SIZE  4096 /* bytes of a string value or an authority */
#define CLST_POLICY_MAX_REF_VALUES  64   /* allowed values of one reference-value entry */
#define CLST_POLICY_MAX_TYPE_SIZE   64   /* bytes of an attestation type in referenceValues */

/* The only grammar version there is; a policy without "version" is read as this one. */
#define CLST_POLICY_VERSION "1.0.0"

/* The claim that selects the reference values of an appraisal policy. */
#define CLST_POLICY_TYPE_CLAIM "x-ms-attestation-type"

/* Canonical hash: SHA-256 of the canonical JSON (docs/policy.md), 43 base64url characters. */
#define CLST_POLICY_HASH_SIZE     32
#define CLST_POLICY_HASH_STR_SIZE 44 /* 43 characters and a NUL */

/* ---- parsing ------------------------------------------------------------------------------- */

enum clst_policy_kind {
    /* {"version":"1.0.0","anyOf":[{"authority":"<issuer>","allOf"|"anyOf":[conditions]}...]} */
    CLST_POLICY_RELEASE = 1,
    /* {"version":"1.0.0","authorizationRules":{"allOf"|"anyOf":[conditions]},
     *  "referenceValues":{"<attestation type>":{"<claim>":[allowed values]}}} */
    CLST_POLICY_APPRAISAL = 2,
};

struct clst_policy;

/*
 * Parses policy JSON text of at most CLST_POLICY_MAX_SIZE bytes (no NUL needed). Validation is
 * strict: duplicate members, unknown members and unknown operators, an empty anyOf/allOf, a
 * claim condition with no operator or with two, operands of the wrong type (objects, arrays and
 * null are never operands; less/greater take numbers, exists takes true or false), a version
 * other than "1.0.0" and every limit above are refused. The message names the path, e.g.
 * "anyOf[0].allOf[2]: unknown operator 'equal' (did you mean 'equals'?)". CLST_E_MALFORMED for
 * a grammar error, CLST_E_LIMIT for a limit.
 */
enum clst_status clst_policy_parse(const char *text, size_t size, enum clst_policy_kind kind,
                                   struct clst_policy **out, struct clst_err *err);
/* The same from a parsed document (the policy keeps its own deep copy). */
enum clst_status clst_policy_from_json(const json_t *doc, enum clst_policy_kind kind,
                                       struct clst_policy **out, struct clst_err *err);
void clst_policy_free(struct clst_policy *policy);

enum clst_policy_kind clst_policy_get_kind(const struct clst_policy *policy);
/* The document as parsed (borrowed; do not modify). */
const json_t *clst_policy_json(const struct clst_policy *policy);
/* Release policies: members of the top-level anyOf; appraisal policies: 0. */
size_t clst_policy_authority_count(const struct clst_policy *policy);
/* Conditions as counted against CLST_POLICY_MAX_CONDITIONS. */
size_t clst_policy_condition_count(const struct clst_policy *policy);

/*
 * The canonical hash of the policy: SHA-256 over the UTF-8 bytes jansson's
 * json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) produces for the parsed document. Member order
 * and whitespace do not change it; any change of a name or value does (1 and 1.0 differ: one is
 * an integer, the other a real). The _b64url form is what the attestation service puts in
 * x-ms-policy-hash (base64url without padding).
 */
enum clst_status clst_policy_hash(const struct clst_policy *policy,
                                  uint8_t out[static CLST_POLICY_HASH_SIZE]);
enum clst_status clst_policy_hash_b64url(const struct clst_policy *policy,
                                         char out[static CLST_POLICY_HASH_STR_SIZE]);

/* ---- evaluation ---------------------------------------------------------------------------- */

enum clst_policy_decision {
    CLST_POLICY_DENY = 0,
    CLST_POLICY_ALLOW = 1,
};

/* What a trace entry is. */
enum clst_policy_node {
    CLST_POLICY_NODE_ROOT = 1,  /* the whole policy */
    CLST_POLICY_NODE_AUTHORITY, /* one member of a release policy's top-level anyOf */
    CLST_POLICY_NODE_ANY_OF,    /* an anyOf group */
    CLST_POLICY_NODE_ALL_OF,    /* an allOf group */
    CLST_POLICY_NODE_CLAIM,     /* a claim condition */
    CLST_POLICY_NODE_REFERENCE, /* appraisal: "referenceValues", chosen by the claims' type */
    CLST_POLICY_NODE_REF_VALUE, /* appraisal: one claim and its allowed values */
};

enum clst_policy_op {
    CLST_POLICY_OP_NONE = 0,
    CLST_POLICY_OP_EQUALS,
    CLST_POLICY_OP_NOT_EQUALS,
    CLST_POLICY_OP_LESS,
    CLST_POLICY_OP_LESS_OR_EQUALS,
    CLST_POLICY_OP_GREATER,
    CLST_POLICY_OP_GREATER_OR_EQUALS,
    CLST_POLICY_OP_EXISTS,
    CLST_POLICY_OP_ONE_OF, /* reference values: equals one of the allowed values */
};

/* Why a node has its verdict. */
enum clst_policy_outcome {
    CLST_POLICY_HOLDS = 1,       /* the condition or group is true */
    CLST_POLICY_FAILS,           /* compared and false (for exists: present/absent as not wanted) */
    CLST_POLICY_MISSING,         /* the claim is not in the claims: false */
    CLST_POLICY_TYPE_MISMATCH,   /* claim and operand of different JSON types: false, whatever
                                    the operator (notEquals included) */
    CLST_POLICY_ISSUER_MISMATCH, /* authority: the token's issuer is another (or none) */
    CLST_POLICY_NO_REFERENCE,    /* appraisal: no reference values for this attestation type */
    CLST_POLICY_CHILDREN_FAIL,   /* a group, authority or the root: its children decided false */
};

/* One node's verdict. Every pointer lives as long as the result. */
struct clst_policy_trace {
    enum clst_policy_node node;
    unsigned depth;   /* 0 for the root, children one more than their parent */
    const char *path; /* "anyOf[0].allOf[2]"; "" for the root */
    bool verdict;
    enum clst_policy_outcome outcome;
    /* claim and reference-value nodes; a reference node has claim "x-ms-attestation-type" and
     * its value as actual (no operator, no expected) */
    const char *claim; /* the dotted claim path */
    enum clst_policy_op op;
    const json_t *expected;   /* the operand (an array of allowed values for ONE_OF) */
    const json_t *actual;     /* the claim's value; NULL when missing */
    const char *missing_note; /* when missing: why, e.g. "'x-ms-runtime' is a string, not an
                                 object"; NULL when simply absent */
    /* authority nodes */
    const char *authority; /* as written in the policy */
    const char *issuer;    /* the issuer it was compared with; NULL when there was none */
    /* reference and reference-value nodes */
    const char *attestation_type; /* the type the reference values were chosen by; NULL when the
                                     claims have no string x-ms-attestation-type */
};

struct clst_policy_result;

/*
 * Evaluates the policy against `claims` (a JSON object, normally a verified token's payload).
 * Every node is evaluated (no short-circuit), so the trace is complete.
 *
 * `issuer` is the verified token's issuer ("iss"); NULL takes the claims' "iss" when it is a
 * string. Release policies only: an authority matches when it equals the issuer byte for byte
 * after one trailing '/' is removed from each. The caller must have verified the token's
 * signature with keys that belong to that issuer: this function trusts the claims it is given.
 *
 * Returns CLST_OK when the policy allows, CLST_E_DENIED when it denies; in both cases *out
 * receives the result, which explains the decision (so `!= CLST_OK` is always "do not release").
 * Other statuses (CLST_E_INVAL for a claims value that is not an object, CLST_E_NOMEM) leave
 * *out untouched.
 */
enum clst_status clst_policy_evaluate(const struct clst_policy *policy, const json_t *claims,
                                      const char *issuer, struct clst_policy_result **out,
                                      struct clst_err *err);
void clst_policy_result_free(struct clst_policy_result *result);

enum clst_policy_decision clst_policy_result_decision(const struct clst_policy_result *result);
/* The trace, in document order (a node before its children). */
size_t clst_policy_result_trace_count(const struct clst_policy_result *result);
const struct clst_policy_trace *clst_policy_result_trace(const struct clst_policy_result *result,
                                                         size_t i);
/*
 * For a denial, the node that explains it; NULL when allowed. Release policies: when an
 * authority matches the issuer, the first failing condition under the first such authority
 * (descending into the first failing member of each failing group); when none matches, the
 * first authority (its outcome is CLST_POLICY_ISSUER_MISMATCH). Appraisal policies: the first
 * failing reference value, else the first failing authorization rule.
 */
const struct clst_policy_trace *clst_policy_result_denial(const struct clst_policy_result *result);
/* The hash of the policy that was evaluated (base64url, as clst_policy_hash_b64url). */
const char *clst_policy_result_policy_hash(const struct clst_policy_result *result);

/* ---- rendering ----------------------------------------------------------------------------- */

/* Replace every expected and actual value by its JSON type ("<string>", "<number>", ...). Claim
 * names, paths, operators, authorities and the issuer are never redacted. */
#define CLST_POLICY_REDACT 0x1u
/* JSON: include the whole trace ("trace": [...]), not only the denial. */
#define CLST_POLICY_WITH_TRACE 0x2u

/* Long values are cut in renderings: at most this many bytes of a value's JSON, then "...". */
#define CLST_POLICY_RENDER_VALUE_MAX 200

/* "equals", "notEquals", ..., "oneOf"; NULL for CLST_POLICY_OP_NONE. */
const char *clst_policy_op_name(enum clst_policy_op op);
/* "holds", "fails", "missing", "type-mismatch", "issuer-mismatch", "no-reference",
 * "children-fail" (also the "outcome" member of the JSON rendering). */
const char *clst_policy_outcome_name(enum clst_policy_outcome outcome);
/* "root", "authority", "anyOf", "allOf", "claim", "referenceValues", "referenceValue". */
const char *clst_policy_node_name(enum clst_policy_node node);

/*
 * One line for logs and error messages, e.g.
 * "denied at anyOf[0].allOf[2]: claim 'x-ms-sevsnpvm-is-debuggable' equals false: actual true"
 * or "allowed by anyOf[1] (authority https://attest.example)". Appended to `out` (terminated).
 */
enum clst_status clst_policy_result_summary(const struct clst_policy_result *result, unsigned flags,
                                            struct clst_buf *out);
/* The whole trace as indented human-readable text (one node a line, decision first), appended
 * to `out` (terminated). */
enum clst_status clst_policy_result_to_text(const struct clst_policy_result *result, unsigned flags,
                                            struct clst_buf *out);
/*
 * The result as JSON (for the 403 body and `cloister policy test --json`):
 *   {"decision":"deny","policyHash":"...","message":"<summary>",
 *    "denial":{"path":"anyOf[0].allOf[2]","node":"claim","claim":"...","operator":"equals",
 *              "outcome":"fails","expected":false,"expectedType":"boolean",
 *              "actual":true,"actualType":"boolean"},
 *    "trace":[{...one object per node, same members, plus "depth" and "verdict"...}]}
 * "denial" is absent when allowed, "trace" unless CLST_POLICY_WITH_TRACE. With
 * CLST_POLICY_REDACT "expected"/"actual" are left out and "redacted": true is set; the
 * "...Type" members stay. A missing claim has "actualType": "missing" and no "actual".
 */
enum clst_status clst_policy_result_to_json(const struct clst_policy_result *result, unsigned flags,
                                            json_t **out);

#endif /* CLOISTER_POLICY_H */
