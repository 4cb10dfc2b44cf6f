/* GitHub webhooks in: signature and comment events (api/ghhook.h). */
#include "airlockd/api/ghhook.h"

#include "airlock/error.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ald_ghhook_sig_verify(const char *header, size_t hlen, const void *secret, size_t slen,
                          const void *body, size_t blen)
{
    unsigned char want[32], got[32];
    unsigned int wlen = 0;
    if (!secret || slen == 0 || slen > 4096)
        return al_error_set(AL_EINVAL, "no webhook secret");
    if (!header || hlen != 7 + 64 || memcmp(header, "sha256=", 7) != 0)
        return al_error_set(AL_EAUTH, "missing or malformed X-Hub-Signature-256");
    for (size_t i = 0; i < 32; i++) {
        int hi = hex_val(header[7 + 2 * i]), lo = hex_val(header[8 + 2 * i]);
        if (hi < 0 || lo < 0)
            return al_error_set(AL_EAUTH, "malformed X-Hub-Signature-256");
        got[i] = (unsigned char)(hi << 4 | lo);
    }
    if (!HMAC(EVP_sha256(), secret, (int)slen, body ? body : (const void *)"", blen, want, &wlen) ||
        wlen != 32)
        return al_error_set(AL_EAUTH, "HMAC failed");
    int bad = CRYPTO_memcmp(want, got, 32);
    OPENSSL_cleanse(want, sizeof(want));
    return bad ? al_error_set(AL_EAUTH, "X-Hub-Signature-256 does not match") : 0;
}

/* `n` decimal digits at s: their value, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int ald_ghhook_time_parse(const char *s, size_t len, int64_t *out)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    *out = 0;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return al_error_set(AL_EINVAL, "not an ISO 8601 time");
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
        mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || se < 0 || se > 60)
        return al_error_set(AL_EINVAL, "not an ISO 8601 time");
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return al_error_set(AL_EINVAL, "not an ISO 8601 time");
    size_t i = 19;
    if (i < len && s[i] == '.') {
        size_t f = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f || i - f > 9)
            return al_error_set(AL_EINVAL, "not an ISO 8601 time");
    }
    int64_t off = 0;
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return al_error_set(AL_EINVAL, "not an ISO 8601 time");
        off = (int64_t)(oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
        i += 6;
    }
    if (i != len)
        return al_error_set(AL_EINVAL, "not an ISO 8601 time");
    /* days since 1970-01-01 (Howard Hinnant's days_from_civil) */
    int64_t yy = mo <= 2 ? y - 1 : y;
    int64_t era = yy / 400, yoe = yy - era * 400;
    int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    *out = days * 86400 + h * 3600 + mi * 60 + se - off;
    return 0;
}

/* A string member at `path` of `obj` (two levels at most: "a" or "a.b")
 * copied into out (size bytes); NULL member: -1; too long or with NUL:
 * -2. */
