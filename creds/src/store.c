#include "airlock/creds_store.h"
#include "airlock/creds.h"
#include "airlock/creds_github.h"
#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/settings.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_MAGIC        "ALKSTOR1"
#define STORE_MAGIC_LEN    8
#define STORE_NONCE_LEN    12
#define STORE_TAG_LEN      16
#define STORE_MAX_ENTRIES  4096
#define APP_REFRESH_MARGIN 300 /* seconds before expires_at a cached token is dropped */

struct creds_store {
    char *path;
    unsigned char key[32];
    struct creds_entry *entries;
    size_t len;
    pthread_mutex_t lock;
};

void creds_secret_free(char *secret)
{
    if (secret) {
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
    }
}

/* Reads the whole regular file open at `fd` (named `name` in errors) from
 * its start, refusing group/other permission bits and more than `max` bytes.
 * `*out` is allocated and NUL-terminated (wiped by the caller). */
static int read_private_fd(unsigned char **out, size_t *out_len, int fd, const char *name,
                           size_t max)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return al_error_set_errno(AL_EIO, errno, "%s", name);
    if (!S_ISREG(st.st_mode))
        return al_error_set(AL_EINVAL, "%s: not a regular file", name);
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return al_error_set(AL_EPERM, "%s: readable by group or other (mode %03o); chmod 600 it",
                            name, (unsigned)(st.st_mode & 0777));
    if ((size_t)st.st_size > max)
        return al_error_set(AL_ETOOBIG, "%s: larger than %zu bytes", name, max);
    unsigned char *d = malloc((size_t)st.st_size + 1);
    if (!d)
        return AL_ENOMEM;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = pread(fd, d + got, (size_t)st.st_size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            OPENSSL_cleanse(d, got);
            free(d);
            return al_error_set_errno(AL_EIO, n < 0 ? e : EIO, "%s: read", name);
        }
        got += (size_t)n;
    }
    d[got] = '\0';
    *out = d;
    *out_len = got;
    return 0;
}

int creds_file_read_private(unsigned char **out, size_t *out_len, const char *path, size_t max)
{
    cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return al_error_set_errno(errno == ENOENT ? AL_ENOTFOUND : AL_EIO, errno, "%s", path);
    return read_private_fd(out, out_len, fd, path, max);
}

