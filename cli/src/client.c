/* libcurl client for the airlockd API. */
#include "client.h"

#include "airlock/cleanup.h"
#include "airlock/error.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int cl_client_init(struct cl_client *c)
{
    memset(c, 0, sizeof(*c));
    return 0;
}

int cl_client_start(struct cl_client *c)
{
    if (c->curl)
        return 0;
    const char *url = getenv("AIRLOCK_URL");
    const char *key = getenv("AIRLOCK_API_KEY");
    if (!url || !*url)
        url = CL_DEFAULT_URL;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return al_error_set(AL_EINVAL, "AIRLOCK_URL must start with http:// or https://");
    if (key && *key && strpbrk(key, "\r\n"))
        return al_error_set(AL_EINVAL, "AIRLOCK_API_KEY holds a line break");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(c->base = strdup(url)))
        goto fail;
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    if (key && *key) {
        size_t len = strlen(key) + sizeof("Authorization: Bearer ");
        if (!(c->auth = malloc(len)))
            goto fail;
        snprintf(c->auth, len, "Authorization: Bearer %s", key);
    }
    /* last: a client with a handle is a started one */
    if (!(c->curl = curl_easy_init()))
        goto fail;
    return 0;
fail:
    cl_client_free(c);
    return al_error_set(AL_ENOMEM, "out of memory");
}

void cl_client_free(struct cl_client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    if (c->auth) {
        memset(c->auth, 0, strlen(c->auth)); /* the API key */
        free(c->auth);
    }
    free(c->base);
    memset(c, 0, sizeof(*c));
}

void cl_response_free(struct cl_response *r)
{
    al_buf_free(&r->body);
}

/* State of one transfer, shared by the callbacks. */
struct xfer {
    CURL *curl;
    const struct cl_request *req;
    struct cl_response *resp;
    int started; /* the status line was seen and the body buffer sized */
};

static void xfer_start(struct xfer *x)
{
    if (x->started)
        return;
    x->started = 1;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->resp->status);
    al_buf_init(&x->resp->body, x->resp->status >= 400 ? CL_MAX_ERROR : CL_MAX_RESPONSE);
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t len = size * nmemb;
    xfer_start(x);
    if (x->req->sink && x->resp->status >= 200 && x->resp->status < 300) {
        int err = x->req->sink(ptr, len, x->req->payload);
        if (err < 0) {
            x->resp->sink_err = err;
            return 0;
        }
        return len;
    }
    if (x->resp->status >= 400 && x->resp->body.len + len > x->resp->body.max)
        return len; /* the start of an error body is enough to print it */
    if (al_buf_append(&x->resp->body, ptr, len) < 0) {
        x->resp->sink_err =
            al_error_set(AL_ETOOBIG, "response larger than %zu bytes", x->resp->body.max);
        return 0;
    }
    return len;
}

/* Copies the value of header line `line` named `name` (case-insensitive)
 * into out (NUL-terminated, trimmed); 1 when it matched. */
static int header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return 0;
    const char *v = line + nl + 1;
    size_t vl = len - nl - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl > 0 && isspace((unsigned char)v[vl - 1]))
        vl--;
    if (vl >= cap)
        vl = cap - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
    return 1;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t len = size * nmemb;
    char value[128];
    if (header_value(ptr, len, "Idempotent-Replayed", value, sizeof(value)))
        x->resp->replayed = strcasecmp(value, "true") == 0;
    else if (header_value(ptr, len, "X-Airlock-Offset", value, sizeof(value))) {
        char *end;
        long long off = strtoll(value, &end, 10);
        x->resp->offset = (*end || off < 0) ? -1 : off;
    } else if (header_value(ptr, len, "Content-Type", value, sizeof(value)))
        snprintf(x->resp->content_type, sizeof(x->resp->content_type), "%s", value);
    return len;
}

static size_t on_read(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    FILE *f = userdata;
    size_t n = fread(ptr, 1, size * nmemb, f);
    if (n == 0 && ferror(f))
        return CURL_READFUNC_ABORT;
    return n;
}

/* libcurl's progress callback: req->waiting while no status line came. */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    struct xfer *x = userdata;
    long status = 0;
    if (!x->started && curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
        status == 0)
        x->req->waiting(x->req->payload);
    return 0;
}

static int header_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return AL_ENOMEM;
    *list = l;
    return 0;
}

