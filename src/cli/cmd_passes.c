/*
 * cmd_passes.c: `octet passes`: lists every registered pass (passes.def)
 * with its one-line description and the analyses it requires and
 * preserves, in registry order, then the analyses themselves.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "passes/passes.h"

int cmd_passes(int argc, char **argv)
{
    if (argc > 1)
        return cli_usage_error("passes", "unexpected argument '%s'", argv[1]);
    size_t n;
    const pass_info *reg = pass_registry(&n);
    printf("%-12s %-9s %-9s %s\n", "pass", "requires", "preserves", "description");
    for (size_t i = 0; i < n; i++) {
        char req[64], pres[64];
        printf("%-12s %-9s %-9s %s\n", reg[i].name,
               pass_analysis_names(reg[i].requires, req, sizeof req),
               pass_analysis_names(reg[i].preserves, pres, sizeof pres),
               reg[i].summary);
    }
    puts("\nanalyses:");
#define A(e, bit, name, what) printf("  %-10s %s\n", name, what);
    PASS_ANALYSES(A)
#undef A
    return 0;
}
