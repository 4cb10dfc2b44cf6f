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
 */
#ifndef AIRLOCK_CREDS_STORE_H
#define AIRLOCK_CREDS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CREDS_STORE_MAX (4u << 20) /* largest store file accepted */

enum creds_kind {
    CREDS_KIND_TOKEN = 1,
    CREDS_KIND_GITHUB_APP = 2,
};

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
 * host. Borrowed. AL_ENOTFOUND when none. */
int creds_store_lookup(const struct creds_entry **out, const creds_store *store, const char *repo);

/* The secret to send upstream for `repo`: a static token, or an App
 * installation token (cached until 5 min before expiry, minted on demand).
 * `*out_user` and `*out_secret` are allocated; the caller wipes and frees
 * them with creds_secret_free(). Thread-safe. */
int creds_store_resolve(char **out_user, char **out_secret, creds_store *store, const char *repo,
                        time_t now);

/* Every secret currently known (static tokens and cached App tokens), for
 * leak scanning: calls `cb` for each; stops when it returns non-zero. */
int creds_store_foreach_secret(creds_store *store, int (*cb)(const char *secret, void *payload),
                               void *payload);

/* Wipes and frees a secret string. NULL is fine. */
void creds_secret_free(char *secret);

/* Reads a whole key or store file refusing group/other permission bits.
 * `*out` is allocated (wiped by the caller). */
int creds_file_read_private(unsigned char **out, size_t *out_len, const char *path, size_t max);

#endif
