/* Internal interfaces of `airlock session` (the airlock-session binary). */
#ifndef AIRLOCK_SESSION_CLI_H
#define AIRLOCK_SESSION_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stddef.h>

#include "airlock/buf.h"
#include "client.h"

/* Each subcommand gets argv[0] = its name and returns the process's exit
 * status: 0, CL_EXIT_API, CL_EXIT_USAGE, or (exec) the command's own. */
int session_cmd_exec(struct cl_client *c, int argc, char **argv);
int session_cmd_output(struct cl_client *c, int argc, char **argv);
int session_cmd_cp(struct cl_client *c, int argc, char **argv);
int session_cmd_events(struct cl_client *c, int argc, char **argv);
int session_cmd_policy(struct cl_client *c, int argc, char **argv);
/* `ls ID [PATH]`: lists the workspace directory PATH ("" the root; a
 * file: its own entry), names only or (`long_fmt`) type, mode, size,
 * mtime; `json_out`: the API's listing. */
int session_files_ls(struct cl_client *c, const char *id, const char *path, int long_fmt,
                     int json_out);
int session_cmd_shell(struct cl_client *c, int argc, char **argv);

/* Sets *out to "/v1/sessions/<id, percent-encoded><suffix>" (caller frees
 * with al_buf_free). */
int session_path(struct al_buf *out, const char *id, const char *suffix);

/* Writes all of `len` bytes to `fd`; AL_EIO (errno kept) on failure. */
int session_write_all(int fd, const void *data, size_t len);

/* Prints "airlock session: <what>" and the usage hint on stderr; returns
 * CL_EXIT_USAGE. */
int session_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints each string of `doc`'s "warnings" array (the server's warnings
 * about a settings document) on stderr as "airlock: warning: LINE", control
 * bytes shown as '?'. Nothing when there is none. */
void session_warnings_print(json_t *doc);

/* getopt_long for a command (argv[0] its name) that also takes --help and
 * -h: returns the option as getopt_long does, -1 at the end, 'h' after
 * printing the command's usage on stdout, or '?' after saying on stderr
 * which option is unknown or lacks its value. `shortopts` and `longopts`
 * must not use 'h' for anything else; longopts lists "help". */
int session_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);

/* Parses "K=V" (K non-empty) into a JSON object `obj` (json_t *). */
int session_kv_add(void *obj, const char *kv, const char *what);

/* Parses a non-negative integer; AL_EINVAL when `s` is not one. */
int session_parse_u64(unsigned long long *out, const char *s);

#endif
