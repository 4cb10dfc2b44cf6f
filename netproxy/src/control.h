/* airlock-netproxy's control mode (docs/control-protocol.md). */
#ifndef NP_CONTROL_H
#define NP_CONTROL_H

/* True when the command line asks for control mode (--control or
 * --control-path anywhere in argv). */
int np_control_wanted(int argc, char **argv);

/* The whole daemon in control mode: parses its options, serves sessions
 * added by airlockd until the control socket closes. Returns the exit
 * status (0 when the daemon closed the socket, 1 on a malformed frame or a
 * fatal error, 2 on bad usage). */
int np_control_main(int argc, char **argv);

#endif
