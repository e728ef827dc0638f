/*
 * Private to src/vault: how the REST layer (rest_keys.c, rest_secrets.c) applies the governance
 * rules (include/cloister/vault_governance.h) to a write, and how the tests drive the checks.
 */
#ifndef CLST_VAULT_GOVERNANCE_INT_H
#define CLST_VAULT_GOVERNANCE_INT_H

#include <cloister/vault_governance.h>

#include "keymat.h"
#include "rest_int.h"

/* Bits selecting the rules to check. */
#define CLST_GOV_R_KEY_TYPES      (1u << 0)
#define CLST_GOV_R_MAX_VALIDITY   (1u << 1)
#define CLST_GOV_R_REQUIRE_EXPIRY (1u << 2)
#define CLST_GOV_R_EXPORTABLE     (1u << 3)
#define CLST_GOV_R_NON_DEBUG      (1u << 4)
#define CLST_GOV_R_REQUIRED_TAGS  (1u << 5)
#define CLST_GOV_R_ALL            0x3fu
#define CLST_GOV_RULE_COUNT       6 /* at most one violation per rule and object version */

#define CLST_GOV_DETAIL_MAX 448

struct clst_gov_violation {
    const char *rule; /* a CLST_GOV_RULE_* name */
    char detail[CLST_GOV_DETAIL_MAX];
};

/*
 * The rules of the vault; NULL when it has none. Only for a vault made by clst_vault_new() (the
 * rules live beside the vault object there; a struct clst_vault built by hand has none to read).
 */
const struct clst_vault_governance *clst_vault_governance_of(const struct clst_vault *v);

/*
 * The rules an update must pass, from the CLST_VAULT_UPDATE_* fields it changes: an update is
 * checked against the rules about what it changes (nbf/exp: validity and expiry; tags: required
 * tags; the release policy: the two policy rules), so that an object written before the rules can
 * still be disabled or fixed one member at a time.
 */
unsigned clst_gov_rules_for_update(unsigned fields);

/*
 * Checks one object version as it would be stored (`obj`: kind, name, attrs, tags, kty,
 * release_policy, policy_immutable; public_data when spec is NULL) against the rules in `rules`.
 * spec: the key's type and size (keys; NULL: read from obj->public_data). start: when the
 * validity starts if nbf is not set (the creation time: now for a new version). Writes at most
 * CLST_GOV_RULE_COUNT violations to out and returns how many. Fails closed: a stored key whose
 * size cannot be read or a release policy that does not parse is a violation of the rule that
 * needs it.
 */
size_t clst_gov_check(const struct clst_vault_governance *g, const struct clst_vault_object *obj,
                      const struct clst_vault_keymat_spec *spec, int64_t start, unsigned rules,
                      struct clst_gov_violation out[static CLST_GOV_RULE_COUNT]);

/* What rotation needs to give the new version an expiry: 0 / false when g is NULL. */
int64_t clst_gov_max_validity_seconds(const struct clst_vault_governance *g);
bool clst_gov_requires_expiry(const struct clst_vault_governance *g);

/*
 * Answers the request with 403 ForbiddenByPolicy naming every violation ("the vault's
 * governance rules refuse this: [rule] detail; [rule] detail") and returns CLST_OK (the handler
 * is done), or a failure status when the response cannot be made.
 */
enum clst_status clst_gov_reply(struct clst_vault_rctx *rc, const struct clst_gov_violation *v,
                                size_t count);

/*
 * The release-policy rule on its own (exposed for the tests): true when every token the policy
 * (JSON text) can admit comes from a TEE whose debug claim the policy pins to false. Otherwise
 * false with the reason and the fix in why.
 */
bool clst_gov_policy_non_debug(const char *policy_text, char *why, size_t why_size);

#endif /* CLST_VAULT_GOVERNANCE_INT_H */
