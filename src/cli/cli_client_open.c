/* Opening a vault client for the client commands. Apart from cli_client.c because it links the
 * HTTPS client (libcurl), which the lightweight cloister binary must not load. */
#include "cli/cli.h"

int
cli_vault_client_open(const char *cmd, const struct clst_client_config *cfg,
                      const char *token_file, struct clst_client **out)
{
    struct cli_vault_opts vo;
    struct clst_err err;
    clst_err_clear(&err);
    cli_vault_opts_init(&vo);
    vo.cfg = *cfg;
    vo.token_file = token_file;
    int rc = cli_vault_opts_finish(cmd, &vo);
    /* clst_client_new copies the configuration: the token buffer can go right after. */
    if (rc == CLI_EXIT_OK && clst_client_new(&vo.cfg, out, &err) != CLST_OK) {
        rc = cli_fail(cmd, &err);
    }
    cli_vault_opts_cleanup(&vo);
    return rc;
}
