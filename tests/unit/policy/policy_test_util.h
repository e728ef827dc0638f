/* Helpers shared by the policy unit tests (tests/unit/policy/test_*.c). */
#ifndef CLST_POLICY_TEST_UTIL_H
#define CLST_POLICY_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/policy.h>

#define CHECK_RC(expr, want)                                                                       \
    do {                                                                                           \
        enum clst_status rc_ = (expr);                                                             \
        if (rc_ != (want)) {                                                                       \
            print_error("%s:%d: %s returned %s, expected %s (message: %s)\n", __FILE__, __LINE__,  \
                        #expr, clst_status_str(rc_), clst_status_str(want), err.msg);              \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* Parses a policy that must be valid. */
static inline struct clst_policy *
pt_parse(enum clst_policy_kind kind, const char *text)
{
    struct clst_policy *p = NULL;
    struct clst_err err = {0};
    enum clst_status rc = clst_policy_parse(text, strlen(text), kind, &p, &err);
    if (rc != CLST_OK) {
        fail_msg("policy did not parse (%s: %s): %s", clst_status_str(rc), err.msg, text);
    }
    return p;
}

/* A policy that must be refused with `status` and a message equal to `msg`. */
static inline void
pt_parse_fails_(const char *file, int line, enum clst_policy_kind kind, const char *text,
                enum clst_status status, const char *msg)
{
    struct clst_policy *p = NULL;
    struct clst_err err = {0};
    enum clst_status rc = clst_policy_parse(text, strlen(text), kind, &p, &err);
    if (rc != status) {
        clst_policy_free(p);
        fail_msg("%s:%d: parse returned %s (%s), expected %s for %s", file, line,
                 clst_status_str(rc), err.msg, clst_status_str(status), text);
    }
    if (p != NULL) {
        fail_msg("%s:%d: out written on failure", file, line);
    }
    if (strcmp(err.msg, msg) != 0) {
        fail_msg("%s:%d: message\n  got:  %s\n  want: %s", file, line, err.msg, msg);
    }
}
#define pt_parse_fails(kind, text, status, msg)                                                    \
    pt_parse_fails_(__FILE__, __LINE__, kind, text, status, msg)

static inline json_t *
pt_json(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (j == NULL) {
        fail_msg("bad test JSON (%s): %s", jerr.text, text);
    }
    return j;
}

/* Evaluates `policy_text` against `claims_text` with `issuer` (NULL: the claims' iss). Returns
 * the decision; *out (may be NULL) receives the result. */
static inline enum clst_policy_decision
pt_eval(enum clst_policy_kind kind, const char *policy_text, const char *claims_text,
        const char *issuer, struct clst_policy_result **out)
{
    struct clst_policy *p = pt_parse(kind, policy_text);
    json_t *c = pt_json(claims_text);
    struct clst_policy_result *r = NULL;
    struct clst_err err = {0};
    enum clst_status rc = clst_policy_evaluate(p, c, issuer, &r, &err);
    if (rc != CLST_OK && rc != CLST_E_DENIED) {
        fail_msg("evaluate returned %s: %s", clst_status_str(rc), err.msg);
    }
    if (r == NULL) {
        fail_msg("no result");
    }
    enum clst_policy_decision d = clst_policy_result_decision(r);
    /* The status and the decision agree, always. */
    if ((rc == CLST_OK) != (d == CLST_POLICY_ALLOW)) {
        fail_msg("status %s but decision %d", clst_status_str(rc), (int)d);
    }
    clst_policy_free(p);
    json_decref(c);
    if (out != NULL) {
        *out = r;
    } else {
        clst_policy_result_free(r);
    }
    return d;
}

/* The summary line of a result (static buffer; for assertions). */
static inline const char *
pt_summary(const struct clst_policy_result *r, unsigned flags)
{
    static char text[2048];
    struct clst_buf b;
    clst_buf_init(&b, sizeof(text) - 1);
    if (clst_policy_result_summary(r, flags, &b) != CLST_OK) {
        fail_msg("summary failed");
    }
    memcpy(text, b.data, b.size);
    text[b.size] = '\0';
    clst_buf_cleanup(&b);
    return text;
}

#endif
