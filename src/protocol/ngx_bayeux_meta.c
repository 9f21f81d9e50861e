
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_json.h"
#include "ngx_bayeux_channel.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_reply.h"
#include "ngx_bayeux_clients.h"
#include "ngx_bayeux_meta.h"
#include "ngx_bayeux_ext_timesync.h"
#include "ngx_bayeux_ext_timestamp.h"
#include "ngx_bayeux_ext_ack.h"


/*
 * The kinds of message: what each asks of the engine, the shape of its
 * successful reply, and the checks of its own it passes first.  The
 * /meta channels are found by name; a message on any other channel is
 * told by the channel's flags.
 */


static ngx_int_t ngx_bayeux_meta_handshake(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);
static ngx_int_t ngx_bayeux_meta_connect(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);
static ngx_int_t ngx_bayeux_meta_subscription(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);
static ngx_int_t ngx_bayeux_meta_other(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);
static ngx_int_t ngx_bayeux_meta_publish(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);
static ngx_int_t ngx_bayeux_connection_type_enabled(ngx_bayeux_batch_t *b,
    const ngx_str_t *name);


#define ngx_bayeux_engine_op(name)  offsetof(ngx_bayeux_engine_t, name)


/* in the order of ngx_bayeux_kind_e */

static ngx_bayeux_meta_t  ngx_bayeux_metas[] = {

    { ngx_null_string, NGX_BAYEUX_KIND_NONE,
      NGX_BAYEUX_META_NO_OPERATION, 0, NULL },

    { ngx_string("/meta/handshake"), NGX_BAYEUX_KIND_HANDSHAKE,
      ngx_bayeux_engine_op(handshake),
      NGX_BAYEUX_REPLY_HANDSHAKE,
      ngx_bayeux_meta_handshake },

    { ngx_string("/meta/connect"), NGX_BAYEUX_KIND_CONNECT,
      ngx_bayeux_engine_op(connect),
      NGX_BAYEUX_REPLY_CLIENT_ID,
      ngx_bayeux_meta_connect },

    { ngx_string("/meta/subscribe"), NGX_BAYEUX_KIND_SUBSCRIBE,
      ngx_bayeux_engine_op(subscribe),
      NGX_BAYEUX_REPLY_CLIENT_ID|NGX_BAYEUX_REPLY_SUBSCRIPTION,
      ngx_bayeux_meta_subscription },

    { ngx_string("/meta/unsubscribe"), NGX_BAYEUX_KIND_UNSUBSCRIBE,
      ngx_bayeux_engine_op(unsubscribe),
      NGX_BAYEUX_REPLY_CLIENT_ID|NGX_BAYEUX_REPLY_SUBSCRIPTION,
      ngx_bayeux_meta_subscription },

    { ngx_string("/meta/disconnect"), NGX_BAYEUX_KIND_DISCONNECT,
      ngx_bayeux_engine_op(disconnect),
      NGX_BAYEUX_REPLY_CLIENT_ID,
      NULL },

    /* no other /meta channel is served, nor published to */

    { ngx_null_string, NGX_BAYEUX_KIND_META,
      NGX_BAYEUX_META_NO_OPERATION,
      NGX_BAYEUX_REPLY_CLIENT_ID,
      ngx_bayeux_meta_other },

    /* the server's: only the session is checked */

    { ngx_null_string, NGX_BAYEUX_KIND_SERVICE,
      ngx_bayeux_engine_op(touch), 0, NULL },

    { ngx_null_string, NGX_BAYEUX_KIND_PUBLISH,
      ngx_bayeux_engine_op(publish), 0,
      ngx_bayeux_meta_publish }
};


/*
 * The protocol of a location: the connection types it serves (the names
 * and bits of bayeux_transports, "transports", in the order a handshake
 * offers them), what does not change between replies, written once, and
 * the rules that are hooks, registered first.
 */

