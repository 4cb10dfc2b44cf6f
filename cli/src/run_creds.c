/* Masked credentials and TLS termination for `airlock run` (see
 * run_creds.h). */
#include "run_creds.h"

#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/log.h"
#include "airlock/path.h"
#include "airlock/proxy_env.h"
#include "airlock/termtext.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CRED_FILE_MAX   (1024 * 1024)     /* credmask's own limit for a file */
#define CA_FILE_MAX     (64 * 1024)       /* caCertPath, caKeyPath */
#define TRUST_FILES_MAX (8 * 1024 * 1024) /* extraCaCertPaths */

/* "sandbox.credentials" or "credentials", in the shape of the last
 * settings file loaded (policy->key_prefix). */
static const char *cred_key(const struct al_policy *policy)
{
    return policy->key_prefix[0] ? "sandbox.credentials" : "credentials";
}

/* Writes `len` bytes to a new file `name` in rc->dir with `mode`; the
 * full path goes to `out` (PATH_MAX). 0 or AL_EIO (printed). */
static int write_private(const struct run_creds *rc, const char *name, const void *data, size_t len,
                         mode_t mode, char *out)
{
    if (al_path_join(out, PATH_MAX, rc->dir, name) < 0) {
        fprintf(stderr, "airlock: %s/%s: path too long\n", rc->dir, name);
        return AL_EIO;
    }
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        fprintf(stderr, "airlock: cannot create %s: %s\n", out, strerror(errno));
        return AL_EIO;
    }
    const char *p = data;
    size_t left = len;
    int err = 0;
    while (left > 0 && err == 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = AL_EIO;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (close(fd) < 0)
        err = AL_EIO;
    if (err < 0)
        fprintf(stderr, "airlock: cannot write %s: %s\n", out, strerror(errno));
    return err;
}

/* The private directory, made on first use. 0 or AL_EIO (printed). */
static int private_dir(struct run_creds *rc)
{
    if (rc->dir[0])
        return 0;
    const char *base = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    if (!base || base[0] != '/' || stat(base, &st) < 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != geteuid())
        base = "/tmp";
    if ((size_t)snprintf(rc->dir, sizeof(rc->dir), "%s/airlock-run.XXXXXX", base) >=
            sizeof(rc->dir) ||
        !mkdtemp(rc->dir)) {
        fprintf(stderr, "airlock: cannot make a private directory in %s: %s\n", base,
                strerror(errno));
        rc->dir[0] = '\0';
        return AL_EIO;
    }
    return 0;
}

/* Binds host file `src` over `dst` inside the sandbox. 0 or AL_ENOMEM. */
static int add_bind(struct run_creds *rc, const char *src, const char *dst)
{
    if (al_strlist_push(&rc->bind_src, src) < 0 || al_strlist_push(&rc->bind_dst, dst) < 0)
        return AL_ENOMEM;
    return 0;
}

/* Sets NAME=value in `env`: a --pass-env'd NAME is replaced (with a
 * warning naming `why`). 0 or AL_ENOMEM. */
static int env_set(struct al_strlist *env, const char *name, const char *value, const char *why)
{
    size_t n = strlen(name);
    struct al_buf b;
    al_buf_init(&b, 64 * 1024 + 256);
    if (al_buf_printf(&b, "%s=%s", name, value) < 0) {
        al_buf_free(&b);
        return AL_ENOMEM;
    }
    for (size_t i = 0; i < env->len; i++) {
        if (strncmp(env->items[i], name, n) == 0 && env->items[i][n] == '=') {
            fprintf(stderr, "airlock: warning: --pass-env %s: replaced by airlock's own (%s)\n",
                    name, why);
            free(env->items[i]);
            env->items[i] = al_buf_detach(&b);
            return env->items[i] ? 0 : AL_ENOMEM;
        }
    }
    char *s = al_buf_detach(&b);
    return s ? al_strlist_push_owned(env, s) : AL_ENOMEM;
}