static void entry_clear(struct creds_entry *e)
{
    free(e->scope);
    free(e->username);
    creds_secret_free(e->secret);
    free(e->api);
    free(e->ca_file);
    creds_secret_free(e->cached_token);
    free(e->cached_repo);
    al_strlist_free(&e->hosts);
    memset(e, 0, sizeof(*e));
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int entry_copy(struct creds_entry *dst, const struct creds_entry *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->kind = src->kind;
    dst->app_id = src->app_id;
    dst->installation_id = src->installation_id;
    dst->scope = dup_or_null(src->scope);
    dst->username = dup_or_null(src->username ? src->username : "x-access-token");
    dst->secret = dup_or_null(src->secret);
    dst->api = dup_or_null(src->api);
    dst->ca_file = dup_or_null(src->ca_file);
    int hosts_err = 0;
    for (size_t i = 0; i < src->hosts.len && hosts_err == 0; i++)
        hosts_err = al_strlist_push(&dst->hosts, src->hosts.items[i]);
    if (!dst->scope || !dst->username || !dst->secret || (src->api && !dst->api) ||
        (src->ca_file && !dst->ca_file) || hosts_err < 0) {
        entry_clear(dst);
        return AL_ENOMEM;
    }
    return 0;
}

/* A scope is "host", "host/owner" or "host/owner/repo" of [A-Za-z0-9._-]. */
static int scope_valid(const char *scope)
{
    size_t parts = 1, seg = 0;
    for (const char *p = scope; *p; p++) {
        if (*p == '/') {
            if (seg == 0)
                return 0;
            parts++;
            seg = 0;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_' || *p == ':'))
            return 0;
        seg++;
    }
    return seg > 0 && parts <= 3;
}

static int store_parse(creds_store *s, const char *json, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    json_t *arr, *v;
    size_t i;
    int err = 0;
    if (!root || !json_is_array(arr = json_object_get(root, "entries")) ||
        json_array_size(arr) > STORE_MAX_ENTRIES) {
        err = al_error_set(AL_EINVAL, "%s: malformed store content", s->path);
        goto out;
    }
    json_array_foreach(arr, i, v)
    {
        struct creds_entry e = {0};
        const char *scope = NULL, *kind = NULL, *user = NULL, *secret = NULL, *api = NULL,
                   *ca = NULL;
        json_int_t app = 0, inst = 0;
        json_t *hosts = NULL;
        if (json_unpack(v, "{s:s, s:s, s?s, s:s, s?I, s?I, s?s, s?s, s?o}", "scope", &scope, "kind",
                        &kind, "username", &user, "secret", &secret, "app_id", &app,
                        "installation_id", &inst, "api", &api, "ca_file", &ca, "hosts",
                        &hosts) < 0) {
            err = al_error_set(AL_EINVAL, "%s: malformed entry %zu", s->path, i);
            goto out;
        }
        e.scope = (char *)scope;
        e.kind = strcmp(kind, "github_app") == 0 ? CREDS_KIND_GITHUB_APP
                 : strcmp(kind, "http") == 0     ? CREDS_KIND_HTTP
                                                 : CREDS_KIND_TOKEN;
        if (e.kind == CREDS_KIND_HTTP) {
            size_t k;
            json_t *h;
            if (!json_is_array(hosts) || json_array_size(hosts) > CREDS_HTTP_HOSTS_MAX) {
                err = al_error_set(AL_EINVAL, "%s: malformed entry %zu (hosts)", s->path, i);
                goto out;
            }
            json_array_foreach(hosts, k, h)
            {
                if (!json_is_string(h) || al_strlist_push(&e.hosts, json_string_value(h)) < 0) {
                    al_strlist_free(&e.hosts);
                    err = al_error_set(AL_EINVAL, "%s: malformed entry %zu (hosts)", s->path, i);
                    goto out;
                }
            }
        }
        e.username = (char *)user;
        e.secret = (char *)secret;
        e.app_id = app;
        e.installation_id = inst;
        e.api = (char *)api;
        e.ca_file = (char *)ca;
        err = creds_store_put(s, &e);
        al_strlist_free(&e.hosts);
        if (err < 0)
            goto out;
    }
out:
    if (root) {
        /* The decoded JSON holds secrets: wipe every string before freeing. */
        json_t *a = json_object_get(root, "entries");
        json_array_foreach(a, i, v)
        {
            json_t *sec = json_object_get(v, "secret");
            if (json_is_string(sec))
                OPENSSL_cleanse((char *)json_string_value(sec), json_string_length(sec));
        }
        json_decref(root);
    }
    return err;
}

/* Decrypts the store file's bytes with s->key and adds its entries to `s`. */
static int store_load_bytes(creds_store *s, const unsigned char *file, size_t file_len)
{
    unsigned char *plain = NULL;
    int plain_len = 0, fin = 0, err = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    if (file_len < STORE_MAGIC_LEN + STORE_NONCE_LEN + STORE_TAG_LEN ||
        memcmp(file, STORE_MAGIC, STORE_MAGIC_LEN) != 0)
        return al_error_set(AL_EINVAL, "%s: not an airlock credential store", s->path);
    const unsigned char *nonce = file + STORE_MAGIC_LEN;
    const unsigned char *ct = nonce + STORE_NONCE_LEN;
    size_t ct_len = file_len - STORE_MAGIC_LEN - STORE_NONCE_LEN - STORE_TAG_LEN;
    unsigned char tag[STORE_TAG_LEN];
    memcpy(tag, file + file_len - STORE_TAG_LEN, STORE_TAG_LEN);
    if (!(plain = malloc(ct_len + 16)) || !(ctx = EVP_CIPHER_CTX_new())) {
        err = AL_ENOMEM;
        goto out;
    }
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, STORE_NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, s->key, nonce) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &plain_len, file, STORE_MAGIC_LEN) != 1 ||
        EVP_DecryptUpdate(ctx, plain, &plain_len, ct, (int)ct_len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, STORE_TAG_LEN, tag) != 1 ||
        EVP_DecryptFinal_ex(ctx, plain + plain_len, &fin) != 1) {
        err = al_error_set(AL_EAUTH, "%s: cannot decrypt (wrong master key or tampered file)",
                           s->path);
        goto out;
    }
    err = store_parse(s, (char *)plain, (size_t)plain_len + (size_t)fin);
