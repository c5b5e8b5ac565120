/*
 * cmd_passes.c: `octet passes`: lists every registered pass (passes.def)
 * with its one-line description and the analyses it requires and
 * preserves, in registry order, then the analyses themselves.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cmd_passes(int argc, char **argv)
{
    if (argc > 1)
        return cli_usage_error("passes", "unexpected argument '%s'", argv[1]);
    printf("%-12s %-9s %-9s %s\n", "pass", "requires", "preserves", "description");
    for (size_t i = 0; i < oct_pass_count(); i++) {
        oct_pass_desc d;
        if (oct_pass_get(i, &d) == OCT_OK)
            printf("%-12s %-9s %-9s %s\n", d.name, d.requires, d.preserves, d.summary);
    }
    puts("\nanalyses:");
    for (size_t i = 0; i < oct_analysis_count(); i++) {
        const char *name, *what;
        if (oct_analysis_get(i, &name, &what) == OCT_OK)
            printf("  %-10s %s\n", name, what);
    }
    return 0;
}
