/* Internal interfaces of the `airlock` command. */
#ifndef AIRLOCK_CLI_H
#define AIRLOCK_CLI_H

#include "airlock/settings.h"
#include "airlock/strlist.h"

/* Where settings come from: --settings files, --env, and the config dir. */
struct cli_settings_opts {
    struct al_strlist files; /* --settings, in order */
    const char *env_name;    /* --env or AIRLOCK_ENV; NULL for none */
};

/* Loads the layered settings into `policy` (already initialised) and adds
 * the built-in defaults for `cwd` and `home`. On error prints
 * "airlock: <file>: <key>: <problem>" and returns a negative code. Sets
 * *out_dir (caller frees) to the folder settings.local.json belongs in. */
int cli_policy_load(struct al_policy *policy, char **out_dir, const struct cli_settings_opts *opts,
                    const char *cwd, const char *home);

/* Asks `question` on the controlling terminal; 1 for yes. Returns -1 when
 * there is no terminal. */
int cli_ask_yes_no(const char *question);

/* The caller's home ($HOME, else the passwd entry). Never NULL. */
const char *cli_home(void);

int cmd_run(int argc, char **argv);
int cmd_doctor(int argc, char **argv);

/* `airlock session ...` (argv[0] is "session"): runs the airlock-session
 * binary, which holds the libcurl client, with the same arguments. Returns
 * only on failure. */
int cmd_session(int argc, char **argv);

#endif
