
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_bayeux_redis_sentinel.h"


/*
 * As Sentinel's guidelines for clients ask: the sentinels are asked in
 * turn, the first that names the primary is asked first the next time;
 * the node it names is checked with ROLE before it is used; a failover
 * is learnt from "+switch-master", and a lost connection makes the engine
 * ask again, which finds the new primary once the sentinels agree on it.
 *
 * The URL's credentials go to the sentinels and to the data nodes, as
 * most clients do; a sentinel without a password that refuses AUTH for
 * that reason is asked all the same.
 */


/* a watch that was lost is tried again, on the next sentinel, after */
#define NGX_BAYEUX_SENTINEL_REWATCH    500


static void ngx_bayeux_redis_sentinel_auth_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
static void ngx_bayeux_redis_sentinel_query_connected(
    ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_sentinel_ask_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
static void ngx_bayeux_redis_sentinel_watch(ngx_bayeux_redis_sentinel_t *s);
static void ngx_bayeux_redis_sentinel_watch_connected(
    ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_sentinel_watch_reply(
    ngx_bayeux_redis_conn_t *rc, redisReply *reply,
    ngx_bayeux_redis_req_t *req);
static void ngx_bayeux_redis_sentinel_watch_closed(
    ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_sentinel_rewatch(ngx_event_t *ev);


ngx_bayeux_redis_sentinel_t *
ngx_bayeux_redis_sentinel_create(ngx_pool_t *pool, ngx_bayeux_redis_url_t *ru)
{
    ngx_bayeux_redis_sentinel_t  *s;

    s = ngx_pcalloc(pool, sizeof(ngx_bayeux_redis_sentinel_t));
    if (s == NULL) {
        return NULL;
    }

    s->master = ru->master;
    s->user = ru->user;
    s->password = ru->password;

    if (ngx_bayeux_redis_ask_create(&s->ask, pool, ru->sentinels,
                                    "sentinel", &ru->addr)
        != NGX_OK)
    {
        return NULL;
    }

    return s;
}


void
ngx_bayeux_redis_sentinel_init(ngx_bayeux_redis_sentinel_t *s,
    ngx_log_t *log, ngx_bayeux_redis_conn_t *proto)
{
    ngx_bayeux_redis_ask_init(&s->ask, log, proto,
                              ngx_bayeux_redis_sentinel_query_connected, s);

    s->watch = s->ask.query;
    s->watch.connected = ngx_bayeux_redis_sentinel_watch_connected;
    s->watch.closed = ngx_bayeux_redis_sentinel_watch_closed;

    s->query_auth_req.handler = ngx_bayeux_redis_sentinel_auth_reply;
    s->watch_auth_req.handler = ngx_bayeux_redis_sentinel_auth_reply;
    s->ask_req.handler = ngx_bayeux_redis_sentinel_ask_reply;
    s->watch_req.handler = ngx_bayeux_redis_sentinel_watch_reply;
    s->watch_req.subscription = 1;

    s->rewatch.handler = ngx_bayeux_redis_sentinel_rewatch;
    s->rewatch.data = s;
    s->rewatch.log = log;
    s->rewatch.cancelable = 1;

    ngx_bayeux_redis_sentinel_watch(s);
}


/* where is the primary? "found" answers, later */

void
ngx_bayeux_redis_sentinel_ask(ngx_bayeux_redis_sentinel_t *s)
{
    ngx_bayeux_redis_ask_start(&s->ask);
}


void
ngx_bayeux_redis_sentinel_close(ngx_bayeux_redis_sentinel_t *s)
{
    if (s->rewatch.timer_set) {
        ngx_del_timer(&s->rewatch);
    }

    ngx_bayeux_redis_ask_close(&s->ask);
    ngx_bayeux_redis_close(&s->watch, "worker process is exiting");
}


ngx_int_t
ngx_bayeux_redis_sentinel_role(ngx_bayeux_redis_conn_t *rc,
    ngx_bayeux_redis_req_t *req)
{
    const char  *argv[1];
    size_t       argvlen[1];

    argv[0] = "ROLE";
    argvlen[0] = 4;

    req->handler = ngx_bayeux_redis_sentinel_role_reply;

    return ngx_bayeux_redis_send(rc, req, 1, argv, argvlen);
}


/*
 * A sentinel may name a node that is not a primary yet, or not any more
 * (a failover in progress): it is left, and the sentinels are asked again
 * once the connection is closed.
 */

void
ngx_bayeux_redis_sentinel_role_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req)
{
    redisReply  *role;

    if (reply == NULL) {
        return;
    }

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        role = reply->element[0];

        if (role->type == REDIS_REPLY_STRING && role->len == 6
            && ngx_strncmp(role->str, "master", 6) == 0)
        {
            return;
        }
    }

    ngx_bayeux_redis_close(rc, "the node the sentinels named is not "
                               "a primary (ROLE)");
}


/*
 * Sentinels often have no password where the data nodes have one: such a
 * sentinel says so, and is used without.
 */

static void
ngx_bayeux_redis_sentinel_auth_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ERROR) {
        return;
    }

    if (ngx_strnstr((u_char *) reply->str, "without any password",
                    reply->len))
    {
        return;
    }

    ngx_bayeux_redis_close(rc, reply->str);
}


