/*
 * Cloister vault governance: rules an operator sets for every key and secret of a vault, in the
 * way a cloud's policy service governs its key vaults (allowed key types and sizes, a maximum
 * validity, required expiry, exportable keys only with an immutable release policy, release
 * policies only for non-debug TEEs, required tags). The rules file format is documented in
 * docs/operations.md ("Governance rules").
 *
 * The vault enforces the rules on writes (key create, import, update, rotate; secret set,
 * update): a request that would break a rule is refused with 403 and the error code
 * "ForbiddenByPolicy", whose message names each broken rule, what was wrong and what to do.
 * clst_vault_governance_check_store() finds the objects that already break the rules (those
 * written before the rules were turned on): `cloister admin policy check`.
 *
 * A rules object is immutable once loaded and may be shared by any number of threads.
 */
#ifndef CLOISTER_VAULT_GOVERNANCE_H
#define CLOISTER_VAULT_GOVERNANCE_H

#include <cloister/core.h>
#include <cloister/vault_store.h>

/* The stable rule names (what the rules file, 403 messages and the check report use). */
#define CLST_GOV_RULE_KEY_TYPES         "key-types"
#define CLST_GOV_RULE_MAX_VALIDITY      "max-validity-days"
#define CLST_GOV_RULE_REQUIRE_EXPIRY    "require-expiry"
#define CLST_GOV_RULE_EXPORTABLE_POLICY "exportable-needs-immutable-policy"
#define CLST_GOV_RULE_NON_DEBUG         "release-policy-non-debug"
#define CLST_GOV_RULE_REQUIRED_TAGS     "required-tags"

/* The rules file's format version (member "version", optional). */
#define CLST_GOV_FILE_VERSION 1
/* A rules file larger than this is refused. */
#define CLST_GOV_FILE_MAX (64 * 1024)
/* Bounds of the rules. */
#define CLST_GOV_MAX_VALIDITY_DAYS_MAX 36500
#define CLST_GOV_SIZES_MAX             16 /* sizes listed for one key type */
#define CLST_GOV_TAGS_MAX              15 /* required tag names (a key holds at most 15 tags) */

/* The HTTP error code of a refusal. */
#define CLST_GOV_HTTP_CODE "ForbiddenByPolicy"

struct clst_vault_governance;

/*
 * Reads and validates a rules file (JSON, at most CLST_GOV_FILE_MAX bytes). Unknown members,
 * duplicate members, values of the wrong type or out of range are refused: CLST_E_MALFORMED
 * (CLST_E_IO when the file cannot be read) with a message naming the file, the field and the
 * problem, e.g. "governance rules rules.json: field 'max-validity-days': must be an integer
 * 1..36500 (got 0)".
 */
enum clst_status clst_vault_governance_load(const char *path, struct clst_vault_governance **out,
                                            struct clst_err *err);
/* The same from text; `source` names it in messages (e.g. the file name). */
enum clst_status clst_vault_governance_parse(const char *text, size_t size, const char *source,
                                             struct clst_vault_governance **out,
                                             struct clst_err *err);
void clst_vault_governance_free(struct clst_vault_governance *g);

/* How many rules are on (0 for a file that turns none on). */
size_t clst_vault_governance_rule_count(const struct clst_vault_governance *g);

/* One rule broken by one object version (what the check reports). Pointers live until the
 * callback returns. */
struct clst_vault_governance_finding {
    enum clst_vault_kind kind;
    const char *name;
    const char *version;
    const char *rule;   /* one of the CLST_GOV_RULE_* names */
    const char *detail; /* what is wrong and what to do */
};

/*
 * Checks every version of every live (not deleted) key and secret in `store` against the rules
 * and calls report(ctx, finding) for each rule an object version breaks, keys first, then
 * secrets, by name, versions oldest first. Reads only. *out_versions (may be NULL) receives the
 * number of versions checked, *out_findings (may be NULL) the number of findings reported.
 */
enum clst_status clst_vault_governance_check_store(
    const struct clst_vault_governance *g, struct clst_vault_store *store,
    void (*report)(void *ctx, const struct clst_vault_governance_finding *finding), void *ctx,
    size_t *out_versions, size_t *out_findings, struct clst_err *err);

#endif /* CLOISTER_VAULT_GOVERNANCE_H */
