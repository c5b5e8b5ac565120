/*
 * main.c: `octet <command> ...` dispatch, --version, help, and the helpers
 * every command shares for diagnostics and options.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
#define CMD(name, fn, summary) {#name, fn, summary},
    CLI_COMMANDS(CMD)
#undef CMD
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* Long help of each command; kept here so `octet help X` and `X --help`
 * print the same text. */
static const char *const command_help[] = {
    [0] = "usage: octet inspect MODEL [--format=text|json|dot] [-o FILE|-]\n"
          "                     [--allow-external-data]\n"
          "Prints the model's graph.  MODEL may be '-' for standard input.\n"
          "  --format=text  one line per node: op, name, inputs and outputs with\n"
          "                 dtype and shape, attributes (default)\n"
          "  --format=json  one object per node and tensor\n"
          "  --format=dot   Graphviz; render with dot -Tsvg\n"
          "  -o FILE        write to FILE instead of standard output\n",
    [1] = "usage: octet opt MODEL -o OUT.onnx [--allow-external-data]\n"
          "Loads MODEL, verifies it and saves it to OUT.onnx.  '-' for MODEL\n"
          "reads standard input; '-o -' writes standard output.  The output is\n"
          "written to a temporary file and renamed; it may not be MODEL.\n",
    [2] = "usage: octet run MODEL --input NAME=FILE ... [--output-dir DIR]\n"
          "                 [--format=npy|pb] [--repeat N --time] [--each-sample]\n"
          "Runs MODEL with the reference interpreter and prints a summary of\n"
          "each output.  FILE is .npy or TensorProto .pb.\n",
};
_Static_assert(sizeof command_help / sizeof command_help[0] == N_COMMANDS,
               "one help text per command");

static const char overview[] =
    "usage: octet <command> [options]\n"
    "       octet --version | help [COMMAND]\n\n"
    "Octet quantizes ONNX models and compiles them to native code.\n\n"
    "commands:\n";

static const char exit_codes[] =
    "\nexit codes: 0 ok, 1 usage error, 2 bad input, 3 unsupported, "
    "4 internal error\n";

bool cli_help(const char *cmd)
{
    if (!cmd) {
        fputs(overview, stdout);
        for (size_t i = 0; i < N_COMMANDS; i++)
            printf("  %-10s %s\n", commands[i].name, commands[i].summary);
        fputs(exit_codes, stdout);
        return true;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0) {
            fputs(command_help[i], stdout);
            fputs(exit_codes, stdout);
            return true;
        }
    return false;
}

bool cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

const char *cli_opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] == '\0' && *i + 1 < argc) {
        (*i)++;
        return argv[*i];
    }
    return NULL;
}

void cli_print_diags(const oct_ctx *ctx)
{
    char buf[2048];
    for (size_t i = 0; i < oct_diag_count(ctx); i++) {
        oct_diag_format(oct_diag_get(ctx, i), buf, sizeof buf);
        fprintf(stderr, "octet: %s\n", buf);
    }
}

int cli_finish(oct_ctx *ctx, oct_status st)
{
    if (ctx)
        cli_print_diags(ctx);
    if (st == OCT_OK && ctx && oct_error_count(ctx))
        st = OCT_EINTERNAL; /* an error recorded but not returned is a bug */
    oct_ctx_free(ctx);
    return (int)st;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "octet %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'octet help %s')\n", cmd);
    va_end(ap);
    return OCT_EUSAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_help(NULL);
        return OCT_EUSAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("octet %s\n", OCTET_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || cli_is_help(cmd)) {
        const char *topic = argc > 2 && strcmp(cmd, "help") == 0 ? argv[2] : NULL;
        if (!cli_help(topic)) {
            fprintf(stderr, "octet: no command '%s'\n", topic);
            return OCT_EUSAGE;
        }
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0) {
            for (int a = 2; a < argc; a++)
                if (cli_is_help(argv[a])) {
                    cli_help(cmd);
                    return 0;
                }
            return commands[i].fn(argc - 1, argv + 1);
        }
    fprintf(stderr, "octet: unknown command '%s' (see 'octet help')\n", cmd);
    return OCT_EUSAGE;
}
