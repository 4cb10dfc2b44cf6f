/* Fuzzes wsf_path_normalize (input: the client path bytes, at most
 * WSF_PATH_MAX + 64) and checks what it promises: an accepted path is
 * relative, has no empty, "." or ".." component, no control byte, at most
 * WSF_COMPONENTS_MAX components of at most WSF_NAME_MAX bytes, is no longer
 * than the input, and normalises to itself. Then resolves it with wsf_get
 * beneath a scratch workspace holding symlinks that lead out, and checks that
 * no descriptor handed out is the outside file. */
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airlockd/core/wsfiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[] = "/tmp/airlock-fuzz-wspath-XXXXXX";
static int root = -1;
static struct stat secret_st;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

static void cleanup(void)
{
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void must(int ok)
{
    if (!ok)
        abort();
}

/* ws/{a, d/b, up -> ../out, abs -> /.../out/secret, self -> ., d/back -> ../a}
 * and out/secret beside it. */
static void workspace_init(void)
{
    char p[512];
    must(mkdtemp(base) != NULL);
    atexit(cleanup);
    snprintf(p, sizeof(p), "%s/out", base);
    must(mkdir(p, 0755) == 0);
    snprintf(p, sizeof(p), "%s/out/secret", base);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    must(fd >= 0);
    must(fstat(fd, &secret_st) == 0);
    close(fd);
    char ws[300];
    snprintf(ws, sizeof(ws), "%s/ws", base);
    must(mkdir(ws, 0755) == 0);
    snprintf(p, sizeof(p), "%s/d", ws);
    must(mkdir(p, 0755) == 0);
    static const char *files[] = {"a", "d/b"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s/%s", ws, files[i]);
        fd = open(p, O_WRONLY | O_CREAT, 0644);
        must(fd >= 0);
        close(fd);
    }
    char secret[400];
    snprintf(secret, sizeof(secret), "%s/out/secret", base);
    const char *links[][2] = {{"../out", "up"},
                              {secret, "abs"},
                              {".", "self"},
                              {"../a", "d/back"},
                              {"../../out/secret", "d/rel"},
                              {"/", "slash"}};
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", ws, links[i][1]);
        must(symlink(links[i][0], p) == 0);
    }
    must(wsf_root_open(ws, &root) == 0);
}

static void check_normalised(const char *out, size_t in_len)
{
    size_t len = strlen(out);
    must(len <= in_len);
    if (len == 0)
        return;
    must(out[0] != '/' && out[len - 1] != '/');
    size_t ncomp = 0;
    for (const char *c = out; c;) {
        const char *slash = strchr(c, '/');
        size_t n = slash ? (size_t)(slash - c) : strlen(c);
        must(n > 0 && n <= WSF_NAME_MAX);
        must(!(n == 1 && c[0] == '.') && !(n == 2 && c[0] == '.' && c[1] == '.'));
        ncomp++;
        c = slash ? slash + 1 : NULL;
    }
    must(ncomp <= WSF_COMPONENTS_MAX);
    for (size_t i = 0; i < len; i++)
        must((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
    char again[WSF_PATH_MAX + 1];
    must(wsf_path_normalize(out, len, again, sizeof(again)) == 0);
    must(strcmp(again, out) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[WSF_PATH_MAX + 1];
    if (size > WSF_PATH_MAX + 64)
        return 0;
    if (root < 0)
        workspace_init();
    /* a small buffer must fail cleanly, never overflow */
    char small[8];
    if (wsf_path_normalize((const char *)data, size, small, sizeof(small)) == 0)
        must(strlen(small) < sizeof(small));
    if (wsf_path_normalize((const char *)data, size, out, sizeof(out)) < 0) {
        must(out[0] == '\0');
        return 0;
    }
    check_normalised(out, size);

    int fd = -1;
    json_t *listing = NULL;
    struct wsf_stat st;
    if (wsf_get(root, out, &fd, &st, &listing) == 0) {
        if (fd >= 0) {
            struct stat sb;
            must(fstat(fd, &sb) == 0);
            must(!(sb.st_dev == secret_st.st_dev && sb.st_ino == secret_st.st_ino));
            close(fd);
        }
        json_decref(listing);
    }
    return 0;
}