/* credentials.envVars mask entries: each variable set in airlock's own
 * environment enters the credential set, and the sandbox gets its
 * sentinel. */
static int mask_env_vars(struct run_creds *rc, const struct al_policy *policy,
                         struct al_strlist *env)
{
    for (size_t i = 0; i < policy->n_mask_env; i++) {
        const struct al_masked *m = &policy->mask_env[i];
        const char *real = getenv(m->name);
        if (!real || !*real) {
            fprintf(stderr,
                    "airlock: warning: %s.envVars: %s (mode \"mask\") is not set in airlock's "
                    "environment: nothing passed for it\n",
                    cred_key(policy), m->name);
            continue;
        }
        struct al_strlist hosts = {0};
        int err = al_masked_inject_hosts(policy, m, &hosts);
        if (err == 0 &&
            (err = al_credset_add(&rc->set, m->name, real, strlen(real), &hosts, NULL)) < 0)
            fprintf(stderr, "airlock: %s.envVars: %s: %s\n", cred_key(policy), m->name,
                    al_error_last());
        al_strlist_free(&hosts);
        if (err < 0)
            return err;
        const struct al_cred *c = &rc->set.v[rc->set.len - 1];
        if (env_set(env, m->name, c->sentinel, "its sentinel: credentials.envVars masks it") < 0)
            return AL_ENOMEM;
    }
    return 0;
}

/* credentials.files mask entries: the real file is read here, its masked
 * copy is bound over it, and its real path is hidden as well (so that
 * without mounts it is unreadable rather than real). */
static int mask_files(struct run_creds *rc, struct al_policy *policy)
{
    for (size_t i = 0; i < policy->n_mask_files; i++) {
        const struct al_masked *m = &policy->mask_files[i];
        char real[PATH_MAX], copy[PATH_MAX], name[32];
        struct stat st;
        struct al_buf content;
        char *masked = NULL;
        size_t masked_len = 0;
        int err = 0;
        if (!realpath(m->name, real) || stat(real, &st) < 0) {
            if (errno == ENOENT) { /* the settings loader said so */
                al_log(AL_LOG_DEBUG, "%s does not exist: nothing to mask", m->name);
                continue;
            }
            fprintf(stderr, "airlock: %s.files: %s: %s\n", cred_key(policy), m->name,
                    strerror(errno));
            return AL_EIO;
        }
        if (!S_ISREG(st.st_mode)) {
            fprintf(stderr, "airlock: %s.files: %s (mode \"mask\") is not a regular file\n",
                    cred_key(policy), m->name);
            return AL_EINVAL;
        }
        al_buf_init(&content, CRED_FILE_MAX);
        if (al_buf_read_file(&content, real) < 0) {
            fprintf(stderr, "airlock: %s.files: %s: %s\n", cred_key(policy), m->name,
                    al_error_last());
            al_buf_wipe_free(&content);
            return AL_EIO;
        }
        struct al_strlist hosts = {0};
        err = al_masked_inject_hosts(policy, m, &hosts);
        if (err == 0)
            err = al_cred_mask_file(&rc->set, m->name, content.ptr ? content.ptr : "", content.len,
                                    m->extract, &hosts, &masked, &masked_len);
        al_strlist_free(&hosts);
        al_buf_wipe_free(&content);
        if (err < 0) {
            fprintf(stderr, "airlock: %s.files: %s\n", cred_key(policy), al_error_last());
            return err;
        }
        snprintf(name, sizeof(name), "file-%zu", i);
        if ((err = private_dir(rc)) == 0 &&
            (err = write_private(rc, name, masked, masked_len, 0400, copy)) == 0 &&
            (err = add_bind(rc, copy, real)) == 0)
            err = al_strlist_push_unique(&policy->deny_read, real);
        free(masked);
        if (err < 0)
            return err;
    }
    return 0;
}

