// The distillery executable: a thin shell over libdistillery's CLI (trainer/cli.h).
#include "trainer/cli.h"

int main(int argc, char** argv) { return distillery::cli_main(argc, argv); }
