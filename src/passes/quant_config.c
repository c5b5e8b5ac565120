/*
 * quant_config.c: per-node precision overrides for `octet quantize
 * --config FILE.json` (format in quant.h).  Unknown keys and values are
 * errors naming the file: a misspelt override must not be ignored.
 *
 * A rule names a node as the input model had it: besides the node's own
 * name and op type, matching looks at its origins, the nodes the fuse pass
 * merged into it (a Gemm made of MatMul "fc" + Add "fc_bias" answers to
 * node "fc", node "fc_bias", op_type "MatMul", "Add" and "Gemm").  Each rule
 * counts the nodes it matched; quant_config_warn_unused turns a rule that
 * matched none into a warning naming the file, the rule's index (from 0)
 * and its text, so a rule that no longer applies is not silently ignored.
 */
#include <cjson/cJSON.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "passes/quant.h"

typedef struct rule {
    const char *node, *op_type, *pattern, *text;
    bool has_re;
    regex_t re;
    int force;              /* a quant_force */
    size_t hits;            /* nodes matched so far */
} rule;

struct quant_rules {
    rule *rules;
    size_t n;
    const char *path;
};

static oct_status bad(oct_ctx *ctx, const char *path, const char *what, const char *detail)
{
    return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, NULL,
                     "%s: %s%s%s", path, what, detail ? ": " : "", detail ? detail : "");
}

/* fp32, or a family of the default options (int8, fp8): a quant_force. */
static int parse_precision(const char *s)
{
    if (!strcmp(s, "fp32"))
        return QFORCE_FP32;
    quant_opts defaults = quant_default_opts();
    int k = quant_family_index(&defaults, s);
    return k >= 0 ? QFORCE_FAMILY + k : QFORCE_NONE;
}

static const char *force_name(int force)
{
    quant_opts defaults = quant_default_opts();
    int k = quant_force_family(force);
    return k >= 0 ? defaults.families[k].name : "fp32";
}

oct_status quant_config_load(oct_ctx *ctx, const char *path, quant_rules **out)
{
    uint8_t *data;
    size_t len;
    oct_status st = ir_read_file(ctx, path, 64u << 20, &data, &len);
    if (st)
        return st;
    cJSON *root = cJSON_ParseWithLength((const char *)data, len);
    oct_free(ctx, data, len);
    if (!root)
        return bad(ctx, path, "not JSON", NULL);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "overrides");
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
        if (strcmp(item->string, "overrides") != 0) {
            st = bad(ctx, path, "unknown key", item->string);
            break;
        }
    if (!st && !cJSON_IsArray(list))
        st = bad(ctx, path, "expected {\"overrides\": [...]}", NULL);
    quant_rules *r = st ? NULL : ir_alloc(ctx, sizeof *r);
    if (!st && !r)
        st = OCT_EINTERNAL;
    if (!st) {
        r->rules = ir_alloc_array(ctx, (size_t)cJSON_GetArraySize(list) + 1, sizeof *r->rules);
        r->path = ir_strdup(ctx, path);
        if (!r->rules || !r->path)
            st = OCT_EINTERNAL;
    }
    const cJSON *rules = st ? NULL : list;
    cJSON_ArrayForEach(item, rules) {
        rule *ru = &r->rules[r->n];
        memset(ru, 0, sizeof *ru);
        const cJSON *f;
        int selectors = 0;
        cJSON_ArrayForEach(f, item) {
            const char *k = f->string;
            if (!cJSON_IsString(f)) {
                st = bad(ctx, path, "override values are strings", k);
                break;
            }
            char *v = ir_strdup(ctx, f->valuestring);
            if (!v) {
                st = OCT_EINTERNAL;
                break;
            }
            if (!strcmp(k, "node"))
                ru->node = v, selectors++;
            else if (!strcmp(k, "op_type"))
                ru->op_type = v, selectors++;
            else if (!strcmp(k, "regex"))
                ru->pattern = v, selectors++;
            else if (!strcmp(k, "precision")) {
                ru->force = parse_precision(v);
                if (!ru->force) {
                    st = bad(ctx, path, "precision must be fp32, int8 or fp8", v);
                    break;
                }
            } else {
                st = bad(ctx, path, "unknown key in an override", k);
                break;
            }
        }
        if (st)
            break;
        if (selectors != 1 || !ru->force) {
            st = bad(ctx, path, "each override needs one of node, op_type or regex, "
                     "and a precision", NULL);
            break;
        }
        if (ru->pattern) {
            if (regcomp(&ru->re, ru->pattern, REG_EXTENDED | REG_NOSUB) != 0) {
                st = bad(ctx, path, "bad regular expression", ru->pattern);
                break;
            }
            ru->has_re = true;
        }
        ru->text = ir_sprintf(ctx, "--config: %s '%s' -> %s",
                              ru->node ? "node" : ru->op_type ? "op_type" : "regex",
                              ru->node ? ru->node : ru->op_type ? ru->op_type : ru->pattern,
                              force_name(ru->force));
        r->n++;
    }
    cJSON_Delete(root);
    if (st) {
        quant_config_free(r);
        return st;
    }
    *out = r;
    return OCT_OK;
}

/* Does rule ru select a node called `name` of type `op_type`? */
static bool rule_hits(const rule *ru, const char *name, const char *op_type)
{
    if (ru->node)
        return strcmp(ru->node, name) == 0;
    if (ru->op_type)
        return strcmp(ru->op_type, op_type) == 0;
    return regexec(&ru->re, name, 0, NULL, 0) == 0;
}

int quant_config_match(quant_rules *r, const ir_node *n, const char **why)
{
    int f = QFORCE_NONE;
    for (size_t i = 0; r && i < r->n; i++) {
        rule *ru = &r->rules[i];
        bool hit = rule_hits(ru, n->name ? n->name : "", n->op_type);
        for (int k = 0; !hit && k < n->n_origins; k++)
            hit = rule_hits(ru, n->origins[k].name, n->origins[k].op_type);
        if (hit) {
            ru->hits++;
            f = ru->force;
            *why = ru->text;
        }
    }
    return f;
}

void quant_config_warn_unused(const quant_rules *r, oct_ctx *ctx)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (!r->rules[i].hits)
            oct_warning(ctx, NULL, "%s: override %zu (%s) matched no quantizable node; "
                        "it has no effect", r->path, i, r->rules[i].text + strlen("--config: "));
}

void quant_config_free(quant_rules *r)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (r->rules[i].has_re)
            regfree(&r->rules[i].re);
}
