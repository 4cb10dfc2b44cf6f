#include "airlock/creds_github.h"
#include "airlock/creds.h"
#include "airlock/creds_store.h"
#include "airlock/buf.h"
#include "airlock/cleanup.h"
#include "airlock/error.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GITHUB_RESPONSE_MAX (64u << 10)

int creds_github_time_parse(time_t *out, const char *s)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end)
        return al_error_set(AL_EINVAL, "bad timestamp '%s'", s);
    *out = timegm(&tm);
    return 0;
}

int creds_github_jwt_make(char **out, int64_t app_id, const char *pem, time_t now)
{
    static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    char claims[128];
    cleanup_free char *h64 = NULL;
    cleanup_free char *c64 = NULL;
    cleanup_free char *s64 = NULL;
    cleanup_free char *input = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    BIO *bio = NULL;
    int err;
    snprintf(claims, sizeof(claims), "{\"iat\":%lld,\"exp\":%lld,\"iss\":\"%lld\"}",
             (long long)now - 60, (long long)now + 540, (long long)app_id);
    if ((err = creds_b64url_encode(&h64, (const unsigned char *)header, strlen(header))) < 0 ||
        (err = creds_b64url_encode(&c64, (const unsigned char *)claims, strlen(claims))) < 0)
        return err;
    size_t in_len = strlen(h64) + 1 + strlen(c64);
    if (!(input = malloc(in_len + 1)))
        return AL_ENOMEM;
    snprintf(input, in_len + 1, "%s.%s", h64, c64);
    if (!(bio = BIO_new_mem_buf(pem, -1))) {
        err = AL_ENOMEM;
        goto out;
    }
    if (!(key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) ||
        EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        err = al_error_set(AL_EINVAL, "GitHub App private key is not an RSA PEM key");
        goto out;
    }
    if (!(md = EVP_MD_CTX_new()) || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &sig_len, (unsigned char *)input, in_len) != 1 ||
        !(sig = malloc(sig_len)) ||
        EVP_DigestSign(md, sig, &sig_len, (unsigned char *)input, in_len) != 1) {
        err = al_error_set(AL_ERROR, "RS256 signing failed");
        goto out;
    }
    if ((err = creds_b64url_encode(&s64, sig, sig_len)) < 0)
        goto out;
    size_t total = in_len + 1 + strlen(s64) + 1;
    char *jwt = malloc(total);
    if (!jwt) {
        err = AL_ENOMEM;
        goto out;
    }
    snprintf(jwt, total, "%s.%s", input, s64);
    *out = jwt;
out:
    free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    BIO_free(bio);
    return err;
}

static size_t github_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct al_buf *buf = userdata;
    if (al_buf_append(buf, data, size * nmemb) < 0)
        return 0; /* aborts the transfer */
    return size * nmemb;
}

int creds_github_installation_token(char **out_token, time_t *out_expires, const char *api,
                                    const char *ca_file, int64_t app_id, int64_t installation_id,
                                    const char *pem, const char *repo_name, time_t now)
{
    char *jwt = NULL;
    char url[1024];
    char *auth = NULL;
    char *body = NULL;
    struct al_buf resp;
    struct curl_slist *headers = NULL;
    json_t *root = NULL, *req = NULL;
    CURL *curl = NULL;
    long status = 0;
    int err;
    al_buf_init(&resp, GITHUB_RESPONSE_MAX);
    if ((err = creds_github_jwt_make(&jwt, app_id, pem, now)) < 0)
        goto out;
    size_t api_len = strlen(api);
    while (api_len > 0 && api[api_len - 1] == '/')
        api_len--;
    snprintf(url, sizeof(url), "%.*s/app/installations/%lld/access_tokens", (int)api_len, api,
             (long long)installation_id);
    req = json_pack("{s:[s], s:{s:s}}", "repositories", repo_name, "permissions", "contents",
                    "write");
    if (!req || !(body = json_dumps(req, JSON_COMPACT))) {
        err = AL_ENOMEM;
        goto out;
    }
    size_t auth_len = strlen(jwt) + 32;
    if (!(auth = malloc(auth_len))) {
        err = AL_ENOMEM;
        goto out;
    }
    snprintf(auth, auth_len, "Authorization: Bearer %s", jwt);
    headers = curl_slist_append(headers, auth);
    headers = curl_slist_append(headers, "Accept: application/vnd.github+json");
    headers = curl_slist_append(headers, "X-GitHub-Api-Version: 2022-11-28");
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "User-Agent: airlock-gitproxy");
    if (!headers || !(curl = curl_easy_init())) {
        err = AL_ENOMEM;
        goto out;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, github_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        err = al_error_set(AL_EIO, "GitHub API %s: %s", url, curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 201 && status != 200) {
        err = al_error_set(AL_EAUTH, "GitHub API %s answered %ld", url, status);
        goto out;
    }
    json_error_t jerr;
    const char *token = NULL, *expires = NULL;
    root = json_loadb(resp.ptr ? resp.ptr : "", resp.len, 0, &jerr);
    if (!root || json_unpack(root, "{s:s, s:s}", "token", &token, "expires_at", &expires) < 0) {
        err = al_error_set(AL_EINVAL, "GitHub API answer lacks token/expires_at");
        goto out;
    }
    time_t exp;
    if ((err = creds_github_time_parse(&exp, expires)) < 0)
        goto out;
    if (!(*out_token = strdup(token))) {
        err = AL_ENOMEM;
        goto out;
    }
    *out_expires = exp;
out:
    if (root) {
        json_t *t = json_object_get(root, "token");
        if (json_is_string(t))
            OPENSSL_cleanse((char *)json_string_value(t), json_string_length(t));
    }
    json_decref(root);
    json_decref(req);
    free(body);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    creds_secret_free(auth);
    creds_secret_free(jwt);
    al_buf_wipe_free(&resp);
    return err;
}
