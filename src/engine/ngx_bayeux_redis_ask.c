
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_bayeux_redis_ask.h"


static void ngx_bayeux_redis_ask_try(ngx_bayeux_redis_ask_t *a);
static void ngx_bayeux_redis_ask_closed(ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_ask_next(ngx_event_t *ev);


ngx_int_t
ngx_bayeux_redis_ask_create(ngx_bayeux_redis_ask_t *a, ngx_pool_t *pool,
    ngx_array_t *nodes, char *what, ngx_str_t *label)
{
    a->nodes = nodes;
    a->what = what;
    a->label = *label;
    a->addr = *label;

    a->addr_data = ngx_pnalloc(pool, NGX_SOCKADDR_STRLEN + label->len
                                     + sizeof(" ()"));
    if (a->addr_data == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_bayeux_redis_ask_init(ngx_bayeux_redis_ask_t *a, ngx_log_t *log,
    ngx_bayeux_redis_conn_t *proto, ngx_bayeux_redis_conn_pt connected,
    void *data)
{
    a->log = log;

    ngx_memzero(&a->query, sizeof(ngx_bayeux_redis_conn_t));

    a->query.log = log;
    a->query.connect_timeout = proto->connect_timeout;
    a->query.command_timeout = proto->command_timeout;

#if (NGX_SSL)
    /* the nodes asked speak TLS as the primary does */
    a->query.ssl = proto->ssl;
    a->query.ssl_name = proto->ssl_name;
    a->query.ssl_verify = proto->ssl_verify;
    a->query.ssl_server_name = proto->ssl_server_name;
#endif

    a->query.connected = connected;
    a->query.closed = ngx_bayeux_redis_ask_closed;
    a->query.data = data;

    a->next.handler = ngx_bayeux_redis_ask_next;
    a->next.data = a;
    a->next.log = log;
}


/* "found" answers, later */

void
ngx_bayeux_redis_ask_start(ngx_bayeux_redis_ask_t *a)
{
    if (a->asking || a->exiting) {
        return;
    }

    a->asking = 1;
    a->answered = 0;
    a->tries = 0;
    a->error[0] = '\0';

    ngx_bayeux_redis_ask_try(a);
}


void
ngx_bayeux_redis_ask_close(ngx_bayeux_redis_ask_t *a)
{
    a->exiting = 1;

    if (a->next.posted) {
        ngx_delete_posted_event(&a->next);
    }

    ngx_bayeux_redis_close(&a->query, "worker process is exiting");
}


/* the nodes give addresses, not names: no resolving while serving */

char *
ngx_bayeux_redis_ask_answer(ngx_bayeux_redis_ask_t *a, u_char *host,
    size_t len, ngx_int_t port)
{
    size_t       n;
    ngx_pool_t  *pool;
    ngx_addr_t   addr;

    if (port < 1 || port > 65535) {
        return "it gave an invalid port";
    }

    pool = ngx_create_pool(256, a->log);
    if (pool == NULL) {
        return "cannot allocate memory";
    }

    if (ngx_parse_addr(pool, &addr, host, len) != NGX_OK
        || addr.socklen > sizeof(ngx_sockaddr_t))
    {
        ngx_destroy_pool(pool);
        return "it gave a host name or no address, not an address";
    }

    ngx_memcpy(&a->sockaddr, addr.sockaddr, addr.socklen);
    ngx_destroy_pool(pool);

    ngx_inet_set_port(&a->sockaddr.sockaddr, (in_port_t) port);

    a->primary.sockaddr = &a->sockaddr.sockaddr;
    a->primary.socklen = addr.socklen;

    n = ngx_sock_ntop(&a->sockaddr.sockaddr, a->primary.socklen,
                      a->addr_data, NGX_SOCKADDR_STRLEN, 1);

    a->primary.name.data = a->addr_data;
    a->primary.name.len = n;

    a->addr.data = a->addr_data;
    a->addr.len = ngx_sprintf(a->addr_data + n, " (%V)", &a->label)
                  - a->addr_data;

    a->answered = 1;

    return NULL;
}


/* asks the nodes in turn, from "current", until one connects */

static void
ngx_bayeux_redis_ask_try(ngx_bayeux_redis_ask_t *a)
{
    ngx_addr_t  *addr;

    while (a->tries < a->nodes->nelts) {
        addr = a->nodes->elts;
        addr = &addr[(a->current + a->tries) % a->nodes->nelts];

        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, a->log, 0,
                       "bayeux redis: asking %s %V", a->what, &addr->name);

        if (ngx_bayeux_redis_connect(&a->query, addr) == NGX_OK) {
            return;
        }

        ngx_snprintf(a->error, sizeof(a->error) - 1, "%s %V: %s%Z",
                     a->what, &addr->name, a->query.error);
        a->tries++;
    }

    a->asking = 0;

    if (a->error[0] == '\0') {
        ngx_snprintf(a->error, sizeof(a->error) - 1, "no %s answered%Z",
                     a->what);
    }

    a->found(a->data, NULL, a->error);
}


static void
ngx_bayeux_redis_ask_closed(ngx_bayeux_redis_conn_t *rc)
{
    ngx_addr_t              *addr;
    ngx_bayeux_redis_ask_t  *a;

    a = (ngx_bayeux_redis_ask_t *)
            ((u_char *) rc - offsetof(ngx_bayeux_redis_ask_t, query));

    if (a->exiting) {
        return;
    }

    if (!a->answered) {
        addr = a->nodes->elts;
        addr = &addr[(a->current + a->tries) % a->nodes->nelts];

        ngx_snprintf(a->error, sizeof(a->error) - 1, "%s %V: %s%Z",
                     a->what, &addr->name, rc->error);
        a->error[sizeof(a->error) - 1] = '\0';
        a->tries++;
    }

    /* not from inside the adapter's handlers */

    ngx_post_event(&a->next, &ngx_posted_events);
}


static void
ngx_bayeux_redis_ask_next(ngx_event_t *ev)
{
    ngx_bayeux_redis_ask_t  *a = ev->data;

    if (a->exiting) {
        return;
    }

    if (!a->answered) {
        ngx_bayeux_redis_ask_try(a);
        return;
    }

    /* the one that answered is asked first the next time */

    a->current = (a->current + a->tries) % a->nodes->nelts;
    a->asking = 0;
    a->answered = 0;

    a->found(a->data, &a->primary, NULL);
}
