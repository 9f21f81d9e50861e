
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_BATCH_H_INCLUDED_
#define _NGX_BAYEUX_BATCH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_clients.h"
#include "ngx_bayeux_session.h"


/*
 * A batch: the messages of one request (or websocket message), applied
 * in order.  The way of a message, one way only:
 *
 *   transport       reads the request; ngx_bayeux_message.c parses it
 *                   into the batch's messages
 *   batch           ngx_bayeux_batch_run(): for each message in order,
 *                   the checks of every message (channel, session), its
 *                   kind told once (ngx_bayeux_kind_e), the checks of its
 *                   kind (the /meta table, ngx_bayeux_meta.c)
 *   incoming hooks  may refuse the message or make the batch wait
 *                   (ngx_bayeux_hooks.h): the multiple-clients rule,
 *                   extensions, authorization
 *   engine          the operation of its kind (ngx_bayeux_engine.h)
 *   outgoing hooks  add fields to its reply (delivery hooks: to a
 *                   published message, as subscribers receive it)
 *   replies         written per message (ngx_bayeux_reply.c), a
 *                   connect's once the batch is answered; the transport
 *                   sends them with the deliveries of the connect
 *                   (ngx_bayeux_batch_response())
 *
 * When every message is applied the transport's "done" is called; if
 * the batch held a /meta/connect that the engine parked, "parked" is set
 * and "wake" is called once the connect is answered.
 *
 * Lifetime: a batch is inside from just before an engine operation or
 * an incoming hook is called for it (a message, or the connect of
 * ngx_bayeux_batch_hold()) until that call has returned and its handler
 * has run (for a hook: it has resumed the batch), whichever comes last:
 * ngx_bayeux_batch_in_engine().  The call may set off anything
 * meanwhile (another batch's held connect answered, its write failing,
 * the transport closing), whatever the engine and whether it completes
 * during the call or later.  So a transport never frees a batch that is
 * inside: it cancels it (ngx_bayeux_batch_cancel() sets "aborted", and
 * tells a waiting hook), and the batch, once out, goes no further and
 * calls "abort", which frees it.  The transport's "enter" and "leave"
 * are called as the batch goes inside and comes out, so that what
 * carries the batch can keep itself meanwhile (a request:
 * r->main->blocked).
 */

typedef struct ngx_bayeux_batch_s  ngx_bayeux_batch_t;


/*
 * Why a message is refused, as its reply says it: the error
 * ("403::handshake_denied"), the advice object that comes with it, if
 * any, and for a handshake the connection types the server supports.
 */

typedef struct {
    ngx_str_t                      error;
    ngx_str_t                      advice;      /* JSON text, or empty */
    unsigned                       transports:1;
} ngx_bayeux_refusal_t;


/* what comes with an error: ngx_bayeux_batch_error() */
#define NGX_BAYEUX_ERROR_PLAIN         0
#define NGX_BAYEUX_ERROR_HANDSHAKE     1    /* advice: handshake again */
#define NGX_BAYEUX_ERROR_RETRY         2    /* advice: the endpoint's retry */
#define NGX_BAYEUX_ERROR_TRANSPORTS    3    /* connection types, no retry */

typedef void (*ngx_bayeux_batch_handler_pt)(ngx_bayeux_batch_t *b);


/*
 * The protocol's view of a transport, one static table each: its name
 * (the connectionType), its bit of bayeux_transports, and what the batch
 * calls back.
 */

typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     mask;

    ngx_bayeux_batch_handler_pt    done;
    ngx_bayeux_batch_handler_pt    wake;

    /*
     * NULL: none; else called instead of "wake" when messages arrive for
     * a held connect: the transport sends b->deliveries and holds the
     * connect again with ngx_bayeux_batch_hold() (WebSocket)
     */
    ngx_bayeux_batch_handler_pt    push;

    /*
     * the batch was cancelled while inside the engine; called once it is
     * out, instead of going on: the transport frees it then
     */
    ngx_bayeux_batch_handler_pt    abort;

    /* NULL: nothing to keep while the batch is inside the engine */
    ngx_bayeux_batch_handler_pt    enter;
    ngx_bayeux_batch_handler_pt    leave;
} ngx_bayeux_transport_t;


struct ngx_bayeux_batch_s {
    ngx_pool_t                    *pool;
    ngx_log_t                     *log;
    ngx_bayeux_endpoint_t         *endpoint;
    const ngx_bayeux_transport_t  *transport;

    ngx_array_t                   *messages;    /* ngx_bayeux_message_t */
    ngx_uint_t                     next;
    ngx_str_t                     *replies;

