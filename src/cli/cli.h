/*
 * cli.h: the `octet` command line.  The only code that prints to the
 * terminal or turns a status into an exit code.  One file per command,
 * listed in CLI_COMMANDS below.
 */
#ifndef OCTET_CLI_H
#define OCTET_CLI_H

#include <stdbool.h>

#include "octet/octet.h"
#include <octet_runtime.h> /* the runtime library's public header */

/* Ranks the command line handles in signatures and --each-sample. */
#define CLI_MAX_RANK 64

/* CMD(name, function, "one-line summary") */
#define CLI_COMMANDS(CMD)                                                       \
    CMD(inspect, cmd_inspect, "print a model's graph as text, JSON or DOT")     \
    CMD(opt, cmd_opt, "load, verify, run passes and save a model")              \
    CMD(passes, cmd_passes, "list the passes with what they require and preserve") \
    CMD(run, cmd_run, "run a model on input tensors")                          \
    CMD(quantize, cmd_quantize, "calibrate and quantize a model to QDQ ONNX")   \
    CMD(report, cmd_report, "per-tensor quantization error of a QDQ model")    \
    CMD(stats, cmd_stats, "merge calibration statistics files")            \
    CMD(compile, cmd_compile, "compile a model to native code through LLVM")  \
    CMD(generate, cmd_generate, "generate text with a language model")         \
    CMD(eval, cmd_eval, "perplexity of a language model on a token stream")

#define CMD(name, fn, summary) int fn(int argc, char **argv);
CLI_COMMANDS(CMD)
#undef CMD

/* cmd_run.c, shared with run_so.c: a one-line summary of an output (dtype,
 * shape, min/max/mean, argmax for small tensors, NaN count); a monotonic
 * clock in ms; the median and minimum of `repeat` timings (sorts them). */
void cli_print_summary(const oct_tensor *t, const char *name);
double cli_now_ms(void);
/* Writes t as DIR/NAME.npy (or .pb), NAME made a safe file name; creates
 * the output folder. */
oct_status cli_write_output(oct_ctx *ctx, const char *dir, const char *name,
                            const oct_tensor *t, bool pb);
oct_status cli_make_output_dir(oct_ctx *ctx, const char *dir);
void cli_print_timing(double *times, long repeat);

/* Prints a quantization report's table on stdout and writes it as JSON
 * and SVG where those paths are given (NULL: not). */
oct_status cli_report_out(oct_ctx *ctx, const oct_report *rep, const char *json,
                          const char *svg);

/* Prints every diagnostic recorded in ctx to stderr, prefixed "octet: ". */
void cli_print_diags(const oct_ctx *ctx);
/* Prints diagnostics and returns the exit code for `st`. */
int cli_finish(oct_ctx *ctx, oct_status st);
/* Usage error: prints "octet CMD: message" and a hint, returns 1. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints the help text of a command (or the overview for NULL); returns
 * false if there is no such command. */
bool cli_help(const char *cmd);
/* True if argv[i] is "--help" or "-h". */
bool cli_is_help(const char *arg);
/* Matches "--name=value" or "--name value"; advances *i past the value.
 * Returns the value or NULL. */
const char *cli_opt_value(int argc, char **argv, int *i, const char *name);
/* run_so.c: the signature-driven runner shared by `octet run OUT/NAME.so`
 * (entry points from dlsym) and `octet run MODEL --jit` (from the LLJIT). */
typedef int (*cli_run_fn)(const void *const *inputs, void *const *outputs, void *scratch);
typedef int (*cli_run_threads_fn)(const void *const *inputs, void *const *outputs,
                                  void *scratch, octrt_pool *pool);
/* The entries of a model compiled with a symbolic dimension (its
 * signature's "dims"): dims[] gives each one's value. */
typedef int (*cli_run_dims_fn)(const int64_t *dims, const void *const *inputs,
                               void *const *outputs, void *scratch);
typedef int (*cli_run_dims_threads_fn)(const int64_t *dims, const void *const *inputs,
                                       void *const *outputs, void *scratch,
                                       octrt_pool *pool);
