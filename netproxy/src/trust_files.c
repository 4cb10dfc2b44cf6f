/* The files and variables by which a sandbox trusts its session CA
 * (netproxy.h, "How a sandbox trusts its session CA"): one implementation
 * for `airlock run` and airlockd's sessions. */
#include "airlock/buf.h"
#include "airlock/error.h"
#include "airlock/netproxy.h"
#include "airlock/path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CA_PEM_MAX (64 * 1024) /* the session CA's certificate */
/* the whole bundle: the CA, a root's bundle and the extra anchors */
#define BUNDLE_MAX (16 * 1024 * 1024)
/* Oracle's "trusted key usage" attribute: marks a certificate bag of a
 * PKCS#12 file as a trusted certificate entry for Java's keystore. */
#define JDK_TRUSTED_USAGE_OID "2.16.840.1.113894.746875.1.1"

/* The distributions' CA bundle paths, in the order the root's own bundle is
 * looked for. */
static const char *const bundle_paths[] = {
    "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine, Arch */
    "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
    "/etc/ssl/cert.pem",                  /* Alpine, macOS-like layouts */
};
#define N_BUNDLE_PATHS (sizeof(bundle_paths) / sizeof(*bundle_paths))

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

const struct np_trust_var np_trust_vars[] = {
    {"SSL_CERT_FILE", NP_TRUST_BUNDLE},      {"NODE_EXTRA_CA_CERTS", NP_TRUST_CA_PEM},
    {"REQUESTS_CA_BUNDLE", NP_TRUST_BUNDLE}, {"CURL_CA_BUNDLE", NP_TRUST_BUNDLE},
    {"GIT_SSL_CAINFO", NP_TRUST_BUNDLE},
};
const size_t np_trust_n_vars = sizeof(np_trust_vars) / sizeof(*np_trust_vars);

/* Whether the last OpenSSL error is the end of PEM input ("no start line"):
 * what a PEM reader says when nothing is left. */
static int pem_at_end(void)
{
    unsigned long e = ERR_peek_last_error();
    return e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
}

/* Adds certificate `x` to `bags` as a trusted entry named `alias`. 0 or
 * AL_ENOMEM. */
static int p12_add_trusted(STACK_OF(PKCS12_SAFEBAG) * *bags, X509 *x, const char *alias)
{
    ASN1_OBJECT *any_eku = OBJ_nid2obj(NID_anyExtendedKeyUsage);
    PKCS12_SAFEBAG *bag = any_eku ? PKCS12_add_cert(bags, x) : NULL;
    if (!bag || !PKCS12_add_friendlyname_asc(bag, alias, -1) ||
        !PKCS12_add1_attr_by_txt(bag, JDK_TRUSTED_USAGE_OID, V_ASN1_OBJECT,
                                 (const unsigned char *)any_eku, -1))
        return AL_ENOMEM;
    return 0;
}

/* The DER of `p12` in a malloc'd buffer. 0 or AL_ENOMEM. */
static int p12_der(unsigned char **out, size_t *out_len, PKCS12 *p12)
{
    unsigned char *der = NULL;
    int n = i2d_PKCS12(p12, &der);
    if (n <= 0)
        return AL_ENOMEM;
    *out = malloc((size_t)n);
    if (*out) {
        memcpy(*out, der, (size_t)n);
        *out_len = (size_t)n;
    }
    OPENSSL_free(der);
    return *out ? 0 : AL_ENOMEM;
}

int np_trust_p12(const char *pem_bundle, size_t len, const char *password, unsigned char **out,
                 size_t *out_len)
{
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    STACK_OF(PKCS7) *safes = NULL;
    PKCS12 *p12 = NULL;
    BIO *in = NULL;
    int err = 0, n = 0;
    X509 *x;
    *out = NULL;
    *out_len = 0;
    if (len > BUNDLE_MAX)
        return al_error_set(AL_ETOOBIG, "PKCS#12: the bundle is larger than %d bytes", BUNDLE_MAX);
    if (!pem_bundle || !password)
        return al_error_set(AL_EINVAL, "PKCS#12: no bundle or no password");
    if (!(in = BIO_new_mem_buf(pem_bundle, (int)len))) {
        err = AL_ENOMEM;
        goto out;
    }
    ERR_clear_error();
    /* _AUX: also OpenSSL's "TRUSTED CERTIFICATE" blocks of a bundle */
    while (err == 0 && (x = PEM_read_bio_X509_AUX(in, NULL, NULL, NULL))) {
        char alias[32];
        /* the session CA comes first in the bundle */
        snprintf(alias, sizeof(alias), n == 0 ? "airlock-session-ca" : "ca-%d", n);
        err = p12_add_trusted(&bags, x, alias);
        X509_free(x);
        n++;
    }
    if (err == 0 && !pem_at_end())
        err = al_error_set(AL_EINVAL, "PKCS#12: certificate %d of the bundle is malformed: %s",
                           n + 1, ERR_reason_error_string(ERR_peek_last_error()));
    else if (err == 0 && n == 0)
        err = al_error_set(AL_EINVAL, "PKCS#12: no certificate in the bundle");
    if (err < 0)
        goto out;
    if (!PKCS12_add_safe(&safes, bags, -1, 0, NULL) || !(p12 = PKCS12_add_safes(safes, 0)) ||
        !PKCS12_set_mac(p12, password, -1, NULL, 0, 2048, EVP_sha256()) ||
        p12_der(out, out_len, p12) < 0)
        err = AL_ENOMEM;
out:
    if (err == AL_ENOMEM)
        al_error_set(AL_ENOMEM, "PKCS#12: %s", ERR_reason_error_string(ERR_peek_last_error()));
    ERR_clear_error();
    PKCS12_free(p12);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    BIO_free(in);
    return err;
}

