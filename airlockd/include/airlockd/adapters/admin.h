/* `airlockd admin …`: users and API keys, straight on the state dir's
 * database (works while the daemon runs). */
#ifndef ALD_ADMIN_H
#define ALD_ADMIN_H

/* argv[0] is "admin". Returns the exit status. */
int ald_admin_main(int argc, char **argv);

/* Opens (creating) the state dir and its database from --config/--state-dir
 * style arguments already parsed: `config` (may be NULL), `state_dir` (may
 * be NULL: the config's). Shared with the daemon. */
int ald_state_prepare(const char *state_dir);

#endif
