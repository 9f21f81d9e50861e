
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_polling.h"
#include "ngx_bayeux_websocket.h"
#include "ngx_bayeux_grants.h"
#include "ngx_bayeux_variables.h"


static ngx_int_t ngx_bayeux_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_bayeux_variable_messages(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_bayeux_variable_error(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static void ngx_bayeux_variables_of_batch(ngx_bayeux_batch_t *b,
    ngx_bayeux_variables_t *vars);
static void ngx_bayeux_variables_fill(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_str_t *grants, ngx_bayeux_variables_t *vars);


#define ngx_bayeux_var(name)  offsetof(ngx_bayeux_variables_t, name)

static ngx_http_variable_t  ngx_bayeux_variables[] = {

    { ngx_string("bayeux_client_id"), NULL, ngx_bayeux_variable,
      ngx_bayeux_var(client_id), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("bayeux_user"), NULL, ngx_bayeux_variable,
      ngx_bayeux_var(user), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("bayeux_channel"), NULL, ngx_bayeux_variable,
      ngx_bayeux_var(channel), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("bayeux_transport"), NULL, ngx_bayeux_variable,
      ngx_bayeux_var(transport), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("bayeux_messages"), NULL, ngx_bayeux_variable_messages,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("bayeux_error"), NULL, ngx_bayeux_variable_error,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_bayeux_variables_add(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_bayeux_variables; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/*
 * A subrequest of ours has its variables as its module context; a main
 * request with a context is a polling request, whose batch tells them.
 * Anything else has none: the variables are not found.
 */

static ngx_int_t
ngx_bayeux_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t               *value;
    ngx_bayeux_batch_t      *b;
    ngx_bayeux_variables_t  *vars, of_batch;

    if (ngx_bayeux_ws_log && r == ngx_bayeux_ws_log->request) {
        /* a websocket's closing line */
        ngx_memzero(&of_batch, sizeof(ngx_bayeux_variables_t));
        ngx_str_set(&of_batch.transport, "websocket");
        of_batch.client_id = ngx_bayeux_ws_log->client_id;

        if (ngx_bayeux_ws_log->grants.len) {
            ngx_bayeux_grants_user(&ngx_bayeux_ws_log->grants,
                                   &of_batch.user);
        }

        vars = &of_batch;

    } else if (r != r->main) {
        vars = ngx_http_get_module_ctx(r, ngx_bayeux_module);

    } else {
        b = ngx_bayeux_polling_batch(r);
        vars = NULL;

        if (b) {
            ngx_bayeux_variables_of_batch(b, &of_batch);
            vars = &of_batch;
        }
    }

    if (vars == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    value = (ngx_str_t *) ((u_char *) vars + data);

    if (value->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = value->data;
    v->len = value->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * $bayeux_messages: how many messages the polling request carried (of
 * the main request, in a subrequest); not found before they are read
 */

static ngx_int_t
ngx_bayeux_variable_messages(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char              *p;
    ngx_uint_t           n;
    ngx_bayeux_batch_t  *b;

    if (ngx_bayeux_ws_log && r == ngx_bayeux_ws_log->request) {
        /* a websocket's closing line: all it received */
        n = ngx_bayeux_ws_log->messages;

    } else {
        b = ngx_bayeux_polling_batch(r->main);

        if (b == NULL || b->messages == NULL) {
            v->not_found = 1;
            return NGX_OK;
        }

        n = b->messages->nelts;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%ui", n) - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * $bayeux_error: the code of the first Bayeux error among the replies of
 * the polling request ("402"); not found when there is none
 */

static ngx_int_t
ngx_bayeux_variable_error(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_bayeux_batch_t  *b;

    b = ngx_bayeux_polling_batch(r->main);

    if (b == NULL || b->error.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = b->error.data;
    v->len = b->error.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* a batch's: its first message's channel, its session, that user */

static void
ngx_bayeux_variables_of_batch(ngx_bayeux_batch_t *b,
    ngx_bayeux_variables_t *vars)
{
    ngx_uint_t             i;
    ngx_bayeux_message_t  *m, *first;

    ngx_memzero(vars, sizeof(ngx_bayeux_variables_t));

    vars->transport = b->transport->name;

    if (b->messages == NULL || b->messages->nelts == 0) {
        return;
    }

    m = b->messages->elts;
    first = &m[0];

    for (i = 0; i < b->messages->nelts; i++) {
        if (m[i].client_id.len) {
            first = &m[i];
            break;
        }
    }

    ngx_bayeux_variables_fill(b, first, NULL, vars);

    vars->channel = m[0].channel;
}


/*
 * The channel an operation is about: a subscribe's (first) subscription,
 * else the message's channel.
 */

static void
ngx_bayeux_variables_fill(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_str_t *grants, ngx_bayeux_variables_t *vars)
{
    ngx_str_t  *sub;

    vars->transport = b->transport->name;
    vars->client_id = m->client_id;
    vars->channel = m->channel;

    if (m->kind == NGX_BAYEUX_KIND_SUBSCRIBE
        && m->subscriptions && m->subscriptions->nelts)
    {
        sub = m->subscriptions->elts;
        vars->channel = sub[0];
    }

    if (grants == NULL) {
        grants = ngx_bayeux_session_grants(b->known, &m->client_id);
    }

    if (grants) {
        ngx_bayeux_grants_user(grants, &vars->user);
    }
}


ngx_int_t
ngx_bayeux_variables_set(ngx_http_request_t *sr, ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_str_t *grants)
{
    ngx_str_t               *s;
    ngx_uint_t               i;
    ngx_bayeux_variables_t  *vars, of_message;

    ngx_memzero(&of_message, sizeof(ngx_bayeux_variables_t));

    ngx_bayeux_variables_fill(b, m, grants, &of_message);

    /* the subrequest may outlive the batch (its log line) */

    vars = ngx_palloc(sr->pool, sizeof(ngx_bayeux_variables_t));
    if (vars == NULL) {
        return NGX_ERROR;
    }

    *vars = of_message;

    s = (ngx_str_t *) vars;

    for (i = 0; i < sizeof(ngx_bayeux_variables_t) / sizeof(ngx_str_t); i++)
    {
        if (s[i].len) {
            s[i].data = ngx_pstrdup(sr->pool, &s[i]);
            if (s[i].data == NULL) {
                return NGX_ERROR;
            }
        }
    }

    ngx_http_set_ctx(sr, vars, ngx_bayeux_module);

    return NGX_OK;
}