out:
    if (plain)
        OPENSSL_cleanse(plain, ct_len + 16);
    free(plain);
    EVP_CIPHER_CTX_free(ctx);
    return err;
}

/* An empty store named `path` (no key yet). */
static creds_store *store_new(const char *path)
{
    creds_store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    if (!(s->path = strdup(path))) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    return s;
}

int creds_store_open(creds_store **out, const char *path, const char *key_path)
{
    unsigned char *key = NULL, *file = NULL;
    size_t key_len = 0, file_len = 0;
    creds_store *s = store_new(path);
    int err = 0;
    if (!s)
        return AL_ENOMEM;
    if ((err = creds_file_read_private(&key, &key_len, key_path, 64)) < 0)
        goto out;
    if (key_len != 32) {
        err = al_error_set(AL_EINVAL, "%s: master key must be 32 bytes", key_path);
        goto out;
    }
    memcpy(s->key, key, 32);
    err = creds_file_read_private(&file, &file_len, path, CREDS_STORE_MAX);
    if (err == AL_ENOTFOUND) {
        err = 0;
        goto done;
    }
    if (err < 0 || (err = store_load_bytes(s, file, file_len)) < 0)
        goto out;
done:
    *out = steal_pointer(&s);
out:
    if (key)
        OPENSSL_cleanse(key, key_len);
    free(key);
    free(file);
    creds_store_free(s);
    return err;
}

int creds_store_reload_fd(creds_store *s, int fd)
{
    unsigned char *file = NULL;
    size_t file_len = 0;
    creds_store *fresh = store_new(s->path);
    int err = 0;
    if (!fresh)
        return AL_ENOMEM;
    memcpy(fresh->key, s->key, sizeof(s->key));
    if (fd >= 0 && ((err = read_private_fd(&file, &file_len, fd, s->path, CREDS_STORE_MAX)) < 0 ||
                    (err = store_load_bytes(fresh, file, file_len)) < 0))
        goto out;
    /* Swap the entries: a resolve in progress holds s->lock and finishes
     * with the old ones; the old ones (and their cached App tokens) are
     * wiped below with `fresh`. */
    pthread_mutex_lock(&s->lock);
    struct creds_entry *entries = s->entries;
    size_t len = s->len;
    s->entries = fresh->entries;
    s->len = fresh->len;
    fresh->entries = entries;
    fresh->len = len;
    pthread_mutex_unlock(&s->lock);
out:
    if (file)
        OPENSSL_cleanse(file, file_len);
    free(file);
    creds_store_free(fresh);
    return err;
}

int creds_store_reload(creds_store *s)
{
    int fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno != ENOENT)
        return al_error_set_errno(AL_EIO, errno, "%s", s->path);
    int err = creds_store_reload_fd(s, fd);
    if (fd >= 0)
        close(fd);
    return err;
}

void creds_store_free(creds_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->len; i++)
        entry_clear(&s->entries[i]);
    free(s->entries);
    free(s->path);
    OPENSSL_cleanse(s->key, sizeof(s->key));
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static char *store_serialise(const creds_store *s)
{
    json_t *arr = json_array();
    json_t *root = json_pack("{s:o}", "entries", arr);
    char *out = NULL;
    if (!root)
        return NULL;
    for (size_t i = 0; i < s->len; i++) {
        const struct creds_entry *e = &s->entries[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "scope", e->scope, "kind",
                              e->kind == CREDS_KIND_GITHUB_APP ? "github_app"
                              : e->kind == CREDS_KIND_HTTP     ? "http"
                                                               : "token",
                              "username", e->username, "secret", e->secret);
        if (!o)
            goto out;
        if (e->kind == CREDS_KIND_HTTP) {
            json_t *hosts = json_array();
            for (size_t k = 0; hosts && k < e->hosts.len; k++)
                json_array_append_new(hosts, json_string(e->hosts.items[k]));
            json_object_set_new(o, "hosts", hosts);
        }
        if (e->kind == CREDS_KIND_GITHUB_APP) {
            json_object_set_new(o, "app_id", json_integer(e->app_id));
            json_object_set_new(o, "installation_id", json_integer(e->installation_id));
            if (e->api)
                json_object_set_new(o, "api", json_string(e->api));
            if (e->ca_file)
                json_object_set_new(o, "ca_file", json_string(e->ca_file));
        }
        json_array_append_new(arr, o);
    }
    out = json_dumps(root, JSON_COMPACT);
out:;
    /* jansson copies strings: wipe the secrets in the tree before freeing. */
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        json_t *sec = json_object_get(v, "secret");
        if (json_is_string(sec))
            OPENSSL_cleanse((char *)json_string_value(sec), json_string_length(sec));
    }
    json_decref(root);
    return out;
}

