/* `airlockd admin …`: users and API keys, straight on the state dir's
 * database (works while the daemon runs). */
#ifndef ALD_ADMIN_H
#define ALD_ADMIN_H

/* `<prog> admin ...`: argv[0] is "admin"; `prog` ("airlock" or
 * "airlockd", as the user typed it) names the command in messages. The
 * whole command line is checked before anything is opened or created:
 * --help prints the usage of the command named (exit 0), a mistake prints
 * why and exits 2, a listing on a state dir without a database exits 1
 * and creates nothing. Returns the exit status. */
int ald_admin_main(const char *prog, int argc, char **argv);

/* Opens (creating) the state dir and its database from --config/--state-dir
 * style arguments already parsed: `config` (may be NULL), `state_dir` (may
 * be NULL: the config's). Shared with the daemon. */
int ald_state_prepare(const char *state_dir);

#endif
