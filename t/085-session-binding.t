# A session is bound to the browser that handshook it (CometD's
# trustClientSession off): over HTTP its clientId works only with the
# BAYEUX_BROWSER cookie of its handshake (a websocket's without cookie:
# never).  A websocket may take a session up by its clientId, as CometD's
# does, unless its upgrade carried another browser's cookie; it serves one
# session.  bayeux_trust_client_session on: the clientId is enough.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
    }
CONF

# helpers for the conversations, which run in this package

package Test::Nginx::Bayeux::Conversation;

use Test::More;
use Time::HiRes qw(sleep);
use Bayeux::WebSocket;

our $SERVER;

# B sends, with A's clientId, a subscribe, a publish and a connect, one
# request each, over long-polling (POST) or callback-polling (GET);
# returns the replies
sub steal {
    my ($b, $id, %o) = @_;
    my @jsonp = $o{jsonp} ? (jsonp => 'cb') : ();
    my @r;
    for my $m ([ '/', { channel => '/meta/subscribe', clientId => $id,
                        subscription => '/stolen' } ],
               [ '/', { channel => '/chat', clientId => $id,
                        data => { text => 'forged' } } ],
               [ '/connect', { channel => '/meta/connect', clientId => $id,
                               connectionType => $o{jsonp}
                                   ? 'callback-polling' : 'long-polling' } ])
    {
        my $res = $b->post($m->[0], [ $m->[1] ], @jsonp);
        push @r, grep { exists $_->{successful} } @{ $res->{messages} };
    }
    return @r;
}

sub refused {
    my ($what, @r) = @_;
    for my $r (@r) {
        is($r->{error}, '402::session_unknown', "$what: $r->{channel}");
        is($r->{advice}{reconnect}, 'handshake', "$what: $r->{channel} advice");
        ok(!$r->{successful}, "$what: $r->{channel} not successful");
    }
}

# A, subscribed to /chat with one message queued by C
sub victim {
    my $a = client();
    my $c = client();
    $a->handshake;
    $a->subscribe('/chat');
    $a->connect;
    $c->handshake;
    $c->publish('/chat', { text => 'queued' });
    return ($a, $c);
}

# A gets exactly its message: nothing drained, nothing forged, nothing
# subscribed for it
sub intact {
    my ($a, $c) = @_;
    $c->publish('/stolen', { text => 'not for A' });
    my $r = $a->connect;
    ok($r->{reply}{successful}, 'A still connects');
    is_deeply([ map { $_->{data}{text} } @{ $r->{deliveries} } ],
              [ 'queued' ], 'A gets its queue, untouched');
}

sub ws_handshake {
    my ($ws) = @_;
    $ws->send_json([ { channel => '/meta/handshake', version => '1.0',
                       supportedConnectionTypes => ['websocket'],
                       id => '1' } ]);
    my $r = $ws->recv_json(timeout => 5);
    return $r->[0];
}

# the reply (not a delivery) among a websocket message's Bayeux messages
sub ws_reply {
    my ($r) = @_;
    my ($m) = grep { exists $_->{successful} } @{ $r || [] };
    return $m;
}

sub ws_send {
    my ($ws, $m) = @_;
    $ws->send_json([ $m ]);
    return ws_reply($ws->recv_json(timeout => 5));
}

sub ws_connect {
    my ($ws, $id) = @_;
    return ws_send($ws, { channel => '/meta/connect', clientId => $id,
                          connectionType => 'websocket', id => '2',
                          advice => { timeout => 0 } });
}

sub ws_subscribe {
    my ($ws, $id, $channel) = @_;
    return ws_send($ws, { channel => '/meta/subscribe', clientId => $id,
                          subscription => $channel, id => '3' });
}

sub ws_publish {
    my ($ws, $id, $channel, $text) = @_;
    return ws_send($ws, { channel => $channel, clientId => $id,
                          data => { text => $text }, id => '4' });
}

# a connect held on the websocket (its reply is left to read)
sub ws_hold {
    my ($ws, $id) = @_;
    $ws->send_json([ { channel => '/meta/connect', clientId => $id,
                       connectionType => 'websocket', id => '5' } ]);
    sleep(0.3);
}

# a websocket upgraded with these headers (e.g. Cookie => ...)
sub ws_new {
    my (@headers) = @_;
    my $ws = Bayeux::WebSocket->new(port => $SERVER->port);
    $ws->handshake(headers => [ @headers ]) or die $ws->error;
    return $ws;
}

package main;

run_tests();

__DATA__

=== TEST 1: no cookie, long-polling: 402 for subscribe, publish, connect
--- bayeux
my ($a, $c) = victim();
my $b = client(cookies => 0);
refused('no cookie', steal($b, $a->client_id));
intact($a, $c);
--- no_error_log
[error]



