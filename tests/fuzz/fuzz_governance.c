/*
 * Fuzz harness: governance rules files (clst_vault_governance_parse) and the release-policy
 * check behind "release-policy-non-debug" (clst_gov_policy_non_debug). The first byte picks
 * which; the rest is the input. Both must refuse or accept without crashing, and an accepted
 * rules file must count between 0 and the number of rules there are.
 */
#include <stdlib.h>
#include <string.h>

#include <cloister/vault_governance.h>

#include "vault/governance.h"

#define RULES_MAX 16 /* far above the number of rules the format has */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    if ((data[0] & 1) == 0) {
        struct clst_vault_governance *g = NULL;
        struct clst_err err;
        clst_err_clear(&err);
        enum clst_status st = clst_vault_governance_parse(text, n, "fuzz", &g, &err);
        if (st == CLST_OK) {
            if (g == NULL || clst_vault_governance_rule_count(g) > RULES_MAX) {
                abort();
            }
            clst_vault_governance_free(g);
        } else if (g != NULL || err.msg[0] == '\0') {
            abort(); /* a refusal leaves nothing behind and says why */
        }
        return 0;
    }
    /* The policy check takes NUL-terminated text. */
    char *policy = malloc(n + 1);
    if (policy == NULL) {
        return 0;
    }
    memcpy(policy, text, n);
    policy[n] = '\0';
    char why[256];
    why[0] = '\0';
    if (!clst_gov_policy_non_debug(policy, why, sizeof(why)) && why[0] == '\0') {
        abort(); /* a refusal names its reason */
    }
    free(policy);
    return 0;
}
