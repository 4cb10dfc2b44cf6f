/* Pull requests through GitHub's REST API (adapters/forge.h). */
#include "airlockd/adapters/forge.h"

#include "airlockd/core/config.h"
#include "airlockd/core/daemon.h"

#include "airlock/buf.h"
#include "airlock/creds_store.h"
#include "airlock/error.h"
#include "airlock/log.h"

#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FORGE_RESPONSE_MAX (1024 * 1024) /* bytes of an API answer read */
#define FORGE_TIMEOUT_S    30L

/* The parts of https://HOST/OWNER/NAME[.git][/]: host as written (with a
 * port if any), owner and name; each [A-Za-z0-9._-] (host also ':' and
 * '[]'), bounded. */
struct forge_repo {
    char host[256];
    char owner[128];
    char name[128];
};

static int seg_ok(const char *s, size_t n, const char *extra)
{
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || (extra && c && strchr(extra, c))))
            return 0;
    }
    return 1;
}

static int repo_parse(struct forge_repo *out, const char *url)
{
    if (strncmp(url, "https://", 8) != 0)
        return -1;
    const char *h = url + 8, *o = strchr(h, '/');
    if (!o)
        return -1;
    const char *n = strchr(o + 1, '/');
    if (!n)
        return -1;
    size_t hl = (size_t)(o - h), ol = (size_t)(n - o - 1), nl = strlen(n + 1);
    if (nl && n[nl] == '/')
        nl--;
    if (nl > 4 && memcmp(n + 1 + nl - 4, ".git", 4) == 0)
        nl -= 4;
    if (hl >= sizeof(out->host) || ol >= sizeof(out->owner) || nl >= sizeof(out->name) ||
        !seg_ok(h, hl, ":[]") || !seg_ok(o + 1, ol, NULL) || !seg_ok(n + 1, nl, NULL))
        return -1;
    memcpy(out->host, h, hl);
    out->host[hl] = '\0';
    memcpy(out->owner, o + 1, ol);
    out->owner[ol] = '\0';
    memcpy(out->name, n + 1, nl);
    out->name[nl] = '\0';
    return 0;
}

/* A branch name as the API takes it: printable ASCII, no space, bounded. */
static int branch_ok(const char *b)
{
    size_t n = b ? strlen(b) : 0;
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)b[i] <= 0x20 || (unsigned char)b[i] >= 0x7f)
            return 0;
    return 1;
}

/* The credential the gitproxy injects for HOST/OWNER/NAME (the same store
 * file, proxies.credential_store with proxies.master_key): *secret_out
 * allocated, wiped and freed by the caller with creds_secret_free(). */
static int credential_get(struct ald *d, const struct forge_repo *r, char **secret_out)
{
    const struct ald_config *c = d->cfg;
    char store_path[PATH_MAX], key_path[PATH_MAX], repo[520];
    creds_store *store = NULL;
    char *user = NULL;
    int n1 = c->px_credential_store
                 ? snprintf(store_path, sizeof(store_path), "%s", c->px_credential_store)
                 : snprintf(store_path, sizeof(store_path), "%s/creds.store", c->state_dir);
    int n2 = c->px_master_key ? snprintf(key_path, sizeof(key_path), "%s", c->px_master_key)
                              : snprintf(key_path, sizeof(key_path), "%s/master.key", c->state_dir);
    int n3 = snprintf(repo, sizeof(repo), "%s/%s/%s", r->host, r->owner, r->name);
    if (n1 < 0 || (size_t)n1 >= sizeof(store_path) || n2 < 0 || (size_t)n2 >= sizeof(key_path) ||
        n3 < 0 || (size_t)n3 >= sizeof(repo))
        return al_error_set(AL_ETOOBIG, "credential store path too long");
    int err = creds_store_open(&store, store_path, key_path);
    if (err == 0)
        err = creds_store_resolve(&user, secret_out, store, repo, time(NULL));
    creds_secret_free(user);
    creds_store_free(store);
    return err;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *payload)
{
    struct al_buf *b = payload;
    size_t n = size * nmemb;
    return al_buf_append(b, ptr, n) < 0 ? 0 : n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Appends a copy of `line` to *list. 0 or AL_ENOMEM (*list unchanged). */
static int header_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return AL_ENOMEM;
    *list = l;
    return 0;
}