    ngx_bayeux_op_t                op;
    ngx_bayeux_waiter_t            waiter;
    ngx_uint_t                     connect;     /* index + 1, or 0 */
    ngx_uint_t                     disconnects; /* successful ones */
    ngx_msec_t                     hold;        /* of a parked connect */
    ngx_bayeux_wake_e              wake_reason;
    ngx_array_t                   *deliveries;  /* ngx_str_t */

    /* the code of the first error of its replies ("402"), for logs */
    ngx_str_t                      error;

    /* the message being applied is refused: why (its reply) */
    ngx_bayeux_refusal_t           refusal;

    /*
     * the "ext" of the reply being written, which outgoing hooks add
     * members to (ngx_bayeux_reply_ext_add()): the application's, or
     * empty
     */
    ngx_str_t                      reply_ext;

    /* the incoming hook the message is at (ngx_bayeux_hooks.h) */
    ngx_uint_t                     hook;
    ngx_int_t                      hook_rc;     /* its answer */
    void                          *hook_ctx;    /* a waiting hook's */

    void                          *data;

    /* long-polling: the BAYEUX_BROWSER of the request, and its hold */
    ngx_str_t                      browser;
    ngx_bayeux_browser_hold_t     *browser_hold;

    /*
     * the browser a handshake records as its session's, and that the
     * other messages must come from: the request's BAYEUX_BROWSER (the
     * one its handshake reply sets if it had none), or a websocket's (its
     * upgrade's, or an id of its own)
     */
    ngx_str_t                      owner;

    /*
     * a websocket's: the clientId of the session its connection serves,
     * empty until it handshakes or takes one up; messages naming another
     * session are refused
     */
    ngx_str_t                     *session;

    /*
     * what is known of the session of its messages (a websocket's, for
     * its connection), or NULL: see ngx_bayeux_session.h
     */
    ngx_bayeux_session_known_t    *known;

    unsigned                       running:1;
    unsigned                       calling:1;   /* engine call not returned */
    unsigned                       pending:1;   /* its handler not run */

    unsigned                       checked:1;   /* the message, hooks next */
    unsigned                       waiting:1;   /* a hook, not cancelled */
    unsigned                       resumed:1;   /* a hook answered later */
    unsigned                       parked:1;

    /*
     * set by the transport: deliveries were pushed and the connect is
     * still held, but not parked again (ngx_bayeux_batch_hold()) until
     * the client takes them; meanwhile messages wait in the engine
     */
    unsigned                       paused:1;

    unsigned                       expired:1;
    unsigned                       aborted:1;
    unsigned                       multiple_clients:1;

    /*
     * a websocket whose upgrade had no BAYEUX_BROWSER: its messages may
     * name a session of any browser (CometD's websocket takes a session
     * up by its clientId)
     */
    unsigned                       any_browser:1;
};


/* inside the engine or an incoming hook: see "Lifetime" above */
#define ngx_bayeux_batch_in_engine(b)  ((b)->calling || (b)->pending)

/*
 * deliveries for its held connect are pushed, the connect staying held:
 * a transport that pushes, a hold not over, and a connect that does not
 * acknowledge (the ack extension's deliveries travel in connect replies)
 */
#define ngx_bayeux_batch_pushed(b)                                           \
    ((b)->transport->push && !(b)->expired                                   \
     && (b)->waiter.ack == NGX_BAYEUX_NO_ACK)


ngx_int_t ngx_bayeux_protocol_init_endpoint(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep, ngx_conf_bitmask_t *transports);
ngx_int_t ngx_bayeux_batch_init(ngx_bayeux_batch_t *b);
void ngx_bayeux_batch_run(ngx_bayeux_batch_t *b);
void ngx_bayeux_batch_release(ngx_bayeux_batch_t *b);
void ngx_bayeux_batch_hold(ngx_bayeux_batch_t *b, ngx_msec_t hold);
ngx_int_t ngx_bayeux_batch_disconnected(ngx_bayeux_batch_t *b,
    ngx_str_t *client_id);
void ngx_bayeux_batch_cancel(ngx_bayeux_batch_t *b);
ngx_int_t ngx_bayeux_batch_error(ngx_bayeux_batch_t *b, char *error,
    ngx_uint_t with);
ngx_int_t ngx_bayeux_batch_response(ngx_bayeux_batch_t *b, ngx_str_t *out);
ngx_int_t ngx_bayeux_batch_deliveries(ngx_bayeux_batch_t *b, ngx_str_t *out);


#endif /* _NGX_BAYEUX_BATCH_H_INCLUDED_ */
