/* airlock: the command-line entry point. */
#include "cli.h"

#include "airlock/log.h"

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
          "  creds    real upstream credentials: add, list, rm (operators)\n"
          "  token    scoped tokens: mint, inspect (operators)\n"
          "  key      generate a master or token key (operators)\n",
          f);
}

/* `airlock creds|token|key ...` runs the operator tool airlock-creds, kept in
 * its own binary so that `airlock run` does not load libcurl and libcrypto.
 * It is looked up beside this binary, then in the build tree, then in PATH. */
static int exec_creds_tool(char **argv)
{
    char self[PATH_MAX], path[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            static const char *const rel[] = {"/airlock-creds", "/../creds/airlock-creds"};
            for (size_t i = 0; i < sizeof(rel) / sizeof(*rel); i++) {
                snprintf(path, sizeof(path), "%s%s", self, rel[i]);
                if (access(path, X_OK) == 0)
                    execv(path, argv);
            }
        }
    }
    execvp("airlock-creds", argv);
    fprintf(stderr, "airlock: cannot run airlock-creds: %s\n", strerror(errno));
    return 125;
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
    if (strcmp(cmd, "creds") == 0 || strcmp(cmd, "token") == 0 || strcmp(cmd, "key") == 0) {
        argv[0] = "airlock-creds";
        return exec_creds_tool(argv);
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        puts("airlock " AIRLOCK_VERSION);
        return 0;
    }
    fprintf(stderr, "airlock: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 125;
}
