/* cloister admin policy: placeholder until the command lands. */
#include <stdio.h>

#include "cli/cli.h"

int
cmd_admin_policy(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "cloister admin policy: not available in this build\n");
    return CLI_EXIT_USAGE;
}
