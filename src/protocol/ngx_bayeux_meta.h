
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_META_H_INCLUDED_
#define _NGX_BAYEUX_META_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_json.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_batch.h"


/* what the successful reply of a kind carries beside id and channel */
#define NGX_BAYEUX_REPLY_HANDSHAKE     0x01    /* version, types, advice */
#define NGX_BAYEUX_REPLY_CLIENT_ID     0x02
#define NGX_BAYEUX_REPLY_SUBSCRIPTION  0x04    /* its failures too */


/* the operation of a kind without one: never called */
#define NGX_BAYEUX_META_NO_OPERATION   0


/*
 * A check of its own a kind of message passes before the engine sees
 * it: NGX_OK, or NGX_DECLINED with b->refusal set
 * (ngx_bayeux_batch_error()).
 */

typedef ngx_int_t (*ngx_bayeux_meta_check_pt)(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);

typedef void (*ngx_bayeux_engine_op_pt)(ngx_bayeux_op_t *op);


typedef struct {
    ngx_str_t                      channel;     /* empty: not /meta/<x> */
    ngx_uint_t                     kind;        /* ngx_bayeux_kind_e */
    size_t                         operation;   /* in ngx_bayeux_engine_t */
    ngx_uint_t                     reply;       /* NGX_BAYEUX_REPLY_* */
    ngx_bayeux_meta_check_pt       check;
} ngx_bayeux_meta_t;


ngx_uint_t ngx_bayeux_meta_kind(ngx_str_t *channel, ngx_uint_t flags);
ngx_bayeux_meta_t *ngx_bayeux_meta(ngx_uint_t kind);
ngx_bayeux_engine_op_pt ngx_bayeux_meta_operation(ngx_bayeux_meta_t *meta,
    ngx_bayeux_engine_t *engine);
ngx_int_t ngx_bayeux_connection_types(ngx_bayeux_batch_t *b,
    ngx_bayeux_json_t *j);


#endif /* _NGX_BAYEUX_META_H_INCLUDED_ */