int creds_store_save(creds_store *s)
{
    char *plain = NULL;
    unsigned char *ct = NULL;
    unsigned char nonce[STORE_NONCE_LEN], tag[STORE_TAG_LEN];
    int len = 0, fin = 0, err = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    cleanup_free char *tmp = NULL;
    cleanup_fd int fd = -1;
    pthread_mutex_lock(&s->lock);
    if (!(plain = store_serialise(s)) || !(ctx = EVP_CIPHER_CTX_new())) {
        err = AL_ENOMEM;
        goto out;
    }
    size_t plain_len = strlen(plain);
    if (!(ct = malloc(plain_len + 16))) {
        err = AL_ENOMEM;
        goto out;
    }
    if (RAND_bytes(nonce, sizeof(nonce)) != 1 ||
        EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, STORE_NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, s->key, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)STORE_MAGIC, STORE_MAGIC_LEN) !=
            1 ||
        EVP_EncryptUpdate(ctx, ct, &len, (unsigned char *)plain, (int)plain_len) != 1 ||
        EVP_EncryptFinal_ex(ctx, ct + len, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, STORE_TAG_LEN, tag) != 1) {
        err = al_error_set(AL_ERROR, "encryption failed");
        goto out;
    }
    size_t tlen = strlen(s->path) + 8;
    if (!(tmp = malloc(tlen))) {
        err = AL_ENOMEM;
        goto out;
    }
    snprintf(tmp, tlen, "%s.tmp", s->path);
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = al_error_set_errno(AL_EIO, errno, "%s", tmp);
        goto out;
    }
    size_t ct_len = (size_t)len + (size_t)fin;
    if (write(fd, STORE_MAGIC, STORE_MAGIC_LEN) != STORE_MAGIC_LEN ||
        write(fd, nonce, sizeof(nonce)) != (ssize_t)sizeof(nonce) ||
        write(fd, ct, ct_len) != (ssize_t)ct_len ||
        write(fd, tag, sizeof(tag)) != (ssize_t)sizeof(tag) || fsync(fd) < 0 ||
        rename(tmp, s->path) < 0) {
        err = al_error_set_errno(AL_EIO, errno, "%s", s->path);
        unlink(tmp);
    }
out:
    pthread_mutex_unlock(&s->lock);
    if (plain) {
        OPENSSL_cleanse(plain, strlen(plain));
        free(plain);
    }
    free(ct);
    EVP_CIPHER_CTX_free(ctx);
    return err;
}

/* The entry with exactly this scope, or -1. An HTTP secret's scope starts
 * with "http:", which no repository scope does; `git_only` skips HTTP
 * secrets anyway (a repository lookup must never answer one). */
static long store_find_ex(const creds_store *s, const char *scope, int git_only)
{
    for (size_t i = 0; i < s->len; i++)
        if (strcmp(s->entries[i].scope, scope) == 0 &&
            !(git_only && s->entries[i].kind == CREDS_KIND_HTTP))
            return (long)i;
    return -1;
}

static long store_find(const creds_store *s, const char *scope)
{
    return store_find_ex(s, scope, 0);
}

int creds_http_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CREDS_HTTP_NAME_MAX || !isalpha((unsigned char)name[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
            return 0;
    return 1;
}

int creds_http_value_check(const char *value, size_t len)
{
    if (len == 0)
        return al_error_set(AL_EINVAL, "the value is empty");
    if (len > CREDS_HTTP_VALUE_MAX)
        return al_error_set(AL_EINVAL, "the value is longer than %u bytes",
                            (unsigned)CREDS_HTTP_VALUE_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] < 0x21 || (unsigned char)value[i] > 0x7e)
            return al_error_set(AL_EINVAL,
                                "the value has a byte that is not printable ASCII or a space "
                                "(at offset %zu): HTTP secrets go into headers and environment "
                                "variables",
                                i);
    return 0;
}