int cl_request_do(struct cl_client *c, const struct cl_request *req, struct cl_response *out)
{
    CURL *curl;
    struct curl_slist *headers = NULL;
    struct al_buf url, ctype;
    struct xfer x = {.req = req, .resp = out};
    int err = 0;
    memset(out, 0, sizeof(*out));
    out->offset = -1;
    al_buf_init(&out->body, CL_MAX_RESPONSE);
    if ((err = cl_client_start(c)) < 0)
        return err;
    curl = x.curl = c->curl;
    al_buf_init(&url, 16384);
    al_buf_init(&ctype, 256);
    if ((err = al_buf_printf(&url, "%s%s", c->base, req->path)) < 0 ||
        (err = al_buf_printf(&ctype, "Content-Type:%s%s", req->content_type ? " " : "",
                             req->content_type ? req->content_type : "")) < 0)
        goto out;
    if ((c->auth && (err = header_add(&headers, c->auth)) < 0) ||
        (err = header_add(&headers, "Expect:")) < 0 ||
        (err = header_add(&headers, ctype.ptr)) < 0 ||
        (req->extra_header && (err = header_add(&headers, req->extra_header)) < 0))
        goto out;
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url.ptr);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    /* The path goes out as given: the server, not curl, judges "..". */
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CL_CONNECT_SECS);
    curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x);
    if (req->waiting) {
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &x);
    }
    if (req->upload) {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, req->upload);
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->upload_len);
    } else if (req->body || strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    }
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
    if (strcmp(req->method, "GET") == 0)
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    CURLcode rc = curl_easy_perform(curl);
    xfer_start(&x);
    if (out->sink_err < 0) {
        err = out->sink_err;
        goto out;
    }
    if (rc != CURLE_OK) {
        err = al_error_set(AL_EIO, "%s %s: %s", req->method, url.ptr, curl_easy_strerror(rc));
        goto out;
    }
    if (!out->content_type[0]) {
        char *ct = NULL;
        if (curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            snprintf(out->content_type, sizeof(out->content_type), "%s", ct);
    }
out:
    curl_slist_free_all(headers);
    al_buf_free(&url);
    al_buf_free(&ctype);
    return err;
}

void cl_response_print_error(const struct cl_response *r)
{
    json_error_t jerr;
    json_t *doc = NULL;
    if (r->body.len > 0)
        doc = json_loadb(r->body.ptr, r->body.len, 0, &jerr);
    json_t *e = json_object_get(doc, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    json_t *earliest = json_object_get(e, "earliest_offset");
    if (code) {
        fprintf(stderr, "airlock: session: %ld %s: %s", r->status, code, msg ? msg : "");
        if (json_is_integer(earliest))
            fprintf(stderr, " (earliest_offset %lld)", (long long)json_integer_value(earliest));
        fputc('\n', stderr);
    } else {
        /* Not our JSON error (a proxy in between?): its first line. */
        size_t n = 0;
        while (n < r->body.len && n < 200 && r->body.ptr[n] != '\n' && r->body.ptr[n] != '\r')
            n++;
        fprintf(stderr, "airlock: session: HTTP %ld%s%.*s\n", r->status, n ? ": " : "", (int)n,
                n ? r->body.ptr : "");
    }
    json_decref(doc);
}

int cl_request_run(struct cl_client *c, const struct cl_request *req, struct cl_response *out)
{
    if (cl_request_do(c, req, out) < 0) {
        fprintf(stderr, "airlock: session: %s\n", al_error_last());
        return AL_ERROR;
    }
    if (out->status < 200 || out->status >= 300) {
        cl_response_print_error(out);
        return AL_ERROR;
    }
    return 0;
}

int cl_call_json(void **out, struct cl_client *c, const char *method, const char *path,
                 const void *json_body, const char *extra_header, struct cl_response *out_resp)
{
    cleanup_free char *body = NULL;
    struct cl_response resp;
    json_error_t jerr;
    int err;
    *out = NULL;
    if (json_body && !(body = json_dumps(json_body, JSON_COMPACT)))
        return AL_ENOMEM;
    struct cl_request req = {
        .method = method,
        .path = path,
        .content_type = body ? "application/json" : NULL,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .extra_header = extra_header,
    };
    if ((err = cl_request_run(c, &req, &resp)) < 0)
        goto out;
    json_t *doc = json_loadb(resp.body.ptr ? resp.body.ptr : "", resp.body.len, 0, &jerr);
    if (!doc) {
        fprintf(stderr, "airlock: session: %s %s: the response is not JSON: %s\n", method, path,
                jerr.text);
        err = AL_EINVAL;
        goto out;
    }
    *out = doc;
out:
    if (out_resp) {
        *out_resp = resp;
        memset(&resp.body, 0, sizeof(resp.body));
    }
    cl_response_free(&resp);
    return err;
}

int cl_url_escape(struct al_buf *buf, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    int err = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && err == 0; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
            (keep_slash && *p == '/')) {
            char ch = (char)*p;
            err = al_buf_append(buf, &ch, 1);
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            err = al_buf_append(buf, enc, 3);
        }
    }
    return err;
}
