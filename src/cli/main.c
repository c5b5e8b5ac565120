/*
 * main.c: `octet <command> ...` dispatch, --version, help, and the helpers
 * every command shares for diagnostics and options.  SIGINT and SIGTERM
 * remove the temporary files of writes in progress and then end the process
 * with the same signal, so an interrupted run leaves no partial output.
 */
#include <assert.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

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
 * print the same text.  Every command in CLI_COMMANDS needs an entry. */
static const struct {
    const char *name, *text;
} command_help[] = {
    {"inspect", "usage: octet inspect MODEL [--format=text|json|dot] [--full] [-o FILE|-]\n"
          "                     [--allow-external-data]\n"
          "Prints the model's graph.  MODEL is ONNX or text IR; '-' reads\n"
          "standard input.\n"
          "  --full         text form with every initializer's values and doc\n"
          "                 string in full (readable back by opt and inspect)\n"
          "  --format=text  one line per node: op, name, inputs and outputs with\n"
          "                 dtype and shape, attributes (default)\n"
          "  --format=json  one object per node and tensor\n"
          "  --format=dot   Graphviz; render with dot -Tsvg\n"
          "  -o FILE        write to FILE instead of standard output\n"},
    {"opt", "usage: octet opt MODEL -o OUT [--passes=a,b,...] [--verify-each]\n"
          "                 [--print-after=PASS[,PASS]]... [--print-after-all]\n"
          "                 [--time-passes] [--emit=onnx|text] [-f] [--allow-external-data]\n"
          "Loads MODEL (ONNX or text IR), verifies it, runs the listed passes\n"
          "(none by default; `octet passes` lists them) and saves it to OUT.\n"
          "'-' for MODEL reads standard input; '-o -' writes standard output.\n"
          "  --verify-each      verify the graph after every pass; name the pass\n"
          "                     that broke it\n"
          "  --print-after=P    print the text IR after pass P to stderr\n"
          "                     (repeatable, or a comma list)\n"
          "  --print-after-all  print the text IR after every pass to stderr\n"
          "  --time-passes      print each pass's wall time to stderr\n"
          "  --emit=text        write text IR (every value in full) instead of ONNX\n"
          "  -f, --force        write binary ONNX even to a terminal\n"
          "The output is written to a temporary file and renamed; it may not be MODEL.\n"},
    {"passes", "usage: octet passes\n"
          "Lists every pass `opt --passes` accepts, with the analyses it requires\n"
          "and preserves and a one-line description.\n"},
    {"run", "usage: octet run MODEL --input NAME=FILE ... [--output-dir DIR]\n"
          "                 [--format=npy|pb] [--repeat N --time] [--each-sample]\n"
          "                 [--jit [--threads N]] [--int8-rows]\n"
          "Runs MODEL with the reference interpreter and prints a summary of\n"
          "each output.  FILE is .npy or TensorProto .pb.  --jit compiles MODEL\n"
          "(same passes as `octet compile`) into this process with the LLVM\n"
          "backend and runs that instead, on N threads with --threads.  MODEL\n"
          "may also be OUT/NAME.so made by `octet compile --emit=so`, run\n"
          "through its signature (on N threads with --threads).  --each-sample\n"
          "runs once per leading-axis slice of the inputs that carry one more\n"
          "axis than the model input and stacks the outputs (not with --jit).\n"
          "--int8-rows computes MatMulNBits nodes with accuracy_level 4 with int8\n"
          "weights per column and int8 activations per row (pass mnb_int8_rows)\n"
          "instead of ONNX Runtime's int8 activations per block.\n"},
    {"quantize", "usage: octet quantize MODEL --calib DATA -o OUT.onnx [--report R.json] [--svg R.svg]\n"
          "       octet quantize MODEL --weights-only -o OUT.onnx [--weight-format=F]\n"
          "                      [--weight-scheme=sym|asym|sym-full] [--block-size=N]\n"
          "                      [--clip-search] [--format=qdq|matmulnbits]\n"
          "                      [--wo-compute=float|int8]\n"
          "                      [--algo=gptq|awq --calib DATA]\n"
          "       octet quantize MODEL --activations=dynamic -o OUT.onnx\n"
          "                      [--dynamic-granularity=tensor|row] [--weights=per-tensor]\n"
          "                      [--smooth[=ALPHA] --kv-cache=int8|fp8 --calib DATA]\n"
          "       octet quantize MODEL --precision=fp32 --kv-cache=int8|fp8 --calib DATA\n"
          "                      -o OUT.onnx\n"
          "  DATA: .npy (one model input), .npz (one array per input name), or a\n"
          "        folder of test_data_set_*/input_N.pb; an array with the model\n"
          "        input's rank is split along axis 0 into batch-1 samples, one\n"
          "        with an extra leading axis holds one whole input per index\n"
          "  --calib-samples N        use the first N samples\n"
          "  --method=minmax|percentile|entropy|mse   (default minmax)\n"
          "  --percentile=P           clipping percentile (implies percentile)\n"
          "  --precision=int8|fp8|auto   int8 (the default), fp8, or auto: per\n"
          "                           tensor, whichever has the higher measured SQNR\n"
          "  --precision=budget:DB    auto, then FP32 for the most sensitive\n"
          "                           tensors until the output SQNR reaches DB\n"
          "  --equalize               cross-layer equalization of Conv -> [Relu/\n"
          "                           MaxPool] -> Conv groups before calibration\n"
          "  --bias-correction        each quantized Conv/Gemm bias corrected by\n"
          "                           (W' - W) E[x] (E[x] from the calibration data);\n"
          "                           each of the two is kept only if it raises the\n"
          "                           output SQNR on the calibration data by 0.3 dB\n"
          "  --activations=u8|s8      u8 asymmetric (default) or s8 symmetric\n"
          "  --activations=dynamic    no calibration: MatMul/Gemm with constant\n"
          "                           weights become DynamicQuantizeLinear +\n"
          "                           MatMulInteger (ONNX Runtime's quantize_dynamic\n"
          "                           form), int8 weights; with\n"
          "                           --dynamic-granularity=row, s8 per-row scales\n"
          "  --smooth[=ALPHA]         SmoothQuant before static or dynamic W8A8:\n"
          "                           per input channel s = max|x|^ALPHA /\n"
          "                           max|w|^(1-ALPHA) (default 0.5) from --calib,\n"
          "                           folded into the norm gain or layer before\n"
          "                           (no op added; --smooth alone means 0.5);\n"
          "                           --smooth=auto searches ALPHA per layer on the\n"
          "                           calibration rows (--smoothquant: the same)\n"
          "  --kv-cache=int8|fp8      store the keys and values a decoder caches\n"
          "                           (present* outputs, past_key_values* inputs) as\n"
          "                           INT8 or FP8 E4M3 codes, one static scale per\n"
          "                           head from --calib, dequantized before the\n"
          "                           attention (alias --kv-cache-quant); with\n"
          "                           --precision=fp32 nothing else is quantized\n"
          "  --kv-scales-from=MODEL   with --precision=fp32 --kv-cache: the cache's\n"
          "                           scales are MODEL's (a prefill quantized with\n"
          "                           --kv-cache), no --calib: the pair shares a cache\n"
          "  --weights=per-channel|per-tensor|per-block   (default per-channel)\n"
          "  --block-size=N           blocked weights along K (MatMul/Gemm)\n"
          "  --fp8=e4m3|e5m2          FP8 format (default e4m3, i.e. E4M3FN)\n"
          "  --op-types=A,B  --exclude-op-types=A,B  --exclude-nodes=REGEX\n"
          "  --config=F.json          per-node overrides: {\"overrides\": [\n"
          "                           {\"node\"|\"op_type\"|\"regex\": \"...\",\n"
          "                            \"precision\": \"fp32\"|\"int8\"|\"fp8\"}]}\n"
          "  --save-stats=F.json  --load-stats=F.json   calibration cache\n"
          "  --input-shape NAME=1x3x224x224   --ignore-nonfinite\n"
          "  --progress=bar|lines|json|none   (stderr)\n"
          "  --weights-only           quantize only the weights of MatMul, Gemm,\n"
          "                           Conv and LSTM/GRU/RNN (W, R; int formats)\n"
          "                           (Gather too when named in --op-types or a\n"
          "                           --config rule), no calibration: integer\n"
          "                           initializers + DequantizeLinear\n"
          "  --weight-format=int8|uint8|int4|uint4|int2|uint2   (default int8)\n"
          "                           or a block format with its own blocks and\n"
          "                           scales: nvfp4 (16), mxfp4, mxfp8, q8_0 (32),\n"
          "                           q6_k (16, super-blocks of 256), q4_k (32, 256)\n"
          "  --weight-scheme=sym|asym symmetric (zero point 0, or the midpoint for\n"
          "                           uint) or a zero point per slice (default: sym\n"
          "                           for int, asym for uint); sym-full: int only,\n"
          "                           scale max|w| / 2^(bits-1), the largest\n"
          "                           magnitude exact (ONNX Runtime's RTN rule)\n"
          "  --block-size=16|32|64|128  with --weights-only, blocks along K (the last\n"
          "                           block short when K is not a multiple)\n"
          "  --clip-search            per slice, the scale with the least squared\n"
          "                           error over shrink factors 1.00 .. 0.50\n"
          "  --format=qdq|matmulnbits with --weights-only and --block-size: MatMul\n"
          "                           weights as DequantizeLinear (qdq, default) or\n"
          "                           as ONNX Runtime's MatMulNBits (com.microsoft)\n"
          "  --wo-compute=int8        with --format=matmulnbits and 4-bit weights: the\n"
          "                           nodes say accuracy_level 4, int8 activations per\n"
          "                           row and block (ONNX Runtime, octet run and the\n"
          "                           compiled kernel alike); default float\n"
          "  --algo=rtn|gptq|awq|awq+gptq\n"
          "                           with --weights-only: round to nearest (default),\n"
          "                           GPTQ (error feedback from the layer inputs'\n"
          "                           Hessians) or AWQ (activation-aware channel\n"
          "                           scales folded into the op before, then\n"
          "                           --clip-search in the integer formats), or\n"
          "                           awq+gptq (AWQ's scales, then\n"
          "                           GPTQ on the scaled weights); all need --calib\n"
          "  --act-order              with --algo=gptq or awq+gptq: rows by decreasing\n"
          "                           Hessian diagonal (block scales from the float\n"
          "                           weights)\n"
          "  --gptq-damp=P            GPTQ's dampening: P times the Hessian's mean\n"
          "                           diagonal added to it (default 0.01)\n"
          "  --gptq-refit             after GPTQ, each block's scale and zero point\n"
          "                           re-fitted to its codes by least squares of the\n"
          "                           layer's output error on the calibration inputs\n"
          "  --gptq-group-search      GPTQ's block scales (blocks, no --act-order)\n"
          "                           chosen by the loss GPTQ accrues on the block\n"
          "                           over the --clip-search factors\n"
          "  --gptq-float-target      GPTQ aims each layer at the float model's output\n"
          "                           (min ||X Q - Xf W||, Xf its input in the float\n"
          "                           model) instead of its own float weights' output\n"
          "  --engine=auto|jit|interp what runs the calibration samples: auto (the\n"
          "                           default) compiles the graph in-process with\n"
          "                           the LLVM backend when it can and uses the\n"
          "                           reference interpreter otherwise (with a note\n"
          "                           naming the node that did not compile); jit\n"
          "                           requires the compiled graph (exit 3 if a node\n"
          "                           does not compile); interp (or ref) always\n"
          "                           uses the interpreter\n"
          "Prints the per-tensor report (dtype, granularity, scale, zero point,\n"
          "method, clipped fraction, SQNR alone and accumulated against FP32).\n"},
    {"report", "usage: octet report FP32.onnx QDQ.onnx --data DATA [--json R.json]\n"
          "                    [--svg R.svg] [--samples N]\n"
          "Measures every QuantizeLinear/DequantizeLinear pair of QDQ.onnx\n"
          "against FP32.onnx on DATA (any tool's QDQ model); --svg draws it.\n"},
    {"stats", "usage: octet stats merge A.json B.json ... -o C.json\n"
          "Merges calibration statistics (--save-stats) of one model exactly.\n"},
    {"compile", "usage: octet compile MODEL -o OUT/NAME [--emit=obj,so,asm,llvm,header]\n"
          "                     [--input-shape NAME=DIMS] [-O0..-O3]\n"
          "                     [--mtriple T] [--mcpu C] [--mattr A]\n"
          "                     [--report FILE|-] [--keep-qdq] [--weights=embed|file]\n"
          "                     [--name SYM] [--kv-cache=inplace|none] [--bound NAME=N]\n"
          "                     [--layout=auto|nchw] [--int8-rows]\n"
          "Compiles MODEL (FP32 or QDQ) through LLVM to OUT/NAME.o (obj), .so,\n"
          ".s (asm), .ll (llvm) and the header NAME.h (default: obj,header).\n"
          "NAME, made a C identifier (out/my-model: my_model) or given with\n"
          "--name SYM, prefixes the symbols: int NAME_run(inputs, outputs,\n"
          "scratch), NAME_run_threads(..., pool), NAME_scratch_size,\n"
          "NAME_signature (JSON).\n"
          "Shapes must be static: bind symbolic dims with --input-shape.  Target:\n"
          "the host by default; --mcpu C compiles for CPU C's features only, --mattr\n"
          "adds (+f) or removes (-f) features, and --mcpu A,B,... makes one library\n"
          "with a variant per CPU chosen at load time (OCTET_FORCE_VARIANT=C forces\n"
          "one).  QDQ islands around Conv, MatMul and Gemm become\n"
          "integer kernels (the qdq_fuse pass; `octet opt --passes=qdq_fuse` shows\n"
          "the graph they compute bit for bit); --keep-qdq computes them in float\n"
          "between exact Q/DQ instead; on VNNI targets, chains of them (with 8-bit\n"
          "MaxPool and Concat) keep their activations NHWC, where the integer GEMM\n"
          "runs faster (--layout=nchw keeps every activation NCHW).  --report writes each node's kernel and\n"
          "instruction path.  --weights=file writes the weights to OUT/NAME.weights\n"
          "instead of embedding them; set NAME_weights to its bytes before running\n"
          "(`octet run OUT/NAME.so` loads it).  --kv-cache=inplace compiles a\n"
          "decode graph (past_key_values.{l}.* -> Concat -> present.{l}.*) so that\n"
          "each present output is a cache the caller keeps: a step writes only\n"
          "the new token's slot and does not read the past inputs (NAME.h says\n"
          "how to run it); a graph of another shape is an error saying why.\n"
          "NonZero, NonMaxSuppression and Unique outputs get buffers sized by a\n"
          "bound (--bound NAME=N, node or output NAME, declares a tighter one);\n"
          "NAME_actual_dims gives their length after a run, which returns 2 when\n"
          "a length exceeds its bound.  --int8-rows: MatMulNBits nodes with\n"
          "accuracy_level 4 convert their 4-bit blocks to int8 per column (one\n"
          "byte per weight in the library) and quantize their activations per\n"
          "row: an integer GEMM with one float step per output, faster prefill,\n"
          "other rounding than ONNX Runtime's per-block int8 (docs/compile.md);\n"
          "`octet run --int8-rows` computes the same bits.\n"},
    {"generate", "usage: octet generate MODEL (--prompt-ids 1,2,3 | [--prompt TEXT] --tokenizer TOK)\n"
          "                      -n N [--prefill PREFILL.onnx] [--jit] [--temperature T]\n"
          "                      [--top-k K] [--seed S] [--stop-id ID] [--cache-size P]\n"
          "                      [--kv-cache=inplace|none]\n"
          "Generates N tokens with a decoder-only language model.  MODEL is a\n"
          "decode graph in the ONNX Runtime GenAI / Hugging Face Optimum\n"
          "convention (input_ids, position_ids, attention_mask,\n"
          "past_key_values.{l}.key/value -> logits, present.{l}.key/value); the\n"
          "key/value cache is kept between steps.  --prefill runs the prompt\n"
          "through a prefill graph (input_ids [1,S]) instead of one token at a\n"
          "time.  With --tokenizer (llama2.c's tok.bin format) the prompt text\n"
          "is encoded (BOS first; no --prompt: BOS alone) and the prompt and\n"
          "generated text are printed; otherwise the generated ids are.\n"
          "Prefill and decode speed go to stderr.\n"
          "  --jit            compile the graphs in this process (LLVM)\n"
          "  --kv-cache=inplace  with --jit: the compiled decode step appends the\n"
          "                   new token's key/value to a cache it reads in place\n"
          "                   instead of copying the cache (an error saying why\n"
          "                   for a graph without the past -> Concat -> present\n"
          "                   pattern)\n"
          "  --temperature T  0 (default): greedy; T > 0 samples from\n"
          "                   softmax(logits / T), reproducibly per --seed\n"
          "  --top-k K        sample among the K likeliest tokens (0: all)\n"
          "  --stop-id ID     stop after generating ID (llama2.c: 1)\n"
          "  --cache-size P   cache slots when the graph leaves them symbolic\n"
          "                   (default 256)\n"
          "A prompt longer than the cache, an id outside the vocabulary, or a\n"
          "graph outside the convention is an error naming the input.\n"},
    {"eval", "usage: octet eval MODEL --perplexity TOKENS.npy [--window W]\n"
          "                  [--max-windows N] [--jit] [--int8-rows] [--report R.json]\n"
          "                  [--progress=bar|lines|none]\n"
          "Perplexity of a language model over a token stream (a 1-D integer\n"
          ".npy).  MODEL is a prefill graph (input_ids [1,S] -> logits\n"
          "[1,S,V]).  The stream is cut into non-overlapping windows of W tokens\n"
          "(default S), each run alone from an empty cache; tokens 1..W-1 of each\n"
          "window are scored given those before them.  Prints the windows, the\n"
          "mean negative log-likelihood, perplexity = exp(mean) and bits per\n"
          "token; --report writes them as JSON.\n"
          "  --max-windows N  score only the first N windows\n"
          "  --jit            compile the graph in this process (LLVM)\n"
          "  --int8-rows      MatMulNBits accuracy_level 4 per row (octet compile)\n"},
};

