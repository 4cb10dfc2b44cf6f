/* Throughput of the leak guard's scanner (gitproxy/src/scan.c) on random data.
 *
 *   build/gitproxy/gp_scan_bench [MIB] [CHUNK_KIB] [FILE]   (defaults 1024, 64)
 *
 * Ten secrets (five of 40 bytes, five of 93) plus the well-known patterns;
 * prints MB/s (10^6 bytes per second) of: the streaming scanner fed CHUNK_KIB
 * chunks, the same with patterns only, the same with three more secrets of
 * 8, 12 and 16 bytes (one AES block per byte each), gp_scan_buffer2() on
 * 8 MiB buffers, and the old scanner (memmem per secret) on the
 * same buffers. The data is 64 MiB of random bytes (or FILE repeated),
 * scanned again until MIB MiB have been read. Rates are per second of the
 * thread's CPU time (wall-clock time is printed too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/gp_scan.h"
#include "airlock/strlist.h"

#define DATA_MIB 64

/* CPU time of this thread: other processes on a busy machine do not count. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_start;

static void report(const char *what, size_t bytes, double secs, int hits)
{
    printf("%-44s %8.0f MB/s  (%zu MiB in %.2f s CPU, %.2f s wall, %d hits)\n", what,
           (double)bytes / secs / 1e6, bytes >> 20, secs, wall() - wall_start, hits);
    wall_start = wall();
}

/* The scanner before gitproxy/src/scan.c (gp_scan_buffer() in inspect.c at
 * a6518bc, copied so that this program does not depend on it): memmem() per
 * secret and per pattern. */
static int old_is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int old_prefixed(const char *data, size_t len, const char *prefix, size_t min,
                        int upper_digits_only)
{
    size_t plen = strlen(prefix);
    const char *p = data, *end = data + len;
    while ((p = memmem(p, (size_t)(end - p), prefix, plen)) != NULL) {
        const char *q = p + plen;
        size_t n = 0;
        while (q + n < end &&
               (upper_digits_only ? ((q[n] >= 'A' && q[n] <= 'Z') || (q[n] >= '0' && q[n] <= '9'))
                                  : (old_is_alnum(q[n]) || q[n] == '_')))
            n++;
        if (n >= min)
            return 1;
        p += plen;
    }
    return 0;
}

static int old_scan_buffer(const char *data, size_t len, const struct al_strlist *secrets)
{
    for (size_t i = 0; i < secrets->len; i++) {
        size_t n = strlen(secrets->items[i]);
        if (n >= 8 && memmem(data, len, secrets->items[i], n))
            return 1;
    }
    if (old_prefixed(data, len, "ghp_", 36, 0) || old_prefixed(data, len, "gho_", 36, 0) ||
        old_prefixed(data, len, "ghu_", 36, 0) || old_prefixed(data, len, "ghs_", 36, 0) ||
        old_prefixed(data, len, "ghr_", 36, 0) || old_prefixed(data, len, "github_pat_", 22, 0) ||
        old_prefixed(data, len, "AKIA", 16, 1))
        return 1;
    const char *p = data, *end = data + len;
    while ((p = memmem(p, (size_t)(end - p), "-----BEGIN ", 11)) != NULL) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (l < 128 && memmem(p, l, "PRIVATE KEY-----", 16))
            return 1;
        p += 11;
    }
    return 0;
}

static int stream(const unsigned char *data, size_t data_len, size_t total, size_t chunk,
                  const gp_secretset *set, double *secs)
{
    struct gp_scanner sc;
    const char *what;
    int hits = 0;
    if (gp_scanner_init(&sc, set) < 0)
        return -1;
    double t0 = now();
    for (size_t done = 0; done < total;) {
        for (size_t off = 0; off < data_len && done < total; off += chunk, done += chunk)
            hits += gp_scanner_feed(&sc, data + off, chunk, &what) != 0;
    }
    *secs = now() - t0;
    gp_scanner_free(&sc);
    return hits;
}

