/*
 * kvnames.c: the layer number inside a key/value cache name (kvnames.h).
 */
#include <string.h>

#include "ir/kvnames.h"

long ir_kv_layer_of(const char *name, const char *prefix, const char *suffix)
{
    size_t np = strlen(prefix), ns = strlen(suffix), n = strlen(name);
    if (n <= np + ns || strncmp(name, prefix, np) || strcmp(name + n - ns, suffix))
        return -1;
    long l = 0;
    for (size_t i = np; i < n - ns; i++) {
        if (name[i] < '0' || name[i] > '9' || l > 100000)
            return -1;
        l = l * 10 + (name[i] - '0');
    }
    return l;
}
