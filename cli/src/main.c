/* airlock: the command-line entry point. */
#include "cli.h"

#include "airlock/log.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: airlock <command> [options]\n"
          "\n"
          "commands:\n"
          "  run      run one command in a sandbox     (airlock run --help)\n"
          "  doctor   check that the sandbox holds      (airlock doctor --help)\n",
          f);
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
