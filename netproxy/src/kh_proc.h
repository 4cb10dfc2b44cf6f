/* The two processes of airlock-netproxy in control mode (docs/netproxy.md,
 * "Processes"): the key holder (what airlockd starts with --control) and
 * the front it execs (--front). */
#ifndef NP_KH_PROC_H
#define NP_KH_PROC_H

/* The key holder's main(): `ctl` is airlockd's control socket (open,
 * close-on-exec; closed here), `user`/`group` the proxy user from the
 * command line (NULL: stay as started), argv the whole command line (the
 * front gets it back without --control / --control-path, with --front and
 * --conns). Execs the front as a fresh image while still root, drops to
 * `user`, makes itself not dumpable, then routes control messages
 * (session_add's values stay here; every message goes on to the front,
 * whose ack is airlockd's answer) and serves the front's connections
 * (np_kh_conn_serve, one thread each) until airlockd closes the socket.
 * Exits the process when the front dies. Returns the exit status. */
int np_kh_proc_main(int ctl, const char *user, const char *group, int argc, char **argv);

/* The front's hardening, before it reads anything from airlockd: as root it
 * drops to `user` (NULL: "nobody") and `group` for good, otherwise it only
 * sets no_new_privs; dies with its parent (PDEATHSIG); loads the seccomp
 * filter (the shared list plus exec and id changes). 0 or a negative code
 * (al_error_last() says why). */
int np_front_harden(const char *user, const char *group);

#endif
