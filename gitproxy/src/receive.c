#include "airlock/gp_receive.h"
#include "airlock/gp_pktline.h"
#include "airlock/gp_refname.h"
#include "airlock/error.h"

#include <stdlib.h>
#include <string.h>

void gp_receive_clear(struct gp_receive *r)
{
    for (size_t i = 0; i < r->ncmds; i++)
        free(r->cmds[i].ref);
    free(r->cmds);
    al_strlist_free(&r->caps);
    al_strlist_free(&r->options);
    al_strlist_free(&r->shallow);
    memset(r, 0, sizeof(*r));
}

int gp_oid_is_zero(const char *oid)
{
    for (int i = 0; i < GP_OID_HEX; i++)
        if (oid[i] != '0')
            return 0;
    return 1;
}

static int oid_valid(const char *s)
{
    for (int i = 0; i < GP_OID_HEX; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int gp_receive_has_cap(const struct gp_receive *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->caps.len; i++) {
        const char *c = r->caps.items[i];
        if (strncmp(c, name, n) == 0 && (c[n] == '\0' || c[n] == '='))
            return 1;
    }
    return 0;
}

static int caps_parse(struct al_strlist *caps, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && s[i] == ' ')
            i++;
        size_t start = i;
        while (i < len && s[i] != ' ')
            i++;
        if (i > start) {
            if (caps->len >= 64 || i - start > 256)
                return al_error_set(AL_ETOOBIG, "too many or too long capabilities");
            char *c = strndup(s + start, i - start);
            if (!c || al_strlist_push_owned(caps, c) < 0)
                return AL_ENOMEM;
            if (memchr(c, '\0', i - start))
                return al_error_set(AL_EINVAL, "NUL in capabilities");
        }
    }
    return 0;
}

/* One "old new ref[\0caps]" line. */
static int command_parse(struct gp_receive *r, const char *d, size_t len)
{
    if (len > 0 && d[len - 1] == '\n')
        len--;
    const char *nul = memchr(d, '\0', len);
    size_t line_len = nul ? (size_t)(nul - d) : len;
    if (line_len < 2 * GP_OID_HEX + 3 || d[GP_OID_HEX] != ' ' || d[2 * GP_OID_HEX + 1] != ' ')
        return al_error_set(AL_EINVAL, "malformed command");
    if (!oid_valid(d) || !oid_valid(d + GP_OID_HEX + 1))
        return al_error_set(AL_EINVAL, "malformed object id in command");
    if (r->ncmds >= GP_RECEIVE_MAX_CMDS)
        return al_error_set(AL_ETOOBIG, "too many commands");
    if (nul) {
        if (r->ncmds > 0)
            return al_error_set(AL_EINVAL, "capabilities after the first command");
        int err = caps_parse(&r->caps, nul + 1, len - line_len - 1);
        if (err < 0)
            return err;
    }
    struct gp_command *cmds = realloc(r->cmds, (r->ncmds + 1) * sizeof(*cmds));
    if (!cmds)
        return AL_ENOMEM;
    r->cmds = cmds;
    struct gp_command *c = &cmds[r->ncmds];
    memcpy(c->old_oid, d, GP_OID_HEX);
    c->old_oid[GP_OID_HEX] = '\0';
    memcpy(c->new_oid, d + GP_OID_HEX + 1, GP_OID_HEX);
    c->new_oid[GP_OID_HEX] = '\0';
    size_t ref_len = line_len - 2 * GP_OID_HEX - 2;
    if (ref_len > 4096)
        return al_error_set(AL_ETOOBIG, "ref name too long");
    /* A ref name is kept even when invalid: the policy rejects it by name. */
    if (!(c->ref = strndup(d + 2 * GP_OID_HEX + 2, ref_len)))
        return AL_ENOMEM;
    if (strlen(c->ref) != ref_len) {
        free(c->ref);
        return al_error_set(AL_EINVAL, "NUL in ref name");
    }
    r->ncmds++;
    return 0;
}

int gp_receive_parse(struct gp_receive *out, const char *buf, size_t len)
{
    struct gp_receive r = {0};
    size_t off = 0;
    int phase = 0; /* 0 commands, 1 push options, 2 done */
    int err = AL_EAGAIN;
    while (phase < 2) {
        struct gp_pkt pkt;
        if (off >= GP_RECEIVE_HEAD_MAX) {
            err = al_error_set(AL_ETOOBIG, "receive-pack command list too long");
            goto out;
        }
        ssize_t n = gp_pktline_parse(&pkt, buf + off, len - off);
        if (n < 0) {
            err = (int)n;
            goto out;
        }
        if (n == 0) {
            err = AL_EAGAIN;
            goto out;
        }
        off += (size_t)n;
        if (pkt.type == GP_PKT_FLUSH) {
            if (phase == 0 && r.ncmds == 0) {
                if (r.shallow.len) {
                    err = al_error_set(AL_EINVAL, "shallow lines without commands");
                    goto out;
                }
                r.probe = 1;
                phase = 2;
            } else if (phase == 0 && gp_receive_has_cap(&r, "push-options")) {
                phase = 1;
            } else {
                phase = 2;
            }
            continue;
        }
        if (pkt.type != GP_PKT_DATA) {
            err = al_error_set(AL_EINVAL, "unexpected special pkt-line");
            goto out;
        }
        if (phase == 1) {
            if (r.options.len >= 100) {
                err = al_error_set(AL_ETOOBIG, "too many push options");
                goto out;
            }
            size_t l = pkt.len;
            if (l > 0 && pkt.data[l - 1] == '\n')
                l--;
            char *o = strndup(pkt.data, l);
            if (!o || al_strlist_push_owned(&r.options, o) < 0) {
                err = AL_ENOMEM;
                goto out;
            }
            continue;
        }
        if (r.ncmds == 0 && pkt.len >= 8 && memcmp(pkt.data, "shallow ", 8) == 0) {
            size_t l = pkt.len;
            if (l > 0 && pkt.data[l - 1] == '\n')
                l--;
            if (l != 8 + GP_OID_HEX || !oid_valid(pkt.data + 8)) {
                err = al_error_set(AL_EINVAL, "malformed shallow line");
                goto out;
            }
            if (r.shallow.len >= GP_RECEIVE_MAX_SHALLOW) {
                err = al_error_set(AL_ETOOBIG, "too many shallow lines");
                goto out;
            }
            char *oid = strndup(pkt.data + 8, GP_OID_HEX);
            if (!oid || al_strlist_push_owned(&r.shallow, oid) < 0) {
                err = AL_ENOMEM;
                goto out;
            }
            continue;
        }
        if (pkt.len >= 9 && memcmp(pkt.data, "push-cert", 9) == 0) {
            err = al_error_set(AL_EINVAL, "signed pushes are not supported");
            goto out;
        }
        if ((err = command_parse(&r, pkt.data, pkt.len)) < 0)
            goto out;
    }
    r.head_len = off;
    *out = r;
    memset(&r, 0, sizeof(r));
    err = 0;
out:
    gp_receive_clear(&r);
    return err;
}
