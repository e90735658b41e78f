// The distillery executable: a thin shell over libdistillery's CLI (cli/cli.h).
#include "cli/cli.h"

int main(int argc, char** argv) { return distillery::cli_main(argc, argv); }