/* Reads `path` (at most `max` bytes) appended to `b`; prints why not. */
static int read_named(struct al_buf *b, const char *what, const char *path)
{
    if (al_buf_read_file(b, path) < 0) {
        fprintf(stderr, "airlock: %s %s: %s\n", what, path, al_error_last());
        return AL_EIO;
    }
    return 0;
}

/* The session CA: the operator's (caCertPath + caKeyPath) or a new one.
 * The operator's key file is added to the denied paths: a key under the
 * home directory would otherwise be readable inside. */
static int session_ca(struct run_creds *rc, struct al_policy *policy)
{
    const struct al_tlsterm *t = &policy->tls;
    if (!t->ca_cert_path && !t->ca_key_path) {
        if (np_ca_generate(&rc->ca_cert, &rc->ca_key, "airlock run session CA") < 0) {
            fprintf(stderr, "airlock: cannot make the session CA: %s\n", al_error_last());
            return AL_EIO;
        }
        return 0;
    }
    if (!t->ca_cert_path || !t->ca_key_path) {
        fprintf(stderr, "airlock: %s.tlsTerminate: caCertPath and caKeyPath go together\n",
                policy->net_key_path);
        return AL_EINVAL;
    }
    struct al_buf cert, key;
    al_buf_init(&cert, CA_FILE_MAX);
    al_buf_init(&key, CA_FILE_MAX);
    int err = read_named(&cert, "tlsTerminate.caCertPath", t->ca_cert_path);
    if (err == 0)
        err = read_named(&key, "tlsTerminate.caKeyPath", t->ca_key_path);
    if (err == 0 && (!(rc->ca_cert = al_buf_detach(&cert)) || !(rc->ca_key = al_buf_detach(&key))))
        err = AL_ENOMEM;
    char real[PATH_MAX];
    if (err == 0 && realpath(t->ca_key_path, real))
        err = al_strlist_push_unique(&policy->deny_read, real);
    al_buf_free(&cert);
    al_buf_wipe_free(&key);
    return err;
}

/* The files and variables by which the sandbox trusts the session CA, the
 * same as a session's (np_trust_files_write). */
static int ca_for_sandbox(struct run_creds *rc, struct al_strlist *env)
{
    struct np_trust_files files;
    int err;
    if ((err = private_dir(rc)) < 0)
        return err;
    if ((err = np_trust_files_write(&files, rc->dir, NULL, rc->ca_cert, rc->extra_trust)) < 0) {
        fprintf(stderr, "airlock: the session CA's files for the sandbox: %s\n", al_error_last());
        return err;
    }
    /* a masked file already bound at one of its paths keeps it */
    for (size_t i = 0; i < files.dst.len && err == 0; i++)
        if (al_strlist_find(&rc->bind_dst, files.dst.items[i]) < 0)
            err = add_bind(rc, files.src.items[i], files.dst.items[i]);
    np_trust_files_free(&files);
    static const char *const why = "the session CA: network.tlsTerminate";
    for (size_t i = 0; i < np_trust_n_vars && err == 0; i++)
        err = env_set(env, np_trust_vars[i].name, np_trust_vars[i].value, why);
    if (err < 0)
        return err;
    /* Java: the proxy's properties (run_network_env keeps a --pass-env'd
     * JAVA_TOOL_OPTIONS instead of them) plus the truststore. */
    const char *java = AL_PROXY_ENV_JAVA;
    for (size_t i = 0; i < env->len; i++)
        if (strncmp(env->items[i], "JAVA_TOOL_OPTIONS=", 18) == 0)
            java = env->items[i] + 18;
    char opts[4096];
    if (np_trust_java_options(opts, sizeof(opts), java) < 0) {
        fprintf(stderr, "airlock: %s\n", al_error_last());
        return AL_EINVAL;
    }
    /* replacing a --pass-env'd value that it extends: no warning */
    for (size_t i = 0; i < env->len; i++)
        if (strncmp(env->items[i], "JAVA_TOOL_OPTIONS=", 18) == 0) {
            free(env->items[i]);
            memmove(&env->items[i], &env->items[i + 1], (env->len - i) * sizeof(char *));
            env->len--;
            break;
        }
    return env_set(env, "JAVA_TOOL_OPTIONS", opts, why);
}

