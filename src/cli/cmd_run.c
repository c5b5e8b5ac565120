/* placeholder: replaced by the real command */
#include "cli.h"
int cmd_run(int argc, char **argv) { return cli_usage_error("run", "not implemented yet"); }