static const char *help_text(const char *cmd)
{
    for (size_t i = 0; i < sizeof command_help / sizeof command_help[0]; i++)
        if (strcmp(command_help[i].name, cmd) == 0)
            return command_help[i].text;
    return NULL;
}

static const char overview[] =
    "usage: octet <command> [options]\n"
    "       octet --version | help [COMMAND]\n\n"
    "Octet quantizes ONNX models and compiles them to native code.\n\n"
    "commands:\n";

static const char exit_codes[] =
    "\nlimits (every command; K/M/G/T suffixes for bytes; docs/reliability.md):\n"
    "  --max-file-size=2G --max-tensor-elems=4294967296 --max-init-bytes=4G\n"
    "  --max-nodes=1000000 --max-depth=16 --max-rank=16 --max-memory=16G\n"
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
            const char *text = help_text(cmd);
            assert(text != NULL); /* every command has a help text */
            fputs(text, stdout);
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
    /* Callers turn any failed allocation into OCT_EINTERNAL; when the first
     * error says why and it was the input (the --max-memory budget), exit
     * with that: a limit hit is bad input, not an internal error. */
    for (size_t i = 0; st == OCT_EINTERNAL && ctx && i < oct_diag_count(ctx); i++) {
        const oct_diag *d = oct_diag_get(ctx, i);
        if (d->severity == OCT_SEV_ERROR) {
            if (d->status == OCT_EINPUT)
                st = OCT_EINPUT;
            break;
        }
    }
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

/* Async-signal-safe: unlinks temporaries, then dies of the same signal
 * (SA_RESETHAND restored the default action on entry). */
static void on_fatal_signal(int sig)
{
    oct_remove_temp_files();
    raise(sig);
}

static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int main(int argc, char **argv)
{
    install_signal_handlers();
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
