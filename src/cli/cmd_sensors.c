/* STUB */
#include "cli.h"
int cmd_sensors(int argc, char **argv) { (void)argc; (void)argv; return 1; }