int main(int argc, char **argv)
{
    size_t total = (size_t)(argc > 1 ? strtoul(argv[1], NULL, 10) : 1024) << 20;
    size_t chunk = (size_t)(argc > 2 ? strtoul(argv[2], NULL, 10) : 64) << 10;
    size_t data_len = (size_t)DATA_MIB << 20;
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    char secrets[10][94];
    const char *ptrs[13];
    struct al_strlist list = AL_STRLIST_INIT;
    struct al_buf blob;
    gp_secretset *set = NULL;
    unsigned char *data = malloc(data_len);
    double secs;
    int hits;
    if (!data || chunk == 0 || data_len % chunk != 0 || RAND_bytes(data, (int)data_len) != 1) {
        fprintf(stderr, "usage: gp_scan_bench [MIB] [CHUNK_KIB dividing %d MiB] [FILE]\n",
                DATA_MIB);
        return 2;
    }
    if (argc > 3) {
        struct al_buf file;
        al_buf_init(&file, data_len);
        if (al_buf_read_file(&file, argv[3]) < 0 && file.len == 0) {
            fprintf(stderr, "gp_scan_bench: %s\n", al_error_last());
            return 1;
        }
        for (size_t off = 0; file.len && off < data_len; off += file.len)
            memcpy(data + off, file.ptr, data_len - off < file.len ? data_len - off : file.len);
        al_buf_free(&file);
    }
    for (int i = 0; i < 10; i++) {
        unsigned char r[93];
        size_t len = i < 5 ? 40 : 93;
        RAND_bytes(r, sizeof(r));
        for (size_t j = 0; j < len; j++)
            secrets[i][j] = alnum[r[j] % 62];
        secrets[i][len] = '\0';
        ptrs[i] = secrets[i];
        al_strlist_push(&list, secrets[i]);
    }
    al_buf_init(&blob, GP_SECRETSET_BLOB_MAX);
    if (gp_secretset_build(&blob, ptrs, 10) < 0 ||
        gp_secretset_load(&set, blob.ptr, blob.len) < 0) {
        fprintf(stderr, "gp_scan_bench: %s\n", al_error_last());
        return 1;
    }
    printf("%s, %zu KiB chunks, 10 secrets (5 x 40 B, 5 x 93 B), blob %zu bytes\n",
           argc > 3 ? argv[3] : "random data", chunk >> 10, blob.len);

    wall_start = wall();
    hits = stream(data, data_len, total, chunk, set, &secs);
    report("gp_scanner_feed, secrets + patterns", total, secs, hits);
    hits = stream(data, data_len, total, chunk, NULL, &secs);
    report("gp_scanner_feed, patterns only", total, secs, hits);
    gp_secretset *with_short = NULL;
    ptrs[10] = "8-bytes!";
    ptrs[11] = "twelve-bytes";
    ptrs[12] = "sixteen-bytes-16";
    al_buf_reset(&blob);
    if (gp_secretset_build(&blob, ptrs, 13) < 0 ||
        gp_secretset_load(&with_short, blob.ptr, blob.len) < 0) {
        fprintf(stderr, "gp_scan_bench: %s\n", al_error_last());
        return 1;
    }
    size_t short_total = total < ((size_t)256 << 20) ? total : (size_t)256 << 20;
    hits = stream(data, data_len, short_total, chunk, with_short, &secs);
    report("gp_scanner_feed, + secrets of 8, 12, 16 B", short_total, secs, hits);
    gp_secretset_free(with_short);

    const char *what;
    size_t blob_sz = (size_t)8 << 20, done = 0;
    hits = 0;
    double t0 = now();
    while (done < total)
        for (size_t off = 0; off < data_len && done < total; off += blob_sz, done += blob_sz)
            hits += gp_scan_buffer2(&what, data + off, blob_sz, set) != 0;
    report("gp_scan_buffer2, 8 MiB buffers", total, now() - t0, hits);

    size_t old_total = total < ((size_t)256 << 20) ? total : (size_t)256 << 20;
    done = 0;
    hits = 0;
    t0 = now();
    while (done < old_total)
        for (size_t off = 0; off < data_len && done < old_total; off += blob_sz, done += blob_sz)
            hits += old_scan_buffer((const char *)data + off, blob_sz, &list);
    report("old scanner (memmem each), 8 MiB buffers", old_total, now() - t0, hits);

    gp_secretset_free(set);
    al_buf_free(&blob);
    al_strlist_free(&list);
    free(data);
    return 0;
}
