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
    /* columns as wide as their longest entry */
    int w_name = 4, w_req = 8, w_pres = 9;
    for (size_t i = 0; i < oct_pass_count(); i++) {
        oct_pass_desc d;
        if (oct_pass_get(i, &d) != OCT_OK)
            continue;
        w_name = (int)strlen(d.name) > w_name ? (int)strlen(d.name) : w_name;
        w_req = (int)strlen(d.requires) > w_req ? (int)strlen(d.requires) : w_req;
        w_pres = (int)strlen(d.preserves) > w_pres ? (int)strlen(d.preserves) : w_pres;
    }
    printf("%-*s %-*s %-*s %s\n", w_name, "pass", w_req, "requires", w_pres,
           "preserves", "description");
    for (size_t i = 0; i < oct_pass_count(); i++) {
        oct_pass_desc d;
        if (oct_pass_get(i, &d) == OCT_OK)
            printf("%-*s %-*s %-*s %s\n", w_name, d.name, w_req, d.requires, w_pres,
                   d.preserves, d.summary);
    }
    puts("\nanalyses:");
    for (size_t i = 0; i < oct_analysis_count(); i++) {
        const char *name, *what;
        if (oct_analysis_get(i, &name, &what) == OCT_OK)
            printf("  %-13s %s\n", name, what);
    }
    return 0;
}
