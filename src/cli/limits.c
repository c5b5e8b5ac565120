/*
 * limits.c: the resource-limit options every command accepts, parsed in
 * one place.  Each option raises (or lowers) one field of oct_limits; the
 * defaults are oct_default_limits() (src/ir/ctx.c) and are listed in
 * docs/reliability.md.  Byte sizes take an optional K, M, G or T suffix
 * (powers of 1024); counts are plain integers.  A value of 0, a negative
 * value, trailing junk or a value that overflows 64 bits is a usage error.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

typedef enum { LIM_BYTES, LIM_COUNT, LIM_COUNT32 } lim_kind;

static const struct {
    const char *flag;
    lim_kind kind;
    size_t offset;
} limit_opts[] = {
    {"--max-file-size", LIM_BYTES, offsetof(oct_limits, max_file_bytes)},
    {"--max-tensor-elems", LIM_COUNT, offsetof(oct_limits, max_tensor_elems)},
    {"--max-init-bytes", LIM_BYTES, offsetof(oct_limits, max_total_init_bytes)},
    {"--max-nodes", LIM_COUNT, offsetof(oct_limits, max_nodes)},
    {"--max-depth", LIM_COUNT32, offsetof(oct_limits, max_subgraph_depth)},
    {"--max-rank", LIM_COUNT32, offsetof(oct_limits, max_rank)},
    {"--max-memory", LIM_BYTES, offsetof(oct_limits, max_alloc_bytes)},
};

/* Parses a positive integer with an optional binary suffix (bytes only).
 * Overflow of the multiplication is rejected, never wrapped. */
static bool parse_amount(const char *s, bool bytes, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return false;
    unsigned shift = 0;
    if (bytes && *end) {
        const char *units = "KMGT";
        const char *u = strchr(units, *end);
        if (!u || end[1] != '\0')
            return false;
        shift = 10u * (unsigned)(u - units + 1);
        end++;
    }
    if (*end != '\0' || v == 0)
        return false;
    if (shift && v > (UINT64_MAX >> shift))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

int cli_limit_opt(const char *cmd, int argc, char **argv, int *i,
                  oct_limits *l)
{
    for (size_t k = 0; k < sizeof limit_opts / sizeof limit_opts[0]; k++) {
        size_t n = strlen(limit_opts[k].flag);
        if (strncmp(argv[*i], limit_opts[k].flag, n) != 0 ||
            (argv[*i][n] != '=' && argv[*i][n] != '\0'))
            continue;
        const char *flag = limit_opts[k].flag;
        const char *v = cli_opt_value(argc, argv, i, flag);
        uint64_t amount;
        bool bytes = limit_opts[k].kind == LIM_BYTES;
        if (!parse_amount(v, bytes, &amount) ||
            (limit_opts[k].kind == LIM_COUNT32 && amount > UINT32_MAX)) {
            cli_usage_error(cmd, "%s takes a positive %s", flag,
                            bytes ? "byte count (suffix K, M, G or T allowed)"
                                  : "integer");
            return -1;
        }
        char *field = (char *)l + limit_opts[k].offset;
        if (limit_opts[k].kind == LIM_COUNT32) {
            uint32_t v32 = (uint32_t)amount;
            memcpy(field, &v32, sizeof v32);
        } else {
            memcpy(field, &amount, sizeof amount);
        }
        return 1;
    }
    return 0;
}