=== TEST 2: another browser's cookie, long-polling: 402
--- bayeux
my ($a, $c) = victim();
my $b = client();
$b->handshake;
ok($b->cookie_jar->{BAYEUX_BROWSER} ne $a->cookie_jar->{BAYEUX_BROWSER},
   'another browser');
refused('other cookie', steal($b, $a->client_id));
intact($a, $c);
--- no_error_log
[error]



=== TEST 3: no cookie, callback-polling GET: 402
--- bayeux
my ($a, $c) = victim();
my $b = client(cookies => 0);
refused('jsonp, no cookie', steal($b, $a->client_id, jsonp => 1));
intact($a, $c);
--- no_error_log
[error]



=== TEST 4: another browser's cookie, callback-polling GET: 402
--- bayeux
my ($a, $c) = victim();
my $b = client(cookie_jar => { BAYEUX_BROWSER => 'f' x 32 });
refused('jsonp, other cookie', steal($b, $a->client_id, jsonp => 1));
intact($a, $c);
--- no_error_log
[error]



=== TEST 5: the exact reply
--- bayeux
my ($a, $c) = victim();
my $b = client(cookies => 0);
my $res = $b->post('/connect', [ { channel => '/meta/connect', id => '7',
                                   clientId => $a->client_id,
                                   connectionType => 'long-polling' } ]);
is($res->body, '[{"id":"7","channel":"/meta/connect","successful":false,'
   . '"error":"402::session_unknown","clientId":"' . $a->client_id
   . '","advice":{"reconnect":"handshake","interval":0}}]', 'reply');



=== TEST 6: the same browser (another tab of it) may use the session
--- bayeux
my ($a, $c) = victim();
my $tab = client(cookie_jar => { %{ $a->cookie_jar } });
my @r = steal($tab, $a->client_id);
ok($_->{successful}, "same browser: $_->{channel}") for @r;
is_deeply([ map { $_->{data}{text} } @{ $tab->deliveries('/chat') } ],
          [ 'queued', 'forged' ], 'the tab drained the queue');



=== TEST 7: bayeux_trust_client_session on: the clientId is enough
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_trust_client_session on;
    }
--- bayeux
my ($a, $c) = victim();
my $b = client(cookies => 0);
my @r = steal($b, $a->client_id);
ok($_->{successful}, "trusted: $_->{channel}") for @r;
is_deeply([ map { $_->{data}{text} } @{ $b->deliveries('/chat') } ],
          [ 'queued', 'forged' ], 'B drained A\'s queue');
my $j = client(cookies => 0);
@r = steal($j, $a->client_id, jsonp => 1);
ok($_->{successful}, "trusted, jsonp: $_->{channel}") for @r;
--- no_error_log
[error]



=== TEST 8: bayeux_trust_client_session at server level, off in a location
--- config
    bayeux_trust_client_session on;
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_trust_client_session off;
    }
    location /trusted {
        bayeux;
        bayeux_timeout 2s;
    }
--- bayeux
my ($a, $c) = victim();
refused('off in the location', steal(client(cookies => 0), $a->client_id));
my $t = client(path => '/trusted');
$t->handshake;
my @r = steal(client(path => '/trusted', cookies => 0), $t->client_id);
ok($_->{successful}, "inherited on: $_->{channel}") for @r;



=== TEST 9: a websocket session without cookie: never over HTTP
--- bayeux
my $ws = ws_new();
my $hs = ws_handshake($ws);
ok($hs->{successful}, 'handshake over websocket');
my $id = $hs->{clientId};
ok(ws_connect($ws, $id)->{successful}, 'connect over its websocket');

refused('websocket session over HTTP', steal(client(cookies => 0), $id));
my $b = client();
$b->handshake;
refused('websocket session, HTTP with a cookie', steal($b, $id));
refused('websocket session over jsonp',
        steal(client(cookies => 0), $id, jsonp => 1));

# while its websocket holds its connect, too
ws_hold($ws, $id);
refused('held on its websocket, over HTTP',
        steal(client(cookies => 0), $id));
ok(ws_subscribe($ws, $id, '/chat')->{successful},
   'still works on its own websocket');
my $r = ws_reply($ws->recv_json(timeout => 5));
ok($r->{successful}, 'the held connect is answered');
--- no_error_log
[error]



=== TEST 10: a websocket without cookie takes up a session by its clientId
--- bayeux
my ($a, $c) = victim();
my $bare = ws_new();
ok(ws_connect($bare, $a->client_id)->{successful},
   'a session handshaken over HTTP, over a websocket without cookie');
ok(ws_publish($bare, $a->client_id, '/other', 'by websocket')->{successful},
   'publishes');

