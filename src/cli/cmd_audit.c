/* cloister audit: placeholder until the command lands. */
#include <stdio.h>

#include "cli/cli.h"

int
cmd_audit(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "cloister audit: not available in this build\n");
    return CLI_EXIT_USAGE;
}