/* The real path of the sandbox's root `root` (NULL or "" = the host's) in
 * `top` (PATH_MAX). 0 or AL_EIO. */
static int root_real(char *top, const char *root)
{
    if (!root || !root[0]) {
        snprintf(top, PATH_MAX, "/");
        return 0;
    }
    if (!realpath(root, top))
        return al_error_set_errno(AL_EIO, errno, "the sandbox's root %s", root);
    return 0;
}

/* `real` (a host path) as a path inside the root `top`, into `inroot`
 * (PATH_MAX). 0, or -1 when it lies outside the root. */
static int root_relative(char *inroot, const char *top, const char *real)
{
    size_t skip = strcmp(top, "/") == 0 ? 0 : strlen(top);
    if (!al_path_within(real, top) || real[skip] != '/')
        return -1;
    snprintf(inroot, PATH_MAX, "%s", real + skip);
    return 0;
}

/* Opens the distribution bundle `path` of the root whose real path is
 * `top`, resolved as inside that root (openat2 RESOLVE_IN_ROOT: an absolute
 * symbolic link stays in it; without openat2, a link that leaves the root
 * is not followed). Returns the fd of a regular file, its real path inside
 * the root in `inroot` (PATH_MAX); -1 when the root has none there (or it
 * cannot be read). */
