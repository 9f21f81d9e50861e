
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_json.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_hooks.h"
#include "ngx_bayeux_reply.h"
#include "ngx_bayeux_ext_ack.h"


static ngx_int_t ngx_bayeux_ack_connect_in(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, void *data);
static ngx_int_t ngx_bayeux_ack_handshake_out(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_bayeux_json_t *reply, void *data);
static ngx_int_t ngx_bayeux_ack_connect_out(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_bayeux_json_t *reply, void *data);


#define NGX_BAYEUX_ACK_CONNECT                                               \
    ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_CONNECT)


ngx_int_t
ngx_bayeux_ack_init_endpoint(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep)
{
    if (!ep->conf->ack) {
        return NGX_OK;
    }

    if (ngx_bayeux_hook_add_incoming(cf, ep, NGX_BAYEUX_ACK_CONNECT,
                                     ngx_bayeux_ack_connect_in, NULL)
        == NULL
        || ngx_bayeux_hook_add_outgoing(cf, ep,
                              ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_HANDSHAKE),
                              ngx_bayeux_ack_handshake_out, NULL)
           == NULL
        || ngx_bayeux_hook_add_outgoing(cf, ep, NGX_BAYEUX_ACK_CONNECT,
                                        ngx_bayeux_ack_connect_out, NULL)
           == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A connect that names a batch acknowledges: the batch's connect (its
 * only one) keeps that for the engine.  A number below 0 acknowledges
 * nothing; one beyond what a batch number can be, everything.
 */

static ngx_int_t
ngx_bayeux_ack_connect_in(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    void *data)
{
    int64_t  batch;

    if (!m->ext_values.ack_batch.given) {
        return NGX_OK;
    }

    batch = m->ext_values.ack_batch.value;

    if (batch < 0) {
        batch = 0;

    } else if (batch > NGX_MAX_INT_T_VALUE) {
        batch = NGX_MAX_INT_T_VALUE;
    }

    b->waiter.ack = (ngx_int_t) batch;
    b->waiter.batch = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_ack_handshake_out(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_bayeux_json_t *reply, void *data)
{
    static ngx_str_t  on = ngx_string("true");

    if (m->refused
        || !m->ext_values.ack_enabled.given
        || !m->ext_values.ack_enabled.value)
    {
        return NGX_OK;
    }

    return ngx_bayeux_reply_ext_add(b, "ack", &on);
}


/*
 * The batch given, once there is one: the client acknowledges it with
 * its next connect.  A reply that gave nothing (superseded, refused)
 * names none, so that the client's count does not go back.
 */

static ngx_int_t
ngx_bayeux_ack_connect_out(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_bayeux_json_t *reply, void *data)
{
    u_char     buf[NGX_INT_T_LEN];
    ngx_str_t  value;

    if (m->refused
        || b->waiter.ack == NGX_BAYEUX_NO_ACK
        || b->waiter.batch == 0)
    {
        return NGX_OK;
    }

    value.data = buf;
    value.len = ngx_sprintf(buf, "%ui", b->waiter.batch) - buf;

    return ngx_bayeux_reply_ext_add(b, "ack", &value);
}