int creds_http_hosts_parse(struct al_strlist *out, const char *list, size_t len)
{
    size_t start = 0, n = 0;
    char entry[256];
    if (len == 0)
        return al_error_set(AL_EINVAL, "no host: expected a comma-separated list of domains");
    for (size_t i = 0; i <= len; i++) {
        if (i < len && list[i] != ',')
            continue;
        size_t el = i - start;
        if (el == 0)
            return al_error_set(AL_EINVAL, "an empty entry in the host list");
        if (el >= sizeof(entry) || memchr(list + start, '\0', el))
            return al_error_set(AL_EINVAL, "host entry %zu: not a domain", n + 1);
        for (size_t k = 0; k < el; k++)
            entry[k] = (char)tolower((unsigned char)list[start + k]);
        entry[el] = '\0';
        if (al_settings_check_domain(entry) < 0) {
            char why[512];
            snprintf(why, sizeof(why), "%s", al_error_last());
            return al_error_set(AL_EINVAL, "host %s", why);
        }
        if (al_strlist_find(out, entry) >= 0)
            return al_error_set(AL_EINVAL, "host \"%s\" is listed twice", entry);
        if (++n > CREDS_HTTP_HOSTS_MAX)
            return al_error_set(AL_EINVAL, "more than %u hosts", (unsigned)CREDS_HTTP_HOSTS_MAX);
        if (al_strlist_push(out, entry) < 0)
            return AL_ENOMEM;
        start = i + 1;
    }
    return 0;
}

int creds_store_http_find(const struct creds_entry **out, const creds_store *s, const char *name)
{
    char scope[sizeof(CREDS_HTTP_PREFIX) + CREDS_HTTP_NAME_MAX];
    if (!creds_http_name_valid(name))
        return al_error_set(AL_ENOTFOUND, "no HTTP secret by that name");
    snprintf(scope, sizeof(scope), CREDS_HTTP_PREFIX "%s", name);
    long i = store_find(s, scope);
    if (i < 0 || s->entries[i].kind != CREDS_KIND_HTTP)
        return al_error_set(AL_ENOTFOUND, "no HTTP secret %s", name);
    *out = &s->entries[i];
    return 0;
}

/* An HTTP secret's entry is well formed: scope "http:NAME" with a valid
 * NAME, a valid value, 1..CREDS_HTTP_HOSTS_MAX valid hosts. */
static int http_entry_check(const struct creds_entry *e)
{
    size_t plen = strlen(CREDS_HTTP_PREFIX);
    if (strncmp(e->scope, CREDS_HTTP_PREFIX, plen) != 0 || !creds_http_name_valid(e->scope + plen))
        return al_error_set(AL_EINVAL, "an HTTP secret's name must match [A-Za-z][A-Za-z0-9_-]* "
                                       "(at most 64 bytes)");
    int err = creds_http_value_check(e->secret, strlen(e->secret));
    if (err < 0)
        return err;
    if (e->hosts.len == 0 || e->hosts.len > CREDS_HTTP_HOSTS_MAX)
        return al_error_set(AL_EINVAL, "HTTP secret %s needs 1 to %u hosts", e->scope + plen,
                            (unsigned)CREDS_HTTP_HOSTS_MAX);
    for (size_t i = 0; i < e->hosts.len; i++)
        if (al_settings_check_domain(e->hosts.items[i]) < 0)
            return al_error_set(AL_EINVAL, "HTTP secret %s: bad host", e->scope + plen);
    return 0;
}

