/* The encrypted store of real upstream credentials.
 *
 * On disk: "ALKSTOR1" || 12-byte nonce || AES-256-GCM(JSON) || 16-byte tag,
 * the magic as additional data, under a 32-byte master key file. Both files
 * must be mode 0600 (no group/other bits) or loading fails.
 *
 * Entries are scoped to "host", "host/owner" or "host/owner/repo"; a lookup
 * for a repository takes the repo entry over the owner entry over the host
 * entry. An entry is a static token or a GitHub App (app id, installation id,
 * PEM private key, API base URL).
 *
 * An HTTP secret (kind "http", issue 15) is a value for any HTTP API, named
 * NAME and stored under the scope "http:NAME" with the domain patterns it
 * may be sent to ("hosts"). It never answers a repository lookup: git
 * credentials and HTTP secrets are separate namespaces in one file.
 * airlockd hands HTTP secrets to the egress proxy of the sessions they are
 * granted to (docs/airlockd.md, "HTTP secrets").
 */
#ifndef AIRLOCK_CREDS_STORE_H
#define AIRLOCK_CREDS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "airlock/strlist.h"

#define CREDS_STORE_MAX (4u << 20) /* largest store file accepted */

enum creds_kind {
    CREDS_KIND_TOKEN = 1,
    CREDS_KIND_GITHUB_APP = 2,
    CREDS_KIND_HTTP = 3, /* an HTTP secret: scope "http:NAME", hosts */
};

#define CREDS_HTTP_PREFIX    "http:"
#define CREDS_HTTP_NAME_MAX  64         /* bytes of an HTTP secret's name */
#define CREDS_HTTP_VALUE_MAX 16384      /* bytes of an HTTP secret's value */
#define CREDS_HTTP_HOSTS_MAX 32         /* domain patterns of one HTTP secret */
#define CREDS_SEAL_MAX       (1u << 20) /* largest sealed blob accepted */

struct creds_entry {
    char *scope; /* "host", "host/owner" or "host/owner/repo" */
    enum creds_kind kind;
    char *username; /* Basic user sent upstream; "x-access-token" by default */
    char *secret;   /* static token, or PEM private key for an App */
    int64_t app_id;
    int64_t installation_id;
    char *api;     /* App: API base URL, e.g. https://api.github.com */
    char *ca_file; /* App: CA bundle for the API, may be NULL */
    /* App token cache (in memory only) */
    char *cached_token;
    char *cached_repo; /* the repository the cached token is narrowed to */
    time_t cached_expires;
    struct al_strlist hosts; /* HTTP: domain patterns (allowedDomains syntax, lower case) */
};

typedef struct creds_store creds_store;

/* Opens the store at `path` with the key at `key_path`. A missing store file
 * is an empty store (created on save). Checks both files' modes. The caller
 * frees with creds_store_free(). */
int creds_store_open(creds_store **out, const char *path, const char *key_path);

/* Replaces the store's entries with those of the store file open at `fd`
 * (read from offset 0; mode and size checked as creds_store_open() does;
 * decrypted with the master key loaded at open, so the key file need not
 * be readable any more), or with no entries when fd is -1 (the file was
 * removed). All or nothing: on any error (unreadable, tampered, malformed)
 * the old entries stay in use and al_error_last() says why. The caller keeps
 * `fd`. Thread-safe against creds_store_resolve()/foreach_secret(). */
int creds_store_reload_fd(creds_store *store, int fd);

/* creds_store_reload_fd() on the store's own path (missing: no entries);
 * needs permission to read it. */
int creds_store_reload(creds_store *store);

/* Wipes every secret and frees. NULL is fine. */
void creds_store_free(creds_store *store);

/* Encrypts and atomically replaces the store file (0600). */
int creds_store_save(creds_store *store);

/* Adds or replaces the entry with the same scope. Copies every field. */
int creds_store_put(creds_store *store, const struct creds_entry *entry);

/* Removes the entry with exactly this scope: 0 or AL_ENOTFOUND. */
int creds_store_remove(creds_store *store, const char *scope);

/* Number of entries and the i-th one (borrowed; valid until the store
 * changes). */
size_t creds_store_count(const creds_store *store);
const struct creds_entry *creds_store_at(const creds_store *store, size_t i);

/* The entry that applies to `repo` ("host/owner/name"): repo over owner over
 * host; HTTP secrets never. Borrowed. AL_ENOTFOUND when none. */
int creds_store_lookup(const struct creds_entry **out, const creds_store *store, const char *repo);

/* The secret to send upstream for `repo`: a static token, or an App
 * installation token (cached until 5 min before expiry, minted on demand).
 * `*out_user` and `*out_secret` are allocated; the caller wipes and frees
 * them with creds_secret_free(). Thread-safe. */
int creds_store_resolve(char **out_user, char **out_secret, creds_store *store, const char *repo,
                        time_t now);

/* Every secret currently known (static tokens, HTTP secrets and cached App
 * tokens), for
 * leak scanning: calls `cb` for each; stops when it returns non-zero. */
int creds_store_foreach_secret(creds_store *store, int (*cb)(const char *secret, void *payload),
                               void *payload);

/* The HTTP secret named `name` (borrowed; valid until the store changes),
 * or AL_ENOTFOUND. */
int creds_store_http_find(const struct creds_entry **out, const creds_store *store,
                          const char *name);

/* 1 when `name` can name an HTTP secret: [A-Za-z][A-Za-z0-9_-]*, at most
 * CREDS_HTTP_NAME_MAX bytes. */
int creds_http_name_valid(const char *name);

/* Checks an HTTP secret's value (`len` bytes): 1..CREDS_HTTP_VALUE_MAX bytes
 * of printable ASCII without space (it goes into headers and environment
 * variables). 0, or AL_EINVAL with a reason that never quotes the value. */
int creds_http_value_check(const char *value, size_t len);

/* Parses a comma-separated list of domain patterns (`len` bytes; "--hosts
 * api.example.com,*.example.org") into `out` (appended, lower-cased): each
 * entry as allowedDomains takes it (al_settings_check_domain), no empty
 * entry, no duplicate, 1..CREDS_HTTP_HOSTS_MAX entries. 0, AL_EINVAL naming
 * the entry (then `out` holds what was appended before it) or AL_ENOMEM. */
int creds_http_hosts_parse(struct al_strlist *out, const char *list, size_t len);

/* Encrypts `len` bytes with the store's master key (AES-256-GCM, a fresh
 * nonce, `aad` as additional data): *out is "alks1." + base64url(nonce ||
 * ciphertext || tag), NUL-terminated, allocated (the caller frees). For
 * small secrets airlockd keeps in its state database (a session CA's key).
 * 0, AL_ENOMEM or AL_ERROR. */
int creds_store_seal(char **out, creds_store *store, const char *aad, const void *plain,
                     size_t len);

/* The reverse of creds_store_seal() with the same `aad`: *out (NUL-
 * terminated, allocated, the caller wipes and frees) and *out_len. AL_EINVAL
 * for a malformed blob, AL_EAUTH for a wrong key, aad or a tampered blob. */
int creds_store_unseal(unsigned char **out, size_t *out_len, creds_store *store, const char *aad,
                       const char *sealed, size_t len);

/* Wipes and frees a secret string. NULL is fine. */
void creds_secret_free(char *secret);

/* Reads a whole key or store file refusing group/other permission bits.
 * `*out` is allocated (wiped by the caller). */
int creds_file_read_private(unsigned char **out, size_t *out_len, const char *path, size_t max);

#endif
