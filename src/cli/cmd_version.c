/* cloister version */
#include <stdio.h>

#include <cjose/version.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "cli/cli.h"

int
cmd_version(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: cloister version\n\nPrints Cloister's version and the versions of the "
               "libraries it runs on.\n");
        return CLI_EXIT_OK;
    }
    if (argc > 1) {
        return cli_usage_error("version", "unexpected argument '%s'", argv[1]);
    }
    printf("cloister %s\n", CLST_VERSION);
    printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("jansson %s\n", JANSSON_VERSION);
    printf("cjose %s\n", cjose_version());
    return CLI_EXIT_OK;
}
