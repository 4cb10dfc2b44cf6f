/* treeusage: run a command and report the resources of its whole process
 * tree, including processes that leave the tree.
 *
 *   treeusage OUTFILE COMMAND [ARG...]
 *
 * Appends one line to OUTFILE:
 *   <max RSS KiB> <user s> <system s> <wall s> <processes reaped> <status>
 *
 * GNU time reports ru_maxrss of the rusage wait4() returns for its child:
 * processes that are not waited for inside the tree (a double fork, a
 * sandbox's pid 1 its launcher does not reap) are missed. treeusage makes
 * itself a child subreaper, so every orphan of the tree is reparented to it,
 * and reaps until no child is left; getrusage(RUSAGE_CHILDREN) then covers
 * every process of the tree. ru_maxrss is still the largest single process
 * (including the pre-exec image of treeusage's own fork, about 1 MiB), not
 * a sum. The exit status is the command's (128+N if it died of signal N). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: treeusage OUTFILE COMMAND [ARG...]\n");
        return 2;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        fprintf(stderr, "treeusage: PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));
        return 2;
    }
    FILE *out = fopen(argv[1], "a");
    if (!out) {
        fprintf(stderr, "treeusage: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "treeusage: fork: %s\n", strerror(errno));
        fclose(out);
        return 2;
    }
    if (pid == 0) {
        fclose(out);
        execvp(argv[2], argv + 2);
        fprintf(stderr, "treeusage: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int status = 0, reaped = 0, code = 0;
    for (;;) {
        int st;
        pid_t r = waitpid(-1, &st, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: the whole tree is gone */
        }
        reaped++;
        if (r == pid) {
            status = st;
            clock_gettime(CLOCK_MONOTONIC, &t1);
        }
    }
    code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(out, "%ld %.6f %.6f %.6f %d %d\n", ru.ru_maxrss, seconds(ru.ru_utime),
            seconds(ru.ru_stime), wall, reaped, code);
    if (fclose(out) != 0) {
        fprintf(stderr, "treeusage: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    return code;
}