static int bundle_open(const char *top, const char *path, char *inroot)
{
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    char real[PATH_MAX], proc[32];
    struct stat st;
    int fd = -1;
    int rootfd = open(top, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd >= 0)
        fd = (int)syscall(SYS_openat2, rootfd, path + 1, &how, sizeof(how));
    if (fd >= 0) {
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(proc, real, sizeof(real) - 1);
        real[n > 0 ? n : 0] = '\0';
    } else if (rootfd >= 0 && errno == ENOSYS) {
        char p[PATH_MAX];
        int n = snprintf(p, sizeof(p), "%s%s", strcmp(top, "/") == 0 ? "" : top, path);
        if (n > 0 && n < PATH_MAX && realpath(p, real) && root_relative(inroot, top, real) == 0)
            fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    }
    if (rootfd >= 0)
        close(rootfd);
    if (fd >= 0 &&
        (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || root_relative(inroot, top, real) < 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Appends what `fd` holds to `b` (named `path` in messages). 0, AL_EIO or
 * AL_ETOOBIG. */
static int buf_read_fd(struct al_buf *b, int fd, const char *path)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return al_error_set_errno(AL_EIO, errno, "the CA bundle %s", path);
        if (n == 0)
            return 0;
        if (al_buf_append(b, chunk, (size_t)n) < 0)
            return al_error_set(AL_ETOOBIG, "the CA bundle %s: larger than %d bytes", path,
                                BUNDLE_MAX);
    }
}

int np_trust_bundle(char **out, size_t *out_len, const char *ca_pem, const char *root,
                    const char *extra_pem)
{
    struct al_buf b;
    char top[PATH_MAX], inroot[PATH_MAX];
    int err = 0;
    *out = NULL;
    *out_len = 0;
    al_buf_init(&b, BUNDLE_MAX);
    if (strlen(ca_pem) > CA_PEM_MAX)
        err = al_error_set(AL_ETOOBIG, "the session CA is larger than %d bytes", CA_PEM_MAX);
    else if ((err = al_buf_puts(&b, ca_pem)) == 0)
        err = root_real(top, root);
    /* the root's own trust: the first bundle it has */
    for (size_t i = 0; i < N_BUNDLE_PATHS && err == 0; i++) {
        int fd = bundle_open(top, bundle_paths[i], inroot);
        if (fd < 0)
            continue;
        if ((err = al_buf_puts(&b, "\n")) == 0)
            err = buf_read_fd(&b, fd, bundle_paths[i]);
        close(fd);
        break;
    }
    if (err == 0 && extra_pem && extra_pem[0] &&
        ((err = al_buf_puts(&b, "\n")) < 0 || (err = al_buf_puts(&b, extra_pem)) < 0))
        al_error_set(err, "the CA bundle would be larger than %d bytes", BUNDLE_MAX);
    if (err == 0) {
        *out_len = b.len;
        if (!(*out = al_buf_detach(&b)))
            err = al_error_set(AL_ENOMEM, "out of memory");
    }
    al_buf_free(&b);
    return err;
}

/* A new file `name` in `dir` (mode 0444) holding `len` bytes; its path goes
 * to `path` (PATH_MAX). 0, AL_EEXISTS, AL_ETOOBIG or AL_EIO. */
static int file_write(char *path, const char *dir, const char *name, const void *data, size_t len)
{
    if (al_path_join(path, PATH_MAX, dir, name) < 0)
        return al_error_set(AL_ETOOBIG, "%s/%s: path too long", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
    if (fd < 0)
        return al_error_set_errno(errno == EEXIST ? AL_EEXISTS : AL_EIO, errno, "create %s", path);
    const char *p = data;
    int err = 0;
    while (len > 0 && err == 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            err = al_error_set_errno(AL_EIO, w < 0 ? errno : EIO, "write %s", path);
        else {
            p += w;
            len -= (size_t)w;
        }
    }
    if (close(fd) < 0 && err == 0)
        err = al_error_set_errno(AL_EIO, errno, "write %s", path);
    return err;
}

/* Adds the bind of `src` at `dst` unless `dst` has one. 0 or AL_ENOMEM. */
static int bind_add(struct np_trust_files *f, const char *src, const char *dst)
{
    if (al_strlist_find(&f->dst, dst) >= 0)
        return 0;
    if (al_strlist_push(&f->src, src) < 0 || al_strlist_push(&f->dst, dst) < 0)
        return al_error_set(AL_ENOMEM, "out of memory");
    return 0;
}

/* The bundle `src` over each distribution bundle path the root has, at
 * its real path inside the root (the sandbox's mounts must not follow a
 * symbolic link from outside the new root). */
static int bundle_binds(struct np_trust_files *f, const char *root, const char *src)
{
    char top[PATH_MAX], inroot[PATH_MAX];
    int err = root_real(top, root);
    for (size_t i = 0; i < N_BUNDLE_PATHS && err == 0; i++) {
        int fd = bundle_open(top, bundle_paths[i], inroot);
        if (fd < 0)
            continue;
        close(fd);
        err = bind_add(f, src, inroot);
    }
    return err;
}

int np_trust_files_write(struct np_trust_files *out, const char *dir, const char *root,
                         const char *ca_pem, const char *extra_pem)
{
    char ca[PATH_MAX], bundle[PATH_MAX], store[PATH_MAX];
    char *pem = NULL;
    unsigned char *p12 = NULL;
    size_t pem_len = 0, p12_len = 0;
    int err;
    memset(out, 0, sizeof(*out));
    if (!dir || dir[0] != '/' || !ca_pem)
        return al_error_set(AL_EINVAL, "the session CA's files: no directory or no CA");
    if ((err = np_trust_bundle(&pem, &pem_len, ca_pem, root, extra_pem)) < 0 ||
        (err = np_trust_p12(pem, pem_len, NP_TRUST_P12_PASSWORD, &p12, &p12_len)) < 0 ||
        (err = file_write(ca, dir, "ca.pem", ca_pem, strlen(ca_pem))) < 0 ||
        (err = file_write(bundle, dir, "ca-bundle.pem", pem, pem_len)) < 0 ||
        (err = file_write(store, dir, "truststore.p12", p12, p12_len)) < 0)
        goto out;
    if ((err = bind_add(out, ca, NP_TRUST_CA_PEM)) < 0 ||
        (err = bind_add(out, bundle, NP_TRUST_BUNDLE)) < 0 ||
        (err = bind_add(out, store, NP_TRUST_P12)) < 0)
        goto out;
    err = bundle_binds(out, root, bundle);
out:
    if (err < 0)
        np_trust_files_free(out);
    free(pem);
    free(p12);
    return err;
}

void np_trust_files_free(struct np_trust_files *files)
{
    al_strlist_free(&files->src);
    al_strlist_free(&files->dst);
}

int np_trust_java_options(char *out, size_t size, const char *existing)
{
    const char *e = existing ? existing : "";
    int n = snprintf(out, size,
                     "%s%s-Djavax.net.ssl.trustStore=" NP_TRUST_P12
                     " -Djavax.net.ssl.trustStoreType=PKCS12"
                     " -Djavax.net.ssl.trustStorePassword=" NP_TRUST_P12_PASSWORD,
                     e, e[0] ? " " : "");
    if (n < 0 || (size_t)n >= size) {
        if (size)
            out[0] = '\0';
        return al_error_set(AL_ETOOBIG, "JAVA_TOOL_OPTIONS would be longer than %zu bytes",
                            size ? size - 1 : 0);
    }
    return 0;
}
