
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux_redis_url.h"


/*
 * The address forms of "bayeux_redis_url", one row each:
 *
 *     redis://[[user]:password@]host[:port][/db]
 *     rediss://[[user]:password@]host[:port][/db]        (TLS)
 *     unix:/path/to/redis.sock[?db=N&user=U&password=P]
 *     redis+sentinel://[[user]:password@]host[:port][,host[:port]...]
 *         /master-name[/db]
 *     redis+cluster://[[user]:password@]host[:port][,host[:port]...]
 *
 * Names are resolved here, once, as nginx resolves the servers of an
 * upstream.
 */


typedef char *(*ngx_bayeux_redis_url_pt)(ngx_pool_t *pool, u_char *p,
    u_char *last, ngx_bayeux_redis_url_t *ru);

typedef struct {
    ngx_str_t                      scheme;
    ngx_bayeux_redis_url_pt        parse;
    ngx_uint_t                     ssl;
    char                          *unsupported;
} ngx_bayeux_redis_scheme_t;


/* a list of hosts: the default port, and what is wrong with a host */

typedef struct {
    in_port_t                      port;
    char                          *empty;
    char                          *invalid;
    char                          *not_found;
} ngx_bayeux_redis_hosts_t;


static char *ngx_bayeux_redis_url_tcp(ngx_pool_t *pool, u_char *p,
    u_char *last, ngx_bayeux_redis_url_t *ru);
static char *ngx_bayeux_redis_url_sentinel(ngx_pool_t *pool, u_char *p,
    u_char *last, ngx_bayeux_redis_url_t *ru);
static char *ngx_bayeux_redis_url_cluster(ngx_pool_t *pool, u_char *p,
    u_char *last, ngx_bayeux_redis_url_t *ru);
static char *ngx_bayeux_redis_url_hosts(ngx_pool_t *pool, u_char *p,
    u_char *end, ngx_bayeux_redis_hosts_t *kind, ngx_array_t **hosts,
    ngx_str_t *first);
static ngx_int_t ngx_bayeux_redis_url_name(ngx_pool_t *pool, ngx_str_t *host,
    ngx_str_t *name);
static char *ngx_bayeux_redis_url_unix(ngx_pool_t *pool, u_char *p,
    u_char *last, ngx_bayeux_redis_url_t *ru);
static char *ngx_bayeux_redis_url_authority(ngx_pool_t *pool, u_char **p,
    u_char *last, u_char **end, ngx_bayeux_redis_url_t *ru);
static char *ngx_bayeux_redis_url_password(ngx_pool_t *pool, u_char *p,
    u_char *last, ngx_bayeux_redis_url_t *ru);
static char *ngx_bayeux_redis_url_unescape(ngx_pool_t *pool, u_char *p,
    u_char *last, ngx_str_t *password);
static char *ngx_bayeux_redis_url_db(u_char *p, u_char *last,
    ngx_bayeux_redis_url_t *ru);


static ngx_bayeux_redis_hosts_t  ngx_bayeux_redis_sentinel_hosts = {
    26379, "a sentinel host is empty", "a sentinel host is invalid",
    "a sentinel host was not found"
};

static ngx_bayeux_redis_hosts_t  ngx_bayeux_redis_cluster_hosts = {
    6379, "a cluster node is empty", "a cluster node is invalid",
    "a cluster node was not found"
};


static ngx_bayeux_redis_scheme_t  ngx_bayeux_redis_schemes[] = {

    { ngx_string("redis://"), ngx_bayeux_redis_url_tcp, 0, NULL },

    { ngx_string("rediss://"), ngx_bayeux_redis_url_tcp, 1, NULL },

    { ngx_string("unix:"), ngx_bayeux_redis_url_unix, 0, NULL },

    { ngx_string("redis+sentinel://"), ngx_bayeux_redis_url_sentinel, 0,
      NULL },

    { ngx_string("rediss+sentinel://"), ngx_bayeux_redis_url_sentinel, 1,
      NULL },

    { ngx_string("redis+cluster://"), ngx_bayeux_redis_url_cluster, 0,
      NULL },

    { ngx_string("rediss+cluster://"), ngx_bayeux_redis_url_cluster, 1,
      NULL },

    { ngx_null_string, NULL, 0, NULL }
};