/* Wipes each header (one holds the token) and frees the list. */
static void headers_free(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

/* GitHub's message for an error answer: "message" and, when there, the
 * first of "errors"'s messages ("A pull request already exists for
 * o:b."), into out (bounded, control characters dropped). */
static void api_message(char *out, size_t size, const struct al_buf *b)
{
    json_t *j = b->len ? json_loadb(b->ptr, b->len, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(j, "message"));
    json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
    const char *m2 = json_string_value(json_object_get(e0, "message"));
    snprintf(out, size, "%s%s%s", m ? m : "no message", m2 ? ": " : "", m2 ? m2 : "");
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    json_decref(j);
}

/* One request to the forge's API: GET `url` (payload NULL) or POST
 * `payload`, with `headers` (the token among them), TLS verified with
 * ca_file (NULL: the system's), no redirects. The answer's body into resp,
 * its status into *status. CURLE_OK or curl's error. */
static CURLcode api_request(const char *url, struct curl_slist *headers, const char *ca_file,
                            const char *payload, struct al_buf *resp, long *status)
{
    *status = 0;
    pthread_once(&curl_once, curl_init_once);
    CURL *curl = curl_easy_init();
    if (!curl)
        return CURLE_FAILED_INIT;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (payload)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
    else
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L); /* the token goes to the API only */
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, FORGE_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(curl);
    return rc;
}

/* The repository's default branch as the forge says it (GET
 * {api}/repos/OWNER/NAME, "default_branch"): *out malloc'd. Used when a
 * pull request names no base, so that no sandbox chooses one. */
static int default_branch_get(const struct forge_repo *r, const char *api, const char *ca_file,
                              struct curl_slist *headers, char **out, struct ald_fault *f)
{
    char url[1200], msg[600];
    struct al_buf resp;
    long status = 0;
    json_t *ans = NULL;
    int err = 0;
    *out = NULL;
    al_buf_init(&resp, FORGE_RESPONSE_MAX);
    int n = snprintf(url, sizeof(url), "%s/repos/%s/%s", api, r->owner, r->name);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        err = ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "repo", "API URL too long");
        goto out;
    }
    CURLcode rc = api_request(url, headers, ca_file, NULL, &resp, &status);
    if (rc != CURLE_OK) {
        err = ald_fault_set(f, ALD_FAULT_UPSTREAM, "upstream", "repo", "forge API %s: %s", url,
                            rc == CURLE_WRITE_ERROR ? "answer too large" : curl_easy_strerror(rc));
        goto out;
    }
    if (status != 200) {
        api_message(msg, sizeof(msg), &resp);
        err = ald_fault_set(f, status == 404 ? ALD_FAULT_NOT_FOUND : ALD_FAULT_UPSTREAM,
                            status == 404 ? "not_found" : "upstream", "pull_request",
                            "%s/%s/%s: the forge API did not say the default branch (HTTP %ld: "
                            "%s)",
                            r->host, r->owner, r->name, status, msg);
        goto out;
    }
    ans = resp.len ? json_loadb(resp.ptr, resp.len, 0, NULL) : NULL;
    const char *b = json_string_value(json_object_get(ans, "default_branch"));
    if (!branch_ok(b)) {
        err = ald_fault_set(f, ALD_FAULT_UPSTREAM, "upstream", "pull_request",
                            "%s/%s/%s: the forge API answered without a usable default_branch",
                            r->host, r->owner, r->name);
        goto out;
    }
    if (!(*out = strdup(b)))
        err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
out:
    json_decref(ans);
    al_buf_free(&resp);
    return err;
}

