/* cloister admin: placeholder until the command lands. */
#include <stdio.h>

#include "cli/cli.h"

int
cmd_admin(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "cloister admin: not available in this build\n");
    return CLI_EXIT_USAGE;
}