typedef unsigned long long (*cli_scratch_size_for_fn)(const int64_t *dims);
/* NAME_actual_dims of a model with data-dependent output lengths (its
 * signature's outputs with a "length_axis"): output k's dims after a run. */
typedef int (*cli_output_dims_fn)(const void *scratch, int k, int64_t *dims);

/* Gives the tensor fed to model input `name` (owned by the provider, alive
 * until the run ends), or a diagnostic (a missing input is OCT_EUSAGE). */
typedef oct_status (*cli_input_fn)(void *user, oct_ctx *ctx, const char *name,
                                   const oct_tensor **out);

typedef struct cli_compiled_run {
    const char *sym_base;            /* NAME, for messages */
    const char *signature;           /* NAME_signature JSON */
    cli_run_fn run;
    cli_run_threads_fn run_threads;  /* NULL if the model has none */
    /* NULL unless the signature has symbolic "dims" */
    cli_run_dims_fn run_dims;
    cli_run_dims_threads_fn run_dims_threads;
    cli_scratch_size_for_fn scratch_size_for;
    cli_output_dims_fn output_dims;  /* NULL unless some output has a length_axis */
    cli_input_fn get_input;
    void *input_user;
    const char *output_dir;          /* NULL: no files */
    bool pb;                         /* write .pb instead of .npy */
    long repeat;                     /* >= 1 */
    bool timing;                     /* print the median time */
    int threads;                     /* > 1: run_threads on a pool */
    bool each_sample;                /* inputs with one more leading axis
                                      * are samples: one run each, outputs
                                      * stacked */
} cli_compiled_run;

/* Checks each input against the signature (dtype, rank, dims), allocates
 * outputs and a 64-byte-aligned scratch, calls run (or run_threads on a
 * pool of `threads` threads) `repeat` times, then prints the timing (if
 * asked) and one summary line per output and writes the outputs. */
oct_status cli_run_compiled(oct_ctx *ctx, const cli_compiled_run *r);


/* run_so.c: `octet run OUT/NAME.so`: runs a compiled model through its
 * signature with NAME=FILE inputs (on `threads` threads through
 * NAME_run_threads if more than 1, once per sample with each_sample);
 * returns the exit code. */
typedef struct cli_so_run {
    const char *const *inputs;       /* NAME=FILE arguments */
    size_t n_inputs;
    const char *output_dir;          /* NULL: no files */
    bool pb;
    long repeat;
    bool timing;
    int threads;
    bool each_sample;
} cli_so_run;
int cli_run_so(const char *path, const cli_so_run *opt);
/* run_so.c: OUT/NAME.so dlopen()ed with its entry points found and its
 * weights file (--weights=file) loaded, for `octet run` and `octet
 * generate`; cli_so_close releases it (and a cli_so_lib cli_so_open
 * failed on: it leaves nothing open). */
typedef struct cli_so_lib {
    void *lib;
    char *name;                      /* NAME */
    const char *signature;           /* NAME_signature */
    cli_run_fn run;
    cli_run_threads_fn run_threads;  /* NULL if absent */
    cli_run_dims_fn run_dims;        /* symbolic dims only */
    cli_run_dims_threads_fn run_dims_threads;
    cli_scratch_size_for_fn scratch_size_for;
    cli_output_dims_fn output_dims;  /* data-dependent lengths only */
    uint64_t scratch_size;           /* the signature's */
    void *weights;                   /* the loaded weights file, or NULL */
} cli_so_lib;
oct_status cli_so_open(oct_ctx *ctx, const char *path, cli_so_lib *out);
void cli_so_close(cli_so_lib *l);
/* Resource-limit options (--max-file-size, --max-tensor-elems,
 * --max-init-bytes, --max-nodes, --max-depth, --max-rank, --max-memory;
 * src/cli/limits.c, docs/reliability.md): if argv[*i] is one, stores it in
 * *l and returns 1 (advancing *i past a separate value); returns 0 if it is
 * not a limit option and -1 after printing a usage error for a bad value. */
int cli_limit_opt(const char *cmd, int argc, char **argv, int *i,
                  oct_limits *l);

#endif
