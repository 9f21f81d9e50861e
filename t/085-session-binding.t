# A session is bound to the browser that handshook it (CometD's
# trustClientSession off): its clientId works only with the same
# BAYEUX_BROWSER cookie, or over the websocket that handshook it when that
# had no cookie.  bayeux_trust_client_session on: the clientId is enough.

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
use Bayeux::WebSocket;

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

sub ws_connect {
    my ($ws, $id) = @_;
    $ws->send_json([ { channel => '/meta/connect', clientId => $id,
                       connectionType => 'websocket', id => '2',
                       advice => { timeout => 0 } } ]);
    my $r = $ws->recv_json(timeout => 5);
    return $r->[0];
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



=== TEST 9: a websocket session without cookie: its clientId works on it alone
--- bayeux
my $ws = Bayeux::WebSocket->new(port => $port);
$ws->handshake or die $ws->error;
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

my $other = Bayeux::WebSocket->new(port => $port);
$other->handshake or die $other->error;
my $r = ws_connect($other, $id);
is($r->{error}, '402::session_unknown', 'another websocket: 402');

$ws->send_json([ { channel => '/meta/subscribe', clientId => $id,
                   subscription => '/chat', id => '3' } ]);
ok($ws->recv_json(timeout => 5)->[0]{successful}, 'still works on its own');
--- no_error_log
[error]



=== TEST 10: handshake over long-polling, then a websocket with the cookie
--- bayeux
my $a = client();
$a->handshake;
my $cookie = 'BAYEUX_BROWSER=' . $a->cookie_jar->{BAYEUX_BROWSER};
my $ws = Bayeux::WebSocket->new(port => $port);
$ws->handshake(headers => [ Cookie => $cookie ]) or die $ws->error;
ok(ws_connect($ws, $a->client_id)->{successful},
   'the upgrade with the cookie carries the session');

my $bare = Bayeux::WebSocket->new(port => $port);
$bare->handshake or die $bare->error;
is(ws_connect($bare, $a->client_id)->{error}, '402::session_unknown',
   'a websocket without the cookie: 402');

my $other = Bayeux::WebSocket->new(port => $port);
$other->handshake(headers => [ Cookie => 'BAYEUX_BROWSER=' . ('0' x 32) ])
    or die $other->error;
is(ws_connect($other, $a->client_id)->{error}, '402::session_unknown',
   'a websocket with another cookie: 402');

# a session handshaken over a websocket with a cookie is that browser's
my $w2 = Bayeux::WebSocket->new(port => $port);
$w2->handshake(headers => [ Cookie => $cookie ]) or die $w2->error;
my $id = ws_handshake($w2)->{clientId};
my $tab = client(cookie_jar => { %{ $a->cookie_jar } });
$tab->client_id($id);
ok($tab->connect(advice => { timeout => 0 })->{reply}{successful},
   'over HTTP from the same browser');
--- no_error_log
[error]