int ald_forge_open_pr(struct ald *d, const char *repo_url, const char *head_branch,
                      const char *base, const char *title, const char *body, char **url_out,
                      struct ald_fault *f)
{
    struct forge_repo r;
    const char *ca_file = NULL, *api;
    char *secret = NULL, *payload = NULL, *auth = NULL, *base_found = NULL, url[1200], msg[600];
    struct curl_slist *headers = NULL;
    struct al_buf resp;
    json_t *req = NULL, *ans = NULL;
    long status = 0;
    int err = 0;
    al_buf_init(&resp, FORGE_RESPONSE_MAX);
    *url_out = NULL;
    if (!repo_url || repo_parse(&r, repo_url) < 0) {
        err = ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "repo",
                            "a pull request needs a repository https://HOST/OWNER/NAME");
        goto out;
    }
    if (!branch_ok(head_branch) || (base && !branch_ok(base))) {
        err = ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "branch",
                            "a pull request needs a head and a base branch");
        goto out;
    }
    if (!title || !title[0] || strlen(title) > 1024 || (body && strlen(body) > 65536)) {
        err = ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "pull_request.title",
                            "a pull request needs a title (at most 1024 bytes) and a body of at "
                            "most 65536 bytes");
        goto out;
    }
    if (!(api = ald_forgecfg_api(&d->cfg->forge, r.host, &ca_file))) {
        err =
            ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "repo",
                          "no forge API is configured for %s (forge.hosts.%s.api)", r.host, r.host);
        goto out;
    }
    int n = snprintf(url, sizeof(url), "%s/repos/%s/%s/pulls", api, r.owner, r.name);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        err = ald_fault_set(f, ALD_FAULT_INVALID, "invalid_value", "repo", "API URL too long");
        goto out;
    }
    if (credential_get(d, &r, &secret) < 0) {
        err = ald_fault_set(f, ALD_FAULT_FORBIDDEN, "forbidden", "repo",
                            "no upstream credential for %s/%s/%s: %s", r.host, r.owner, r.name,
                            al_error_last());
        goto out;
    }
    size_t alen = strlen(secret) + sizeof("Authorization: Bearer ");
    if (!(auth = malloc(alen))) {
        err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
        goto out;
    }
    snprintf(auth, alen, "Authorization: Bearer %s", secret);
    static const char *const fixed[] = {
        "Accept: application/vnd.github+json", "X-GitHub-Api-Version: 2022-11-28",
        "Content-Type: application/json", "User-Agent: airlockd/" AIRLOCK_VERSION, NULL};
    int hdr_err = 0;
    for (size_t i = 0; hdr_err == 0 && fixed[i]; i++)
        hdr_err = header_add(&headers, fixed[i]);
    if (hdr_err < 0 || header_add(&headers, auth) < 0) {
        err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
        goto out;
    }
    /* no base given: the forge's default branch, never one a sandbox
     * reported */
    if (!base) {
        if ((err = default_branch_get(&r, api, ca_file, headers, &base_found, f)) < 0)
            goto out;
        base = base_found;
    }
    if (!(req = json_pack("{s:s, s:s, s:s, s:s}", "title", title, "head", head_branch, "base", base,
                          "body", body ? body : "")) ||
        !(payload = json_dumps(req, JSON_COMPACT))) {
        err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
        goto out;
    }
    CURLcode rc = api_request(url, headers, ca_file, payload, &resp, &status);
    if (rc != CURLE_OK) {
        err = ald_fault_set(f, ALD_FAULT_UPSTREAM, "upstream", "repo", "forge API %s: %s", url,
                            rc == CURLE_WRITE_ERROR ? "answer too large" : curl_easy_strerror(rc));
        goto out;
    }
    if (status != 201) {
        api_message(msg, sizeof(msg), &resp);
        enum ald_fault_kind kind = status == 422                    ? ALD_FAULT_CONFLICT
                                   : status == 401 || status == 403 ? ALD_FAULT_FORBIDDEN
                                   : status == 404                  ? ALD_FAULT_NOT_FOUND
                                                                    : ALD_FAULT_UPSTREAM;
        const char *code = status == 422                    ? "conflict"
                           : status == 401 || status == 403 ? "forbidden"
                           : status == 404                  ? "not_found"
                                                            : "upstream";
        const char *why = status == 422   ? "refused (a pull request for the branch may exist)"
                          : status == 401 ? "refused the credential"
                          : status == 403 ? "refused the credential's access"
                          : status == 404 ? "does not know the repository (or the credential "
                                            "may not see it)"
                                          : "failed";
        err = ald_fault_set(f, kind, code, "pull_request",
                            "%s/%s/%s: the forge API %s (HTTP %ld: %s)", r.host, r.owner, r.name,
                            why, status, msg);
        goto out;
    }
    ans = resp.len ? json_loadb(resp.ptr, resp.len, 0, NULL) : NULL;
    const char *html = json_string_value(json_object_get(ans, "html_url"));
    json_t *num = json_object_get(ans, "number");
    if (!html || strlen(html) > 2048 || strncmp(html, "http", 4) != 0 || !json_is_integer(num)) {
        err = ald_fault_set(f, ALD_FAULT_UPSTREAM, "upstream", "pull_request",
                            "%s/%s/%s: the forge API answered 201 without html_url and number",
                            r.host, r.owner, r.name);
        goto out;
    }
    if (!(*url_out = strdup(html))) {
        err = ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "out of memory");
        goto out;
    }
    al_log(AL_LOG_INFO, "forge: pull request #%lld opened on %s/%s/%s (%s -> %s): %s",
           (long long)json_integer_value(num), r.host, r.owner, r.name, head_branch, base, html);
out:
    if (err < 0)
        al_log(AL_LOG_WARN, "forge: pull request on %s: %s", repo_url ? repo_url : "(none)",
               f->message);
    free(base_found);
    headers_free(headers);
    if (auth) {
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    creds_secret_free(secret);
    free(payload);
    json_decref(req);
    json_decref(ans);
    al_buf_free(&resp);
    return err;
}
