
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_WS_FRAME_H_INCLUDED_
#define _NGX_BAYEUX_WS_FRAME_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* opcodes */

#define NGX_BAYEUX_WS_CONTINUATION    0x0
#define NGX_BAYEUX_WS_TEXT            0x1
#define NGX_BAYEUX_WS_BINARY          0x2
#define NGX_BAYEUX_WS_CLOSE           0x8
#define NGX_BAYEUX_WS_PING            0x9
#define NGX_BAYEUX_WS_PONG            0xa

#define ngx_bayeux_ws_is_control(opcode)  ((opcode) & 0x8)

/* close codes */

#define NGX_BAYEUX_WS_NORMAL          1000
#define NGX_BAYEUX_WS_GOING_AWAY      1001
#define NGX_BAYEUX_WS_PROTOCOL_ERROR  1002
#define NGX_BAYEUX_WS_UNSUPPORTED     1003
#define NGX_BAYEUX_WS_INVALID_DATA    1007
#define NGX_BAYEUX_WS_POLICY          1008
#define NGX_BAYEUX_WS_TOO_BIG         1009
#define NGX_BAYEUX_WS_SERVER_ERROR    1011

/* the header of a frame the server sends (never masked) */
#define NGX_BAYEUX_WS_MAX_HEADER      10

/* the payload of a control frame */
#define NGX_BAYEUX_WS_MAX_CONTROL     125


/* the header of a frame received from a client */

typedef struct {
    uint64_t                       len;         /* of the payload */
    size_t                         header;      /* the mask included */
    u_char                        *mask;
    ngx_uint_t                     opcode;
    ngx_uint_t                     fin;

    /* NGX_ERROR: how the websocket is to be closed */
    ngx_uint_t                     code;
    char                          *reason;
} ngx_bayeux_ws_frame_t;


ngx_int_t ngx_bayeux_ws_frame_parse(ngx_bayeux_ws_frame_t *f, u_char *p,
    size_t avail, ngx_uint_t in_message);
void ngx_bayeux_ws_frame_unmask(ngx_bayeux_ws_frame_t *f, u_char *payload);
ngx_int_t ngx_bayeux_ws_frame_close_status(ngx_bayeux_ws_frame_t *f,
    u_char *payload, ngx_uint_t *status);
size_t ngx_bayeux_ws_frame_header(u_char *buf, ngx_uint_t opcode,
    size_t len);
size_t ngx_bayeux_ws_frame_close_payload(u_char *buf, ngx_uint_t code,
    char *reason);


#endif /* _NGX_BAYEUX_WS_FRAME_H_INCLUDED_ */
