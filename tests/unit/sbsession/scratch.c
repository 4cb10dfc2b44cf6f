/* Scratch directory trees for the sandbox's unit tests (scratch.h). */
#include "scratch.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void scratch_make(struct scratch *s, const char *prefix)
{
    char tmpl[PATH_MAX];
    int n = snprintf(tmpl, sizeof(tmpl), "/tmp/%s-XXXXXX", prefix);
    assert_true(n > 0 && (size_t)n < sizeof(tmpl));
    assert_non_null(mkdtemp(tmpl));
    assert_non_null(realpath(tmpl, s->root));
}

void scratch_path(char *out, const struct scratch *s, const char *rel)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", s->root, rel);
    assert_true(n > 0 && n < PATH_MAX);
}

void scratch_mkdirs(const struct scratch *s, const char *rel)
{
    char p[PATH_MAX];
    scratch_path(p, s, rel);
    for (char *c = p + strlen(s->root) + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        mkdir(p, 0755);
        *c = '/';
    }
    mkdir(p, 0755);
}

void scratch_touch(const struct scratch *s, const char *rel)
{
    char p[PATH_MAX];
    scratch_path(p, s, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
}

void scratch_put(const struct scratch *s, const char *rel, const char *text)
{
    char p[PATH_MAX];
    scratch_path(p, s, rel);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void scratch_remove(const struct scratch *s)
{
    nftw(s->root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
