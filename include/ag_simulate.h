/* ag_simulate.h - `augur simulate` (tools/simulate.c), called by the offline tool's main. */
#ifndef AG_SIMULATE_H
#define AG_SIMULATE_H

/* Runs `augur simulate` with the tool's argv (argv[1] is "simulate"); returns the exit status. */
int simulate_main(int argc, char **argv);

#endif
