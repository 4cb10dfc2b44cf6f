/* The reaper: the process that is always the parent of airlockd's
 * sandboxes once airlockd itself is gone.
 *
 * A sandbox's pid 1 (airlock-init) is cloned by airlockd and outlives it
 * (restart, upgrade, SIGKILL); an orphan is reparented to the nearest
 * subreaper, else to the host's pid 1, which in a container may never reap:
 * every re-adopted sandbox that later ended stayed a zombie. The next
 * airlockd cannot reap it (it is not its parent), and PR_SET_CHILD_SUBREAPER
 * cannot adopt after the fact. So the daemon runs as three processes:
 *
 *   front    the process that was started (systemd's main pid, the
 *            terminal's `airlock up`): forwards SIGTERM and SIGINT to the
 *            daemon, exits with the daemon's status;
 *   reaper   its child, in a session of its own, a subreaper
 *            (PR_SET_CHILD_SUBREAPER) that only waits: for the daemon, then
 *            for every orphan of the daemon (its sandboxes), and exits when
 *            it has no child left; comm "airlockd-reaper";
 *   daemon   the reaper's child: everything else (serve()).
 *
 * While the daemon runs it is its sandboxes' parent and reaps them itself;
 * when it ends they become the reaper's children, and the reaper reaps them
 * when they end, however long after. A SIGKILL of the front kills the
 * daemon too (the reaper sees the front go), so `kill -9 airlockd` still
 * means what it did. A reaper whose front is gone is itself reparented, so
 * in a container without a reaping pid 1 its own exit leaves one zombie
 * per daemon that stopped with sessions left, instead of one per session. */
#ifndef ALD_ADAPTERS_REAPER_H
#define ALD_ADAPTERS_REAPER_H

#include <sys/types.h>

/* Splits this (single-threaded) process into front, reaper and daemon.
 * Returns 0 in the daemon, which goes on to serve. In the front it returns
 * 1 once the daemon has ended, with *front_status the status to exit with
 * (the daemon's exit code, 128+N when killed by signal N). A negative code
 * when the split failed (nothing was started; the caller may serve without
 * a reaper). Must be called before any thread is started. */
int ald_reaper_split(int *front_status);

/* The pid an operator knows this airlockd by (systemd's main pid, the one
 * `kill` is sent to): the front's after the split, else our own. */
pid_t ald_reaper_front_pid(void);

#endif
