/* airlock: the command-line entry point. */
#include "cli.h"

#include "airlock/log.h"
#include "airlock/version.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fputs("usage: airlock <command> [options]\n"
          "\n"
          "commands:\n"
          "  run      run one command in a sandbox     (airlock run --help)\n"
          "  doctor   check that the sandbox holds      (airlock doctor --help)\n"
          "  session  sessions of an airlockd server    (airlock session --help)\n"
          "  creds    real upstream credentials: add, list, rm (operators)\n"
          "  token    scoped tokens: mint, inspect (operators)\n"
          "  key      generate a master or token key (operators)\n"
          "  admin    airlockd users and API keys (operators; airlock admin --help)\n"
          "  up       run airlockd and its proxies here, set up on first use\n"
          "           (airlock up [--state-dir DIR] [--listen HOST:PORT])\n"
          "\n"
          "  --version  print the version and the commit it was built from\n",
          f);
}

/* Runs the helper program `name` with `argv`: `airlock creds|token|key`
 * run the operator tool airlock-creds (kept in its own binary so that
 * `airlock run` does not load libcurl and libcrypto), `airlock admin` runs
 * `airlockd admin`. The program is looked up beside this binary, then in the
 * build tree (`build_dir`), then in PATH. Returns only on failure. */
static int exec_tool(const char *name, const char *build_dir, char **argv)
{
    char self[PATH_MAX], path[2 * PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(path, sizeof(path), "%s/%s", self, name);
            if (access(path, X_OK) == 0)
                execv(path, argv);
            snprintf(path, sizeof(path), "%s/../%s/%s", self, build_dir, name);
            if (access(path, X_OK) == 0)
                execv(path, argv);
        }
    }
    execvp(name, argv);
    fprintf(stderr, "airlock: cannot run %s: %s\n", name, strerror(errno));
    return 125;
}

/* `airlock session`: see cli.h. */
int cmd_session(int argc, char **argv)
{
    /* argv[0] is "session": airlock-session gets ["airlock", the
     * subcommand, ...], and so names itself "airlock session". */
    argv[0] = "airlock";
    return exec_tool("airlock-session", "cli", argv);
}

int main(int argc, char **argv)
{
    al_log_init("airlock", AL_LOG_WARN);
    if (argc < 2) {
        usage(stderr);
        return 125;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "doctor") == 0)
        return cmd_doctor(argc - 1, argv + 1);
    /* The helpers get argv[0] "airlock": they name the command as the user
     * typed it ("airlock admin user ls", not "airlockd admin"). */
    if (strcmp(cmd, "creds") == 0 || strcmp(cmd, "token") == 0 || strcmp(cmd, "key") == 0) {
        argv[0] = "airlock";
        return exec_tool("airlock-creds", "creds", argv);
    }
    if (strcmp(cmd, "session") == 0)
        return cmd_session(argc - 1, argv + 1);
    if (strcmp(cmd, "admin") == 0 || strcmp(cmd, "up") == 0) {
        argv[0] = "airlock"; /* airlockd admin|up ... */
        return exec_tool("airlockd", "airlockd", argv);
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        puts("airlock " AL_VERSION_LINE);
        return 0;
    }
    fprintf(stderr, "airlock: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 125;
}