static int str_at(char *out, size_t size, json_t *obj, const char *a, const char *b)
{
    json_t *v = json_object_get(obj, a);
    if (b)
        v = json_object_get(v, b);
    const char *s = json_string_value(v);
    if (!s)
        return -1;
    size_t n = json_string_length(v);
    if (n != strlen(s) || n >= size)
        return -2;
    memcpy(out, s, n + 1);
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int ald_ghhook_parse(struct ald_ghhook_comment *out, char *why, size_t why_size, const char *event,
                     const char *body, size_t len, const char *command)
{
    json_t *root = NULL;
    int res = ALD_GHHOOK_IGNORE;
    memset(out, 0, sizeof(*out));
    why[0] = '\0';
    if (!event ||
        (strcmp(event, "issue_comment") && strcmp(event, "pull_request_review_comment"))) {
        snprintf(why, why_size, "event %.64s is not a comment event", event ? event : "(none)");
        return ALD_GHHOOK_IGNORE;
    }
    json_error_t jerr;
    root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        snprintf(why, why_size, "the body is not a JSON object");
        res = AL_EINVAL;
        goto out;
    }
    char action[32];
    if (str_at(action, sizeof(action), root, "action", NULL) < 0) {
        snprintf(why, why_size, "no action");
        res = AL_EINVAL;
        goto out;
    }
    if (strcmp(action, "created") != 0) {
        snprintf(why, why_size, "action %s is not \"created\"", action);
        goto out;
    }
    json_t *comment = json_object_get(root, "comment");
    json_t *text = json_object_get(comment, "body");
    int e1 = str_at(out->repo, sizeof(out->repo), root, "repository", "full_name");
    if (e1 < 0 || !json_is_string(text)) {
        snprintf(why, why_size, "%s",
                 e1 == -2 ? "repository.full_name is malformed"
                          : "no repository.full_name or comment.body");
        res = AL_EINVAL;
        goto out;
    }
    int e2 = str_at(out->author, sizeof(out->author), comment, "user", "login");
    int e3 =
        str_at(out->association, sizeof(out->association), comment, "author_association", NULL);
    int e4 = str_at(out->url, sizeof(out->url), comment, "html_url", NULL);
    if (e2 == -2 || e3 == -2 || e4 == -2) {
        snprintf(why, why_size, "comment.user.login, author_association or html_url is malformed");
        res = AL_EINVAL;
        goto out;
    }
    json_t *num;
    if (strcmp(event, "issue_comment") == 0) {
        json_t *issue = json_object_get(root, "issue");
        num = json_object_get(issue, "number");
        out->is_pr = json_object_get(issue, "pull_request") != NULL;
    } else {
        num = json_object_get(json_object_get(root, "pull_request"), "number");
        out->is_pr = 1;
    }
    if (!json_is_integer(num) || json_integer_value(num) < 1) {
        snprintf(why, why_size, "no issue or pull request number");
        res = AL_EINVAL;
        goto out;
    }
    out->number = json_integer_value(num);
    json_t *cid = json_object_get(comment, "id");
    if (cid && (!json_is_integer(cid) || json_integer_value(cid) < 1)) {
        snprintf(why, why_size, "comment.id is not a positive integer");
        res = AL_EINVAL;
        goto out;
    }
    out->comment_id = cid ? json_integer_value(cid) : 0;
    json_t *created = json_object_get(comment, "created_at");
    if (created && (!json_is_string(created) ||
                    ald_ghhook_time_parse(json_string_value(created), json_string_length(created),
                                          &out->created_s) < 0)) {
        snprintf(why, why_size, "comment.created_at is not an ISO 8601 time");
        res = AL_EINVAL;
        goto out;
    }
    const char *t = json_string_value(text);
    size_t tl = json_string_length(text);
    if (tl != strlen(t) || tl > ALD_GHHOOK_TEXT_MAX) {
        snprintf(why, why_size, "the comment is longer than %d bytes or holds a NUL",
                 ALD_GHHOOK_TEXT_MAX);
        goto out;
    }
    const char *p = t;
    while (is_space(*p))
        p++;
    size_t cl = command ? strlen(command) : 0;
    if (cl == 0 || strncmp(p, command, cl) != 0 || (p[cl] && !is_space(p[cl]))) {
        snprintf(why, why_size, "the comment does not start with %.64s", command ? command : "");
        goto out;
    }
    if (!(out->text = strdup(t))) {
        res = AL_ENOMEM;
        goto out;
    }
    const char *a = out->text + (p - t) + cl;
    while (is_space(*a))
        a++;
    out->args = a;
    res = ALD_GHHOOK_START;
out:
    if (res != ALD_GHHOOK_START) {
        free(out->text);
        out->text = NULL;
        out->args = NULL;
    }
    json_decref(root);
    return res;
}

void ald_ghhook_comment_free(struct ald_ghhook_comment *c)
{
    free(c->text);
    c->text = NULL;
    c->args = NULL;
}