# a websocket session without cookie, over another such websocket
my $ws = ws_new();
my $id = ws_handshake($ws)->{clientId};
ok(ws_connect(ws_new(), $id)->{successful},
   'a websocket session over another websocket without cookie');

# HTTP still needs the cookie while a websocket holds the connect
ws_hold($bare, $a->client_id);
refused('taken up by a websocket, HTTP without cookie',
        steal(client(cookies => 0), $a->client_id));
my $tab = client(cookie_jar => { %{ $a->cookie_jar } });
$tab->client_id($a->client_id);
ok($tab->publish('/other', { text => 'tab' })->{successful},
   'HTTP with the cookie of its handshake works');
--- no_error_log
[error]



=== TEST 11: a websocket with another browser's cookie: 402
--- bayeux
my ($a, $c) = victim();
my $zero = 'BAYEUX_BROWSER=' . ('0' x 32);
my $other = ws_new(Cookie => $zero);
refused('a websocket with another cookie',
        ws_connect($other, $a->client_id),
        ws_subscribe($other, $a->client_id, '/stolen'),
        ws_publish($other, $a->client_id, '/chat', 'forged'));

my $ws = ws_new();
my $id = ws_handshake($ws)->{clientId};
refused('a websocket session, over a websocket with a cookie',
        ws_connect(ws_new(Cookie => $zero), $id));
intact($a, $c);

# the cookie of the session's browser
my $cookie = 'BAYEUX_BROWSER=' . $a->cookie_jar->{BAYEUX_BROWSER};
ok(ws_connect(ws_new(Cookie => $cookie), $a->client_id)->{successful},
   'a websocket with the cookie of the session');

# a session handshaken over a websocket with a cookie is that browser's
my $id2 = ws_handshake(ws_new(Cookie => $cookie))->{clientId};
my $t = client(cookie_jar => { %{ $a->cookie_jar } });
$t->client_id($id2);
ok($t->connect(advice => { timeout => 0 })->{reply}{successful},
   'over HTTP from the same browser');
refused('over HTTP from none', steal(client(cookies => 0), $id2));
--- no_error_log
[error]



=== TEST 12: one websocket serves one session
--- bayeux
my ($a, $c) = victim();
my $ws = ws_new();
my $id = ws_handshake($ws)->{clientId};
refused('another clientId on a websocket that handshook',
        ws_connect($ws, $a->client_id),
        ws_subscribe($ws, $a->client_id, '/stolen'),
        ws_publish($ws, $a->client_id, '/chat', 'forged'));
ok(ws_connect($ws, $id)->{successful}, 'its own still works');
intact($a, $c);

# taken up: the same
my ($v, $d) = victim();
my $up = ws_new();
ok(ws_connect($up, $id)->{successful}, 'takes up a session');
refused('another clientId on a websocket that took one up',
        ws_subscribe($up, $v->client_id, '/stolen'),
        ws_publish($up, $v->client_id, '/chat', 'forged'),
        ws_connect($up, $v->client_id));
intact($v, $d);

# an unknown clientId binds nothing; a new handshake binds anew
my $s = ws_new();
refused('unknown', ws_connect($s, 'f' x 40));
ok(ws_connect($s, $id)->{successful}, 'then a known one');
my $new = ws_handshake($s)->{clientId};
ok(ws_connect($s, $new)->{successful}, 'a new handshake: its session');
refused('the one before', ws_connect($s, $id));

# a batch naming two sessions: the other one's message is refused
my ($w, $e) = victim();
my $m = ws_new();
my $mid = ws_handshake($m)->{clientId};
$m->send_json([ { channel => '/meta/subscribe', clientId => $mid,
                  subscription => '/mine', id => '8' },
                { channel => '/meta/subscribe', clientId => $w->client_id,
                  subscription => '/stolen', id => '9' } ]);
my $r = $m->recv_json(timeout => 5);
ok($r->[0]{successful}, 'its own subscribe');
refused('the other one in the batch', $r->[1]);
intact($w, $e);
--- no_error_log
[error]



=== TEST 13: bayeux_trust_client_session on: a websocket may name any session
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_trust_client_session on;
    }
--- bayeux
my ($a, $c) = victim();
my $ws = ws_new(Cookie => 'BAYEUX_BROWSER=' . ('0' x 32));
my $id = ws_handshake($ws)->{clientId};
ok(ws_connect($ws, $id)->{successful}, 'its own');
ok(ws_subscribe($ws, $a->client_id, '/x')->{successful},
   'another browser\'s, on the same websocket');
my @r = steal(client(cookies => 0), $id);
ok($_->{successful}, "trusted, over HTTP: $_->{channel}") for @r;
--- no_error_log
[error]
