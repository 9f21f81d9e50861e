
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_HOOKS_H_INCLUDED_
#define _NGX_BAYEUX_HOOKS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_json.h"
#include "ngx_bayeux_batch.h"


/*
 * Hooks: where extensions and the application step in between a parsed
 * message and its engine operation (incoming), and into what the batch
 * writes (outgoing).  They are registered per endpoint at configuration
 * time and run in the order of registration, each for the kinds of
 * message in its mask (ngx_bayeux_kind_mask(), NGX_BAYEUX_KIND_ANY).
 *
 * An incoming hook runs once per message, after the checks of every
 * message (channel, session) and those of its kind, before the engine.
 * It returns:
 *
 *   NGX_OK        the message goes on, to the next hook and the engine;
 *   NGX_DECLINED  the message is refused: the hook has set b->refusal,
 *                 with ngx_bayeux_batch_error() or an error and advice
 *                 of its own ("403::handshake_denied");
 *   NGX_ERROR     the message is refused with "500::server_error";
 *   NGX_AGAIN     the hook answers later: it calls
 *                 ngx_bayeux_batch_resume(b, rc) exactly once, rc being
 *                 one of the three above.
 *
 * While a hook waits, the batch waits with it, and so do its later
 * messages: they are applied in order.  The batch counts as inside
 * (the lifetime rule in ngx_bayeux_batch.h): its transport does not
 * free it, its request is kept.  If the transport cancels it meanwhile,
 * the hook's "cancel" handler, if it has one, is called from
 * ngx_bayeux_batch_cancel() so that it may stop waiting and free what it
 * holds; it must not resume the batch during that call, but it still
 * resumes it once afterwards (from a posted event, or when its
 * subrequest ends), whatever rc: the batch then goes no further and the
 * transport frees it.  A hook does not touch "b" once it has resumed
 * it, for it may be freed during the call; b->aborted tells it, before
 * it resumes, that nothing will be made of its answer.  b->hook_ctx is
 * the waiting hook's, for its state.
 *
 * An outgoing hook is called while a reply of a message of its kinds is
 * written, before the reply object is closed: it adds fields with
 * ngx_bayeux_json_key() and a value ("ext":{...}).  NGX_OK, or
 * NGX_ERROR: the reply is left out.
 *
 * A delivery hook is called the same way while a published message is
 * written as its subscribers receive it.  That text is written once per
 * message, in the publisher's batch, and the engine queues it for every
 * subscriber: a delivery hook adds what is the same for all of them
 * (a timestamp); what differs per session (the ack extension's batch
 * numbers) goes into the replies of /meta/connect, through an outgoing
 * hook.
 */

typedef ngx_int_t (*ngx_bayeux_incoming_pt)(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, void *data);
typedef void (*ngx_bayeux_incoming_cancel_pt)(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, void *data);
typedef ngx_int_t (*ngx_bayeux_outgoing_pt)(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_bayeux_json_t *reply, void *data);


typedef struct {
    ngx_uint_t                     kinds;
    ngx_bayeux_incoming_pt         handler;
    ngx_bayeux_incoming_cancel_pt  cancel;      /* optional */
    void                          *data;
} ngx_bayeux_incoming_hook_t;


typedef struct {
    ngx_uint_t                     kinds;
    ngx_bayeux_outgoing_pt         handler;
    void                          *data;
} ngx_bayeux_outgoing_hook_t;


struct ngx_bayeux_hooks_s {
    ngx_array_t                    incoming;    /* ngx_bayeux_incoming_hook_t */
    ngx_array_t                    outgoing;    /* ngx_bayeux_outgoing_hook_t */
    ngx_array_t                    delivery;    /* ngx_bayeux_outgoing_hook_t */
};


/* the hook registered, for its "cancel" to be set; NULL: no memory */

ngx_bayeux_incoming_hook_t *ngx_bayeux_hook_add_incoming(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep, ngx_uint_t kinds,
    ngx_bayeux_incoming_pt handler, void *data);
ngx_bayeux_outgoing_hook_t *ngx_bayeux_hook_add_outgoing(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep, ngx_uint_t kinds,
    ngx_bayeux_outgoing_pt handler, void *data);
ngx_bayeux_outgoing_hook_t *ngx_bayeux_hook_add_delivery(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep, ngx_bayeux_outgoing_pt handler, void *data);
ngx_int_t ngx_bayeux_hooks_outgoing(ngx_array_t *hooks,
    ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m, ngx_bayeux_json_t *j);

void ngx_bayeux_batch_resume(ngx_bayeux_batch_t *b, ngx_int_t rc);


#endif /* _NGX_BAYEUX_HOOKS_H_INCLUDED_ */