int creds_store_put(creds_store *s, const struct creds_entry *entry)
{
    struct creds_entry copy;
    int err;
    if (entry->kind == CREDS_KIND_HTTP) {
        if (!entry->scope || !entry->secret)
            return al_error_set(AL_EINVAL, "an HTTP secret needs a name and a value");
        if ((err = http_entry_check(entry)) < 0)
            return err;
    } else if (!entry->scope || !scope_valid(entry->scope) ||
               strncmp(entry->scope, CREDS_HTTP_PREFIX, strlen(CREDS_HTTP_PREFIX)) == 0) {
        return al_error_set(AL_EINVAL, "scope must be host, host/owner or host/owner/repo");
    }
    if (!entry->secret || !*entry->secret)
        return al_error_set(AL_EINVAL, "entry %s has no secret", entry->scope);
    if (entry->kind == CREDS_KIND_GITHUB_APP && (entry->app_id <= 0 || entry->installation_id <= 0))
        return al_error_set(AL_EINVAL, "a GitHub App entry needs app id and installation id");
    if ((err = entry_copy(&copy, entry)) < 0)
        return err;
    pthread_mutex_lock(&s->lock);
    long i = store_find(s, entry->scope);
    if (i >= 0) {
        entry_clear(&s->entries[i]);
        s->entries[i] = copy;
    } else {
        struct creds_entry *n = realloc(s->entries, (s->len + 1) * sizeof(*n));
        if (!n) {
            entry_clear(&copy);
            err = AL_ENOMEM;
        } else {
            s->entries = n;
            s->entries[s->len++] = copy;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return err;
}

int creds_store_remove(creds_store *s, const char *scope)
{
    int err = 0;
    pthread_mutex_lock(&s->lock);
    long i = store_find(s, scope);
    if (i < 0) {
        err = al_error_set(AL_ENOTFOUND, "no entry for %s", scope);
    } else {
        entry_clear(&s->entries[i]);
        memmove(&s->entries[i], &s->entries[i + 1],
                (s->len - (size_t)i - 1) * sizeof(s->entries[0]));
        s->len--;
    }
    pthread_mutex_unlock(&s->lock);
    return err;
}

size_t creds_store_count(const creds_store *s)
{
    return s->len;
}

const struct creds_entry *creds_store_at(const creds_store *s, size_t i)
{
    return i < s->len ? &s->entries[i] : NULL;
}

int creds_store_lookup(const struct creds_entry **out, const creds_store *s, const char *repo)
{
    char scope[512];
    if (strlen(repo) >= sizeof(scope))
        return al_error_set(AL_EINVAL, "repository name too long");
    snprintf(scope, sizeof(scope), "%s", repo);
    /* Most specific first: host/owner/repo, then host/owner, then host. */
    for (;;) {
        long i = store_find_ex(s, scope, 1);
        if (i >= 0) {
            *out = &s->entries[i];
            return 0;
        }
        char *slash = strrchr(scope, '/');
        if (!slash)
            break;
        *slash = '\0';
    }
    return al_error_set(AL_ENOTFOUND, "no credentials for %s", repo);
}

int creds_store_resolve(char **out_user, char **out_secret, creds_store *s, const char *repo,
                        time_t now)
{
    const struct creds_entry *ce;
    char *user = NULL, *secret = NULL;
    int err;
    pthread_mutex_lock(&s->lock);
    if ((err = creds_store_lookup(&ce, s, repo)) < 0)
        goto out;
    struct creds_entry *e = (struct creds_entry *)ce;
    if (e->kind == CREDS_KIND_GITHUB_APP) {
        const char *name = strrchr(repo, '/');
        name = name ? name + 1 : repo;
        if (e->cached_token &&
            (now >= e->cached_expires - APP_REFRESH_MARGIN || strcmp(e->cached_repo, name) != 0)) {
            creds_secret_free(e->cached_token);
            e->cached_token = NULL;
        }
        if (!e->cached_token) {
            char *tok = NULL;
            char *tok_repo = strdup(name);
            time_t exp = 0;
            /* Minting holds the lock: concurrent pushes wait for one token
             * rather than each asking GitHub. */
            err = creds_github_installation_token(
                &tok, &exp, e->api ? e->api : "https://api.github.com", e->ca_file, e->app_id,
                e->installation_id, e->secret, name, now);
            if (err < 0 || !tok_repo) {
                free(tok_repo);
                creds_secret_free(tok);
                err = err < 0 ? err : AL_ENOMEM;
                goto out;
            }
            free(e->cached_repo);
            e->cached_repo = tok_repo;
            e->cached_token = tok;
            e->cached_expires = exp;
        }
        secret = strdup(e->cached_token);
    } else {
        secret = strdup(e->secret);
    }
    user = strdup(e->username ? e->username : "x-access-token");
    if (!user || !secret) {
        err = AL_ENOMEM;
        goto out;
    }
    *out_user = steal_pointer(&user);
    *out_secret = steal_pointer(&secret);
out:
    pthread_mutex_unlock(&s->lock);
    free(user);
    creds_secret_free(secret);
    return err;
}

int creds_store_foreach_secret(creds_store *s, int (*cb)(const char *secret, void *payload),
                               void *payload)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->len && rc == 0; i++) {
        const struct creds_entry *e = &s->entries[i];
        if (e->kind == CREDS_KIND_TOKEN || e->kind == CREDS_KIND_HTTP)
            rc = cb(e->secret, payload);
        else if (e->cached_token)
            rc = cb(e->cached_token, payload);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

#define SEAL_PREFIX "alks1."

int creds_store_seal(char **out, creds_store *s, const char *aad, const void *plain, size_t len)
{
    unsigned char *blob = NULL;
    int n = 0, fin = 0, err = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    char *b64 = NULL;
    if (len > CREDS_SEAL_MAX)
        return al_error_set(AL_ETOOBIG, "too large to seal");
    if (!(blob = malloc(STORE_NONCE_LEN + len + 16 + STORE_TAG_LEN)) ||
        !(ctx = EVP_CIPHER_CTX_new())) {
        err = AL_ENOMEM;
        goto out;
    }
    unsigned char *nonce = blob, *ct = blob + STORE_NONCE_LEN;
    if (RAND_bytes(nonce, STORE_NONCE_LEN) != 1 ||
        EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, STORE_NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, s->key, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_EncryptUpdate(ctx, ct, &n, plain, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, ct + n, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, STORE_TAG_LEN, ct + n + fin) != 1) {
        err = al_error_set(AL_ERROR, "encryption failed");
        goto out;
    }
    size_t blob_len = STORE_NONCE_LEN + (size_t)n + (size_t)fin + STORE_TAG_LEN;
    if ((err = creds_b64url_encode(&b64, blob, blob_len)) < 0)
        goto out;
    size_t olen = strlen(SEAL_PREFIX) + strlen(b64) + 1;
    if (!(*out = malloc(olen))) {
        err = AL_ENOMEM;
        goto out;
    }
    snprintf(*out, olen, SEAL_PREFIX "%s", b64);
out:
    if (blob)
        OPENSSL_cleanse(blob, STORE_NONCE_LEN + len + 16 + STORE_TAG_LEN);
    free(blob);
    free(b64);
    EVP_CIPHER_CTX_free(ctx);
    return err;
}

int creds_store_unseal(unsigned char **out, size_t *out_len, creds_store *s, const char *aad,
                       const char *sealed, size_t len)
{
    unsigned char *blob = NULL, *plain = NULL;
    size_t blob_len = 0, ct_len = 0, plen = strlen(SEAL_PREFIX);
    int n = 0, fin = 0, err = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    if (len <= plen || len > 2 * CREDS_SEAL_MAX || memcmp(sealed, SEAL_PREFIX, plen) != 0)
        return al_error_set(AL_EINVAL, "not a sealed value");
    if (creds_b64url_decode(&blob, &blob_len, sealed + plen, len - plen) < 0 ||
        blob_len < STORE_NONCE_LEN + STORE_TAG_LEN) {
        err = al_error_set(AL_EINVAL, "not a sealed value");
        goto out;
    }
    ct_len = blob_len - STORE_NONCE_LEN - STORE_TAG_LEN;
    unsigned char tag[STORE_TAG_LEN];
    memcpy(tag, blob + blob_len - STORE_TAG_LEN, STORE_TAG_LEN);
    if (!(plain = malloc(ct_len + 16 + 1)) || !(ctx = EVP_CIPHER_CTX_new())) {
        err = AL_ENOMEM;
        goto out;
    }
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, STORE_NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, s->key, blob) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_DecryptUpdate(ctx, plain, &n, blob + STORE_NONCE_LEN, (int)ct_len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, STORE_TAG_LEN, tag) != 1 ||
        EVP_DecryptFinal_ex(ctx, plain + n, &fin) != 1) {
        err = al_error_set(AL_EAUTH, "cannot unseal (wrong master key, or tampered)");
        goto out;
    }
    plain[n + fin] = '\0';
    *out_len = (size_t)n + (size_t)fin;
    *out = steal_pointer(&plain);
out:
    if (plain)
        OPENSSL_cleanse(plain, ct_len + 16 + 1);
    free(plain);
    if (blob)
        OPENSSL_cleanse(blob, blob_len);
    free(blob);
    EVP_CIPHER_CTX_free(ctx);
    return err;
}