ngx_int_t
ngx_bayeux_protocol_init_endpoint(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep,
    ngx_conf_bitmask_t *transports)
{
    ngx_str_t           *name;
    ngx_conf_bitmask_t  *t;

    if (ngx_array_init(&ep->transports, cf->pool, 3, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (t = transports; t->name.len; t++) {

        if (!(ep->conf->transports & t->mask)) {
            continue;
        }

        name = ngx_array_push(&ep->transports);
        if (name == NULL) {
            return NGX_ERROR;
        }

        *name = t->name;
    }

    /* timesync first: its ts is when a message came, before any wait */

    if (ngx_bayeux_timesync_init_endpoint(cf, ep) != NGX_OK
        || ngx_bayeux_reply_init_endpoint(cf, ep) != NGX_OK
        || ngx_bayeux_clients_init_endpoint(cf, ep) != NGX_OK
        || ngx_bayeux_timestamp_init_endpoint(cf, ep) != NGX_OK
        || ngx_bayeux_ack_init_endpoint(cf, ep) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the kind of a message on a valid channel with these flags */

ngx_uint_t
ngx_bayeux_meta_kind(ngx_str_t *channel, ngx_uint_t flags)
{
    ngx_bayeux_meta_t  *meta;

    if (!(flags & NGX_BAYEUX_CHANNEL_META)) {
        return (flags & NGX_BAYEUX_CHANNEL_SERVICE) ? NGX_BAYEUX_KIND_SERVICE
                                                    : NGX_BAYEUX_KIND_PUBLISH;
    }

    for (meta = ngx_bayeux_metas; meta->kind != NGX_BAYEUX_KIND_META; meta++)
    {
        if (meta->channel.len == channel->len
            && ngx_strncmp(meta->channel.data, channel->data, channel->len)
               == 0)
        {
            return meta->kind;
        }
    }

    return NGX_BAYEUX_KIND_META;
}


ngx_bayeux_meta_t *
ngx_bayeux_meta(ngx_uint_t kind)
{
    return &ngx_bayeux_metas[kind];
}


ngx_bayeux_engine_op_pt
ngx_bayeux_meta_operation(ngx_bayeux_meta_t *meta,
    ngx_bayeux_engine_t *engine)
{
    return *(ngx_bayeux_engine_op_pt *) ((u_char *) engine + meta->operation);
}


/* a handshake names at least one connection type the location serves */

static ngx_int_t
ngx_bayeux_meta_handshake(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m)
{
    ngx_str_t   *name;
    ngx_uint_t   i;

    if (m->connection_types == NULL) {
        return NGX_OK;
    }

    name = m->connection_types->elts;

    for (i = 0; i < m->connection_types->nelts; i++) {
        if (ngx_bayeux_connection_type_enabled(b, &name[i]) == NGX_OK) {
            return NGX_OK;
        }
    }

    return ngx_bayeux_batch_error(b, "400::unsupported_connection_types",
                                  NGX_BAYEUX_ERROR_TRANSPORTS);
}


/*
 * One connect a batch, over a transport the location serves; b->hold:
 * how long it may be held.
 */

static ngx_int_t
ngx_bayeux_meta_connect(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m)
{
    ngx_int_t  timeout;

    if (b->connect) {
        return ngx_bayeux_batch_error(b, "400::multiple_connects",
                                      NGX_BAYEUX_ERROR_PLAIN);
    }

    if (ngx_bayeux_connection_type_enabled(b, &b->transport->name) != NGX_OK
        || (m->connection_type.len
            && (m->connection_type.len != b->transport->name.len
                || ngx_strncmp(m->connection_type.data,
                               b->transport->name.data,
                               b->transport->name.len)
                   != 0)))
    {
        return ngx_bayeux_batch_error(b, "400::unsupported_connection_type",
                                      NGX_BAYEUX_ERROR_PLAIN);
    }

    timeout = b->endpoint->conf->timeout;

    if (m->advice_timeout >= 0 && m->advice_timeout < timeout) {
        timeout = m->advice_timeout;
    }

    /* the multiple-clients rule may shorten it (an incoming hook) */
    b->hold = timeout;

    return NGX_OK;
}


/* the channel names of a (un)subscribe, into op->channels */

static ngx_int_t
ngx_bayeux_meta_subscription(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m)
{
    ngx_str_t   *name;
    ngx_uint_t   i, flags;

    if (m->subscriptions == NULL || m->subscriptions->nelts == 0) {
        return ngx_bayeux_batch_error(b, "403::subscription_missing",
                                      NGX_BAYEUX_ERROR_PLAIN);
    }

    /* checked first: the work of a message must stay small */

    if (m->subscriptions->nelts > b->endpoint->conf->max_channels) {
        return ngx_bayeux_batch_error(b, "400::too_many_channels",
                                      NGX_BAYEUX_ERROR_PLAIN);
    }

    name = m->subscriptions->elts;

    for (i = 0; i < m->subscriptions->nelts; i++) {

        if (ngx_bayeux_channel_parse(&name[i], &flags) != NGX_OK) {
            return ngx_bayeux_batch_error(b, "405::channel_invalid",
                                          NGX_BAYEUX_ERROR_PLAIN);
        }

        if (flags & NGX_BAYEUX_CHANNEL_META) {
            return ngx_bayeux_batch_error(b, "403::subscription_invalid",
                                          NGX_BAYEUX_ERROR_PLAIN);
        }
    }

    b->op.channels = m->subscriptions;

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_meta_other(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m)
{
    return ngx_bayeux_batch_error(b, "403::publish_denied",
                                  NGX_BAYEUX_ERROR_PLAIN);
}


/* a publish carries data, written once as its subscribers receive it */

static ngx_int_t
ngx_bayeux_meta_publish(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m)
{
    if (m->data.len == 0) {
        return ngx_bayeux_batch_error(b, "400::data_missing",
                                      NGX_BAYEUX_ERROR_PLAIN);
    }

    if (ngx_bayeux_delivery(b, m, &b->op.message) != NGX_OK) {
        return ngx_bayeux_batch_error(b, "500::server_error",
                                      NGX_BAYEUX_ERROR_PLAIN);
    }

    b->op.channel = m->channel;

    return NGX_OK;
}


/* supportedConnectionTypes: those the location serves */

ngx_int_t
ngx_bayeux_connection_types(ngx_bayeux_batch_t *b, ngx_bayeux_json_t *j)
{
    return ngx_bayeux_json_strings_field(j, "supportedConnectionTypes",
                                         &b->endpoint->transports);
}


static ngx_int_t
ngx_bayeux_connection_type_enabled(ngx_bayeux_batch_t *b,
    const ngx_str_t *name)
{
    ngx_str_t   *enabled;
    ngx_uint_t   i;

    enabled = b->endpoint->transports.elts;

    for (i = 0; i < b->endpoint->transports.nelts; i++) {
        if (enabled[i].len == name->len
            && ngx_strncmp(enabled[i].data, name->data, name->len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}
