
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_json.h"
#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_hooks.h"


static ngx_bayeux_hooks_t *ngx_bayeux_hooks(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep);
static ngx_bayeux_outgoing_hook_t *ngx_bayeux_hook_add(ngx_conf_t *cf,
    ngx_array_t *hooks, ngx_uint_t kinds, ngx_bayeux_outgoing_pt handler,
    void *data);


/* the hooks of an endpoint, made with the first one */

static ngx_bayeux_hooks_t *
ngx_bayeux_hooks(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep)
{
    ngx_bayeux_hooks_t  *hooks;

    if (ep->hooks) {
        return ep->hooks;
    }

    hooks = ngx_pcalloc(cf->pool, sizeof(ngx_bayeux_hooks_t));
    if (hooks == NULL) {
        return NULL;
    }

    if (ngx_array_init(&hooks->incoming, cf->pool, 2,
                       sizeof(ngx_bayeux_incoming_hook_t))
        != NGX_OK
        || ngx_array_init(&hooks->outgoing, cf->pool, 2,
                          sizeof(ngx_bayeux_outgoing_hook_t))
           != NGX_OK
        || ngx_array_init(&hooks->delivery, cf->pool, 1,
                          sizeof(ngx_bayeux_outgoing_hook_t))
           != NGX_OK)
    {
        return NULL;
    }

    ep->hooks = hooks;

    return hooks;
}


ngx_bayeux_incoming_hook_t *
ngx_bayeux_hook_add_incoming(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep,
    ngx_uint_t kinds, ngx_bayeux_incoming_pt handler, void *data)
{
    ngx_bayeux_hooks_t          *hooks;
    ngx_bayeux_incoming_hook_t  *hook;

    hooks = ngx_bayeux_hooks(cf, ep);
    if (hooks == NULL) {
        return NULL;
    }

    hook = ngx_array_push(&hooks->incoming);
    if (hook == NULL) {
        return NULL;
    }

    hook->kinds = kinds;
    hook->handler = handler;
    hook->cancel = NULL;
    hook->data = data;

    return hook;
}


ngx_bayeux_outgoing_hook_t *
ngx_bayeux_hook_add_outgoing(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep,
    ngx_uint_t kinds, ngx_bayeux_outgoing_pt handler, void *data)
{
    ngx_bayeux_hooks_t  *hooks;

    hooks = ngx_bayeux_hooks(cf, ep);
    if (hooks == NULL) {
        return NULL;
    }

    return ngx_bayeux_hook_add(cf, &hooks->outgoing, kinds, handler, data);
}


ngx_bayeux_outgoing_hook_t *
ngx_bayeux_hook_add_delivery(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep,
    ngx_bayeux_outgoing_pt handler, void *data)
{
    ngx_bayeux_hooks_t  *hooks;

    hooks = ngx_bayeux_hooks(cf, ep);
    if (hooks == NULL) {
        return NULL;
    }

    return ngx_bayeux_hook_add(cf, &hooks->delivery,
                               ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_PUBLISH),
                               handler, data);
}


static ngx_bayeux_outgoing_hook_t *
ngx_bayeux_hook_add(ngx_conf_t *cf, ngx_array_t *hooks, ngx_uint_t kinds,
    ngx_bayeux_outgoing_pt handler, void *data)
{
    ngx_bayeux_outgoing_hook_t  *hook;

    hook = ngx_array_push(hooks);
    if (hook == NULL) {
        return NULL;
    }

    hook->kinds = kinds;
    hook->handler = handler;
    hook->data = data;

    return hook;
}


/* runs the outgoing (or delivery) hooks while "j" is written for "m" */

ngx_int_t
ngx_bayeux_hooks_outgoing(ngx_array_t *hooks, ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_bayeux_json_t *j)
{
    ngx_uint_t                   i;
    ngx_bayeux_outgoing_hook_t  *hook;

    hook = hooks->elts;

    for (i = 0; i < hooks->nelts; i++) {

        if (!(hook[i].kinds & ngx_bayeux_kind_mask(m->kind))) {
            continue;
        }

        if (hook[i].handler(b, m, j, hook[i].data) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
