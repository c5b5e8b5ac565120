/* placeholder: replaced by the real command */
#include "cli.h"
int cmd_inspect(int argc, char **argv) { return cli_usage_error("inspect", "not implemented yet"); }
