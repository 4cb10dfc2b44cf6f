/* helper: workloads for the `airlock run` limit tests.
 *
 *   helper bomb DEPTH [TAG]  binary fork tree DEPTH levels deep (2^DEPTH - 1
 *                       processes at most); every process stays alive. Prints
 *                       "bomb: created N processes, M forks failed (ERRNO)"
 *                       once every process has tried its forks, then exits 0.
 *   helper hog MAXMB    touches memory 1 MiB at a time up to MAXMB, printing
 *                       "hog: N MiB" every 16 MiB; exits 0 if it got all of it.
 *   helper sleep TAG    waits forever (TAG only marks it for pgrep).
 *
 * Bounded on purpose: if a limit under test does not hold, the test fails
 * instead of the host.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* What a subtree did: processes alive in it, forks that failed, the first
 * fork errno. */
struct tally {
    long created;
    long failed;
    int first_errno;
};

/* Forks up to two children (each a subtree), waits until every child has
 * reported its subtree's tally, and writes the sum to up. Every process of
 * the tree stays alive after reporting. */
static void bomb_node(int up, int depth, int max_depth)
{
    struct tally t = {1, 0, 0};
    int p[2], kids = 0;
    if (pipe(p) != 0)
        _exit(1);
    for (int i = 0; i < 2 && depth < max_depth; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            bomb_node(p[1], depth + 1, max_depth);
            for (;;)
                pause();
        }
        if (pid > 0) {
            kids++;
        } else if (t.failed++ == 0) {
            t.first_errno = errno;
        }
    }
    close(p[1]);
    for (int i = 0; i < kids; i++) {
        struct tally c;
        if (read(p[0], &c, sizeof(c)) != (ssize_t)sizeof(c))
            _exit(1);
        t.created += c.created;
        t.failed += c.failed;
        if (!t.first_errno)
            t.first_errno = c.first_errno;
    }
    close(p[0]);
    if (write(up, &t, sizeof(t)) != (ssize_t)sizeof(t))
        _exit(1);
}

static int bomb(int max_depth)
{
    int p[2];
    struct tally t;
    if (pipe(p) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        bomb_node(p[1], 1, max_depth);
        for (;;)
            pause();
    }
    close(p[1]);
    if (pid < 0 || read(p[0], &t, sizeof(t)) != (ssize_t)sizeof(t))
        return 1;
    printf("bomb: created %ld processes, %ld forks failed (%s)\n", t.created, t.failed,
           t.first_errno ? strerrorname_np(t.first_errno) : "none");
    return 0;
}

static int hog(long max_mb)
{
    const size_t mb = 1024 * 1024;
    for (long i = 1; i <= max_mb; i++) {
        char *p = mmap(NULL, mb, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            printf("hog: mmap failed at %ld MiB: %s\n", i, strerror(errno));
            return 3;
        }
        memset(p, (int)(i & 0xff) | 1, mb);
        if (i % 16 == 0) {
            printf("hog: %ld MiB\n", i);
            fflush(stdout);
        }
    }
    printf("hog: got all %ld MiB\n", max_mb);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "bomb") == 0)
        return bomb((int)strtol(argv[2], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "hog") == 0)
        return hog(strtol(argv[2], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "sleep") == 0) {
        for (;;)
            pause();
    }
    fprintf(stderr, "usage: helper bomb DEPTH | hog MAXMB | sleep TAG\n");
    return 2;
}
