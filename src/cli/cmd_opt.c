/* placeholder: replaced by the real command */
#include "cli.h"
int cmd_opt(int argc, char **argv) { return cli_usage_error("opt", "not implemented yet"); }