/* extraCaCertPaths: more trust anchors for the upstream side. */
static int extra_trust(struct run_creds *rc, const struct al_policy *policy)
{
    const struct al_strlist *paths = &policy->tls.extra_ca_paths;
    if (paths->len == 0)
        return 0;
    struct al_buf b;
    al_buf_init(&b, TRUST_FILES_MAX);
    int err = 0;
    for (size_t i = 0; i < paths->len && err == 0; i++)
        if ((err = read_named(&b, "tlsTerminate.extraCaCertPaths:", paths->items[i])) == 0)
            err = al_buf_puts(&b, "\n");
    if (err == 0 && !(rc->extra_trust = al_buf_detach(&b)))
        err = AL_ENOMEM;
    al_buf_free(&b);
    return err;
}

int run_creds_prepare(struct run_creds *rc, struct al_policy *policy, struct al_strlist *env,
                      int networked)
{
    int err;
    memset(rc, 0, sizeof(*rc));
    /* Fails closed: settings validation refuses a mask without
     * tlsTerminate already; a policy built some other way still must not
     * hand out sentinels that nothing would ever replace. */
    if ((policy->n_mask_env || policy->n_mask_files) && !policy->net.tls_terminate) {
        fprintf(stderr,
                "airlock: %s: a \"mask\" entry needs %s.tlsTerminate (the proxy only puts real "
                "values back into requests it terminates)\n",
                cred_key(policy), policy->net_key_path);
        return AL_EINVAL;
    }
    if ((err = mask_env_vars(rc, policy, env)) < 0 || (err = mask_files(rc, policy)) < 0)
        return err;
    if (networked && policy->net.tls_terminate &&
        ((err = session_ca(rc, policy)) < 0 || (err = extra_trust(rc, policy)) < 0 ||
         (err = ca_for_sandbox(rc, env)) < 0))
        return err;
    if (rc->bind_src.len) {
        rc->binds = calloc(rc->bind_src.len, sizeof(*rc->binds));
        if (!rc->binds)
            return AL_ENOMEM;
        for (size_t i = 0; i < rc->bind_src.len; i++)
            rc->binds[i] = (struct sb_file_bind){rc->bind_src.items[i], rc->bind_dst.items[i]};
        rc->n_binds = rc->bind_src.len;
    }
    return 0;
}

int run_creds_apply(const struct run_creds *rc, np_proxy *proxy, const char *session)
{
    if (rc->ca_cert &&
        np_proxy_set_tls(proxy, session, rc->ca_cert, rc->ca_key, rc->extra_trust) < 0) {
        fprintf(stderr, "airlock: network.tlsTerminate: %s\n", al_error_last());
        return AL_EINVAL;
    }
    if (rc->set.len && np_proxy_set_credentials(proxy, session, &rc->set) < 0) {
        fprintf(stderr, "airlock: masked credentials: %s\n", al_error_last());
        return AL_EINVAL;
    }
    return 0;
}

void run_creds_free(struct run_creds *rc)
{
    al_credset_free(&rc->set);
    if (rc->ca_key) {
        OPENSSL_cleanse(rc->ca_key, strlen(rc->ca_key));
        free(rc->ca_key);
    }
    free(rc->ca_cert);
    free(rc->extra_trust);
    free(rc->binds);
    al_strlist_free(&rc->bind_src);
    al_strlist_free(&rc->bind_dst);
    if (rc->dir[0]) {
        DIR *d = opendir(rc->dir);
        struct dirent *de;
        while (d && (de = readdir(d)))
            if (!al_path_is_dot(de->d_name))
                unlinkat(dirfd(d), de->d_name, 0);
        if (d)
            closedir(d);
        rmdir(rc->dir);
    }
    memset(rc, 0, sizeof(*rc));
}