static void
ngx_bayeux_redis_sentinel_query_connected(ngx_bayeux_redis_conn_t *rc)
{
    const char                   *argv[3];
    size_t                        argvlen[3];
    ngx_bayeux_redis_sentinel_t  *s = rc->data;

    argv[0] = "SENTINEL";
    argvlen[0] = 8;
    argv[1] = "get-master-addr-by-name";
    argvlen[1] = 23;
    argv[2] = (const char *) s->master.data;
    argvlen[2] = s->master.len;

    if (ngx_bayeux_redis_auth(rc, &s->query_auth_req, &s->user,
                              &s->password)
        != NGX_OK
        || ngx_bayeux_redis_send(rc, &s->ask_req, 3, argv, argvlen)
           != NGX_OK)
    {
        ngx_bayeux_redis_close(rc, "cannot send a command");
    }
}


static void
ngx_bayeux_redis_sentinel_ask_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req)
{
    char                         *err;
    redisReply                   *host, *port;
    ngx_bayeux_redis_sentinel_t  *s = rc->data;

    if (reply == NULL) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_bayeux_redis_close(rc, reply->str);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        ngx_bayeux_redis_close(rc, "it does not know the master");
        return;
    }

    host = reply->element[0];
    port = reply->element[1];

    if (host->type != REDIS_REPLY_STRING || port->type != REDIS_REPLY_STRING) {
        ngx_bayeux_redis_close(rc, "it gave an invalid address");
        return;
    }

    /* an address: sentinel resolve-hostnames is not supported */

    err = ngx_bayeux_redis_ask_answer(&s->ask, (u_char *) host->str,
                                      host->len,
                                      ngx_atoi((u_char *) port->str,
                                               port->len));

    ngx_bayeux_redis_close(rc, err ? err : "asked");
}


/* the watch: SUBSCRIBE +switch-master on one sentinel */

static void
ngx_bayeux_redis_sentinel_watch(ngx_bayeux_redis_sentinel_t *s)
{
    ngx_addr_t  *addr;

    addr = s->ask.nodes->elts;
    addr = &addr[s->watched % s->ask.nodes->nelts];

    if (ngx_bayeux_redis_connect(&s->watch, addr) != NGX_OK) {
        s->watched++;
        ngx_add_timer(&s->rewatch, NGX_BAYEUX_SENTINEL_REWATCH);
    }
}


static void
ngx_bayeux_redis_sentinel_watch_connected(ngx_bayeux_redis_conn_t *rc)
{
    const char                   *argv[2];
    size_t                        argvlen[2];
    ngx_bayeux_redis_sentinel_t  *s = rc->data;

    argv[0] = "SUBSCRIBE";
    argvlen[0] = 9;
    argv[1] = "+switch-master";
    argvlen[1] = 14;

    if (ngx_bayeux_redis_auth(rc, &s->watch_auth_req, &s->user,
                              &s->password)
        != NGX_OK
        || ngx_bayeux_redis_send(rc, &s->watch_req, 2, argv, argvlen)
           != NGX_OK)
    {
        ngx_bayeux_redis_close(rc, "cannot send a command");
    }
}


/* "<master name> <old ip> <old port> <new ip> <new port>" */

static void
ngx_bayeux_redis_sentinel_watch_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req)
{
    u_char                       *p, *last;
    redisReply                   *type, *payload;
    ngx_bayeux_redis_sentinel_t  *s = rc->data;

    if (reply == NULL || s->ask.exiting) {
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
        return;
    }

    type = reply->element[0];
    payload = reply->element[2];

    if (type->type != REDIS_REPLY_STRING || type->len != 7
        || ngx_strncmp(type->str, "message", 7) != 0
        || payload->type != REDIS_REPLY_STRING)
    {
        return;
    }

    p = (u_char *) payload->str;
    last = p + payload->len;

    if ((size_t) (last - p) <= s->master.len
        || p[s->master.len] != ' '
        || ngx_strncmp(p, s->master.data, s->master.len) != 0)
    {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, s->ask.log, 0,
                  "bayeux: redis sentinel: master \"%V\" switched "
                  "(%*s)", &s->master,
                  (size_t) (last - p - s->master.len - 1),
                  p + s->master.len + 1);

    s->switched(s->ask.data);
}


static void
ngx_bayeux_redis_sentinel_watch_closed(ngx_bayeux_redis_conn_t *rc)
{
    ngx_bayeux_redis_sentinel_t  *s = rc->data;

    if (s->ask.exiting || ngx_exiting) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, s->ask.log, 0,
                   "bayeux redis: sentinel watch lost (%s)", rc->error);

    s->watched++;

    ngx_add_timer(&s->rewatch, NGX_BAYEUX_SENTINEL_REWATCH);
}


static void
ngx_bayeux_redis_sentinel_rewatch(ngx_event_t *ev)
{
    ngx_bayeux_redis_sentinel_t  *s = ev->data;

    if (s->ask.exiting) {
        return;
    }

    ngx_bayeux_redis_sentinel_watch(s);
}