char *
ngx_bayeux_redis_url_parse(ngx_pool_t *pool, ngx_str_t *url,
    ngx_bayeux_redis_url_t *ru)
{
    ngx_bayeux_redis_scheme_t  *s;

    ngx_memzero(ru, sizeof(ngx_bayeux_redis_url_t));

    for (s = ngx_bayeux_redis_schemes; s->scheme.len; s++) {

        if (url->len < s->scheme.len
            || ngx_strncasecmp(url->data, s->scheme.data, s->scheme.len) != 0)
        {
            continue;
        }

        if (s->unsupported) {
            return s->unsupported;
        }

#if !(NGX_SSL)
        if (s->ssl) {
            return "rediss:// needs an nginx built with TLS "
                   "(--with-http_ssl_module)";
        }
#endif

        ru->ssl = s->ssl;

        return s->parse(pool, url->data + s->scheme.len,
                        url->data + url->len, ru);
    }

    return "it must start with \"redis://\", \"rediss://\", \"unix:\", "
           "\"redis+sentinel://\", \"rediss+sentinel://\", "
           "\"redis+cluster://\" or \"rediss+cluster://\"";
}


static char *
ngx_bayeux_redis_url_tcp(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_bayeux_redis_url_t *ru)
{
    char       *err;
    u_char     *end;
    ngx_url_t   u;

    err = ngx_bayeux_redis_url_authority(pool, &p, last, &end, ru);
    if (err) {
        return err;
    }

    if (p == end) {
        return "it has no host";
    }

    if (end - p >= 5 && ngx_strncasecmp(p, (u_char *) "unix:", 5) == 0) {
        return "a unix socket is written \"unix:/path/to/redis.sock\"";
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.data = p;
    u.url.len = end - p;
    u.default_port = 6379;

    if (ngx_parse_url(pool, &u) != NGX_OK) {
        return u.err ? u.err : "the host is invalid";
    }

    if (u.naddrs == 0) {
        return "host not found";
    }

    ru->peer = u.addrs[0];

    if (ngx_bayeux_redis_url_name(pool, &u.host, &ru->host) != NGX_OK) {
        return "cannot allocate memory";
    }

    ru->addr.data = ngx_pnalloc(pool, u.host.len + NGX_INT_T_LEN + 1);
    if (ru->addr.data == NULL) {
        return "cannot allocate memory";
    }

    ru->addr.len = ngx_sprintf(ru->addr.data, "%V:%d", &u.host, u.port)
                   - ru->addr.data;

    if (end < last && end + 1 < last) {
        return ngx_bayeux_redis_url_db(end + 1, last, ru);
    }

    return NULL;
}


/*
 * The sentinels are listed, each resolved as a host; the address of the
 * primary is asked of them when the engine connects (the default port is
 * Sentinel's).
 */

static char *
ngx_bayeux_redis_url_sentinel(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_bayeux_redis_url_t *ru)
{
    char    *err;
    u_char  *end, *name;

    err = ngx_bayeux_redis_url_authority(pool, &p, last, &end, ru);
    if (err) {
        return err;
    }

    if (p == end) {
        return "it has no sentinel host";
    }

    err = ngx_bayeux_redis_url_hosts(pool, p, end,
                                     &ngx_bayeux_redis_sentinel_hosts,
                                     &ru->sentinels, &ru->host);
    if (err) {
        return err;
    }

    /* /master-name[/db] */

    if (end == last || end + 1 == last) {
        return "it has no master name, as in "
               "\"redis+sentinel://host:26379/mymaster\"";
    }

    name = end + 1;

    end = ngx_strlchr(name, last, '/');
    if (end == NULL) {
        end = last;
    }

    if (end == name) {
        return "it has no master name, as in "
               "\"redis+sentinel://host:26379/mymaster\"";
    }

    ru->master.data = name;
    ru->master.len = end - name;

    ru->addr.data = ngx_pnalloc(pool, sizeof("master \"\"") - 1
                                      + ru->master.len);
    if (ru->addr.data == NULL) {
        return "cannot allocate memory";
    }

    ru->addr.len = ngx_sprintf(ru->addr.data, "master \"%V\"", &ru->master)
                   - ru->addr.data;

    if (end < last && end + 1 < last) {
        return ngx_bayeux_redis_url_db(end + 1, last, ru);
    }

    return NULL;
}


/*
 * The seed nodes of a Redis Cluster, each resolved as a host; the engine
 * asks them which primary serves its slot.  A cluster has database 0
 * only.
 */

static char *
ngx_bayeux_redis_url_cluster(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_bayeux_redis_url_t *ru)
{
    char    *err;
    u_char  *end;

    err = ngx_bayeux_redis_url_authority(pool, &p, last, &end, ru);
    if (err) {
        return err;
    }

    if (p == end) {
        return "it has no cluster node";
    }

    if (end < last && end + 1 < last) {
        return "Redis Cluster has database 0 only: a redis+cluster:// "
               "address takes no database";
    }

    err = ngx_bayeux_redis_url_hosts(pool, p, end,
                                     &ngx_bayeux_redis_cluster_hosts,
                                     &ru->seeds, &ru->host);
    if (err) {
        return err;
    }

    ngx_str_set(&ru->addr, "cluster");

    return NULL;
}


/*
 * "host[:port][,host[:port]...]": every address of every host; the first
 * host's name is the one TLS verifies and sends as SNI by default
 */

static char *
ngx_bayeux_redis_url_hosts(ngx_pool_t *pool, u_char *p, u_char *end,
    ngx_bayeux_redis_hosts_t *kind, ngx_array_t **hosts, ngx_str_t *first)
{
    u_char      *host, *comma;
    ngx_uint_t   i;
    ngx_url_t    u;
    ngx_addr_t  *addr;

    *hosts = ngx_array_create(pool, 3, sizeof(ngx_addr_t));
    if (*hosts == NULL) {
        return "cannot allocate memory";
    }

    for (host = p; host < end; host = comma + 1) {
        comma = ngx_strlchr(host, end, ',');
        if (comma == NULL) {
            comma = end;
        }

        if (comma == host) {
            return kind->empty;
        }

        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url.data = host;
        u.url.len = comma - host;
        u.default_port = kind->port;

        if (ngx_parse_url(pool, &u) != NGX_OK) {
            return u.err ? u.err : kind->invalid;
        }

        if (u.naddrs == 0) {
            return kind->not_found;
        }

        if (first->len == 0
            && ngx_bayeux_redis_url_name(pool, &u.host, first) != NGX_OK)
        {
            return "cannot allocate memory";
        }

        for (i = 0; i < u.naddrs; i++) {
            addr = ngx_array_push(*hosts);
            if (addr == NULL) {
                return "cannot allocate memory";
            }

            *addr = u.addrs[i];
        }
    }

    return NULL;
}


/* a host's name as TLS takes it (SNI, verification): NUL-terminated */

static ngx_int_t
ngx_bayeux_redis_url_name(ngx_pool_t *pool, ngx_str_t *host, ngx_str_t *name)
{
    name->data = ngx_pnalloc(pool, host->len + 1);
    if (name->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(name->data, host->data, host->len);
    name->data[host->len] = '\0';
    name->len = host->len;

    return NGX_OK;
}


static char *
ngx_bayeux_redis_url_unix(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_bayeux_redis_url_t *ru)
{
    char       *err;
    u_char     *end, *arg, *next, *eq;
    ngx_url_t   u;

    end = ngx_strlchr(p, last, '?');
    if (end == NULL) {
        end = last;
    }

    if (p == end || *p != '/') {
        return "the socket's path must be absolute, "
               "as in \"unix:/run/redis/redis.sock\"";
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    /* ngx_parse_url() knows "unix:" */

    u.url.data = p - (sizeof("unix:") - 1);
    u.url.len = end - u.url.data;

    if (ngx_parse_url(pool, &u) != NGX_OK || u.naddrs == 0) {
        return u.err ? u.err : "the socket's path is invalid";
    }

    ru->peer = u.addrs[0];
    ru->addr = u.url;

    /* db=N&user=U&password=P, the password escaped as in a URL */

    for (arg = end + 1; arg < last; arg = next + 1) {
        next = ngx_strlchr(arg, last, '&');
        if (next == NULL) {
            next = last;
        }

        eq = ngx_strlchr(arg, next, '=');

        if (eq == NULL) {
            return "a parameter of a unix socket must be "
                   "\"db=\", \"user=\" or \"password=\"";
        }

        if (eq - arg == 2 && ngx_strncmp(arg, "db", 2) == 0) {
            err = ngx_bayeux_redis_url_db(eq + 1, next, ru);

        } else if (eq - arg == 4 && ngx_strncmp(arg, "user", 4) == 0) {
            ru->user.data = eq + 1;
            ru->user.len = next - (eq + 1);
            err = NULL;

        } else if (eq - arg == 8 && ngx_strncmp(arg, "password", 8) == 0) {
            err = ngx_bayeux_redis_url_unescape(pool, eq + 1, next,
                                                &ru->password);

        } else {
            err = "a parameter of a unix socket must be "
                  "\"db=\", \"user=\" or \"password=\"";
        }

        if (err) {
            return err;
        }
    }

    return NULL;
}


/*
 * The authority of a URL: where it ends (the first "/", or "last") in
 * "end"; a "[user]:password@" before the host is read and skipped.
 */

static char *
ngx_bayeux_redis_url_authority(ngx_pool_t *pool, u_char **p, u_char *last,
    u_char **end, ngx_bayeux_redis_url_t *ru)
{
    char    *err;
    u_char  *at, *src;

    *end = ngx_strlchr(*p, last, '/');
    if (*end == NULL) {
        *end = last;
    }

    at = NULL;

    for (src = *p; src < *end; src++) {
        if (*src == '@') {
            at = src;
        }
    }

    if (at == NULL) {
        return NULL;
    }

    err = ngx_bayeux_redis_url_password(pool, *p, at, ru);
    if (err) {
        return err;
    }

    *p = at + 1;

    return NULL;
}


/* "[user]:password" up to "last"; the password is unescaped */

static char *
ngx_bayeux_redis_url_password(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_bayeux_redis_url_t *ru)
{
    u_char  *colon;

    colon = ngx_strlchr(p, last, ':');

    if (colon == NULL) {
        return "the password must follow a \":\", "
               "as in \"redis://:password@host\"";
    }

    ru->user.data = p;
    ru->user.len = colon - p;

    return ngx_bayeux_redis_url_unescape(pool, colon + 1, last,
                                         &ru->password);
}


static char *
ngx_bayeux_redis_url_unescape(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_str_t *password)
{
    size_t   len;
    u_char  *dst;

    len = last - p;

    if (len == 0) {
        return "the password is empty";
    }

    dst = ngx_pnalloc(pool, len);
    if (dst == NULL) {
        return "cannot allocate memory";
    }

    password->data = dst;
    ngx_unescape_uri(&dst, &p, len, 0);
    password->len = dst - password->data;

    return NULL;
}


static char *
ngx_bayeux_redis_url_db(u_char *p, u_char *last, ngx_bayeux_redis_url_t *ru)
{
    ru->db = ngx_atoi(p, last - p);

    if (ru->db == NGX_ERROR) {
        return "the database must be a number";
    }

    return NULL;
}
