/* `airlockd up`: the single-machine default (see up.c). */
#ifndef ALD_UP_H
#define ALD_UP_H

#include <stddef.h>

/* Creates `state_dir` (0700) and, where missing, master.key, token.key,
 * gitproxy.json (github.com upstream, the credential store creds.store),
 * airlockd.json and the admin user with an API key printed on stdout once.
 * Writes the airlockd config path to config_out. 0 or AL_E*. */
int ald_up_prepare(const char *state_dir, char *config_out, size_t size);

#endif
