# Lazy channels (bayeux_lazy_channel, bayeux_max_lazy_timeout), CometD's
# lazy messages: a message to a lazy channel does not wake a held
# connect; it goes when the lazy timeout is over, when the connect's hold
# time is, or with the session's next message that is not lazy, on every
# transport and from the publisher location.  Times have generous
# margins: lazy timeout 1.5 s, nothing at 0.5 s, there by 3 s.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;
use Bayeux::WebSocket;
use Time::HiRes qw(time sleep);

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_timeout 10s;
        bayeux_lazy_channel /lazy/* /exact;
        bayeux_lazy_channel /deep/**;
        bayeux_max_lazy_timeout 1500ms;
    }
    location = /publish {
        bayeux_publisher /cometd;
    }
CONF

run_tests();

# a session subscribed to every channel, its first connect answered
sub subscriber {
    my (%o) = @_;
    my $c = Test::Nginx::Bayeux::Conversation::client(%o);
    $c->handshake;
    $c->subscribe('/**');
    $c->connect(advice => { timeout => 0 }, %{ $o{connect} || {} });
    return $c;
}

sub publisher {
    my $p = Test::Nginx::Bayeux::Conversation::client();
    $p->handshake;
    return $p;
}

# POST to the publisher location
sub server_publish {
    my ($body) = @_;
    my $server = Test::Nginx::Bayeux::Conversation::server();
    my $c = $server->client(path => '');
    my $res = $c->request(method => 'POST', uri => '/publish',
                          body => JSON::PP::encode_json($body),
                          content_type => 'application/json');
    return $res->status;
}

# the data of the deliveries of a callback-polling response
# ("/**/cb([...]);", whose comment Bayeux::HTTP's JSONP decoding skips not)
sub jsonp_data {
    my ($r) = @_;
    my ($text) = $r->{response}->body =~ /^\/\*\*\/cb\((.*)\);$/s
        or return [];
    return [ map { $_->{data} }
             grep { $_->{channel} !~ m{^/meta/} }
             @{ JSON::PP::decode_json($text) } ];
}

sub ws {
    return Bayeux::WebSocket->new(
        port => Test::Nginx::Bayeux::Conversation::server()->port, @_);
}

# a lazy message: a held connect that stays held at 0.5 s and is answered
# with it after the lazy timeout
sub lazy_held {
    my ($c, $h, $publish, $what) = @_;
    sleep 0.3;
    my $t0 = time;
    $publish->();
    sleep 0.5;
    ok(!$h->ready, "$what: not delivered before the lazy timeout");
    my $r = $c->connect_finish($h, timeout => 3);
    ok(!$r->{timed_out}, "$what: delivered by 3 s");
    cmp_ok(time - $t0, '>=', 1.2, "$what: after the lazy timeout");
    return $r;
}

__DATA__

=== TEST 1: a lazy message waits for the lazy timeout; the connect is answered with it
--- bayeux
my $c = main::subscriber();
my $p = main::publisher();
my $h = $c->connect_start;
my $r = main::lazy_held($c, $h, sub { $p->publish('/lazy/a', 'one') },
                        'long-polling');
is_deeply([ map { [ $_->{channel}, $_->{data} ] } @{ $r->{deliveries} } ],
          [ [ '/lazy/a', 'one' ] ], 'the lazy message');
ok($r->{reply}{successful}, 'the connect reply');
--- no_error_log
[error]
[alert]



=== TEST 2: a message that is not lazy takes the lazy ones with it, at once, in order
--- bayeux
my $c = main::subscriber();
my $p = main::publisher();
my $h = $c->connect_start;
sleep 0.3;
$p->publish('/lazy/a', 'one');
$p->publish('/exact', 'two');
sleep 0.5;
ok(!$h->ready, 'two lazy messages: still held');
my $t0 = time;
$p->publish('/now', 'three');
my $r = $c->connect_finish($h, timeout => 3);
cmp_ok(time - $t0, '<', 0.8, 'answered at once');
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ],
          [ 'one', 'two', 'three' ], 'all of them, in order');
--- no_error_log
[error]
[alert]



=== TEST 3: a hold time shorter than the lazy timeout answers with the lazy message
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 1s;
        bayeux_lazy_channel /lazy/**;
        bayeux_max_lazy_timeout 8s;
    }
--- bayeux
my $c = main::subscriber();
my $p = main::publisher();
my $t0 = time;
my $h = $c->connect_start;
sleep 0.3;
$p->publish('/lazy/a', 'one');
my $r = $c->connect_finish($h, timeout => 4);
ok(!$r->{timed_out}, 'answered');
cmp_ok(time - $t0, '>=', 0.9, 'at the hold time');
cmp_ok(time - $t0, '<', 3, 'long before the lazy timeout');
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 'one' ],
          'with the lazy message');
--- no_error_log
[error]
[alert]



=== TEST 4: channels that are not lazy are not affected: the patterns match as subscriptions do
--- bayeux
my $c = main::subscriber();
my $p = main::publisher();
for my $ch ('/now', '/lazy/a/b', '/exact/x', '/lazyx') {
    my $h = $c->connect_start;
    sleep 0.2;
    my $t0 = time;
    $p->publish($ch, 'x');
    my $r = $c->connect_finish($h, timeout => 3);
    cmp_ok(time - $t0, '<', 0.8, "$ch: delivered at once");
    is_deeply([ map { $_->{channel} } @{ $r->{deliveries} } ], [ $ch ],
              "$ch: the message");
}
my $h = $c->connect_start;
main::lazy_held($c, $h, sub { $p->publish('/deep/x/y', 'd') },
                '/deep/x/y (a deep pattern of a repeated directive)');
--- no_error_log
[error]
[alert]



=== TEST 5: a connect that comes while only lazy messages wait is held with them
--- bayeux
my $c = main::subscriber();
my $p = main::publisher();
my $t0 = time;
$p->publish('/lazy/a', 'one');
my $h = $c->connect_start;
sleep 0.5;
ok(!$h->ready, 'held');
my $r = $c->connect_finish($h, timeout => 3);
ok(!$r->{timed_out}, 'answered by 3 s');
cmp_ok(time - $t0, '>=', 1.2, 'when the lazy timeout is over');
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 'one' ],
          'with the lazy message');
$t0 = time;
$p->publish('/lazy/a', 'two');
sleep 1.8;
$r = $c->connect(timeout => 3);
cmp_ok(time - $t0, '<', 2.5, 'a lazy message already due: at once');
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 'two' ], 'it');
--- no_error_log
[error]
[alert]



=== TEST 6: callback-polling
--- bayeux
my $c = main::subscriber(connection_type => 'callback-polling',
                         connect => { _opts => { jsonp => 'cb' } });
my $p = main::publisher();
my $h = $c->connect_start(_opts => { jsonp => 'cb' });
my $r = main::lazy_held($c, $h, sub { $p->publish('/lazy/a', 'one') },
                        'callback-polling');
is_deeply(main::jsonp_data($r), [ 'one' ], 'the lazy message');
$h = $c->connect_start(_opts => { jsonp => 'cb' });
sleep 0.3;
$p->publish('/lazy/a', 'two');
$p->publish('/now', 'three');
$r = $c->connect_finish($h, timeout => 3);
cmp_ok($r->{elapsed}, '<', 1.2, 'with a message that is not lazy: at once');
is_deeply(main::jsonp_data($r), [ 'two', 'three' ], 'in order');
--- no_error_log
[error]
[alert]



=== TEST 7: websocket: a lazy message is pushed after the lazy timeout, or with one that is not lazy
--- bayeux
my $ws = main::ws();
ok($ws->handshake, 'upgraded') or diag($ws->error);
$ws->send_json([ { channel => '/meta/handshake', version => '1.0',
                   supportedConnectionTypes => ['websocket'], id => '1' } ]);
my $cid = $ws->recv_json->[0]{clientId};
$ws->send_json([ { channel => '/meta/subscribe', clientId => $cid,
                   subscription => '/**', id => '2' } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid,
                   connectionType => 'websocket', id => '3',
                   advice => { timeout => 0 } } ]);
$ws->recv_json;
$ws->send_json([ { channel => '/meta/connect', clientId => $cid,
                   connectionType => 'websocket', id => '4' } ]);
sleep 0.3;
my $p = main::publisher();
my $t0 = time;
$p->publish('/lazy/a', 'one');
ok(!$ws->recv_json(timeout => 0.5), 'nothing pushed before the lazy timeout');
my $m = $ws->recv_json(timeout => 2.5);
cmp_ok(time - $t0, '>=', 1.2, 'pushed after the lazy timeout');
is_deeply([ map { [ $_->{channel}, $_->{data} ] } @{ $m || [] } ],
          [ [ '/lazy/a', 'one' ] ], 'the lazy message, the connect held');
sleep 0.2;
$p->publish('/lazy/a', 'two');
ok(!$ws->recv_json(timeout => 0.5), 'the next lazy one waits too');
$t0 = time;
$p->publish('/now', 'three');
my @got;
while (@got < 2) {
    my $r = $ws->recv_json(timeout => 2) or last;
    push @got, @$r;
}
cmp_ok(time - $t0, '<', 0.8, 'with one that is not lazy: at once');
is_deeply([ map { $_->{data} } @got ], [ 'two', 'three' ], 'in order');
$ws->send_json([ { channel => '/meta/disconnect', clientId => $cid,
                   id => '5' } ]);
--- no_error_log
[error]
[alert]



=== TEST 8: the publisher location: a lazy channel, and a lazy message to one session
--- bayeux
my $c = main::subscriber();
my $h = $c->connect_start;
my $r = main::lazy_held($c, $h, sub {
    main::server_publish({ channel => '/lazy/s', data => 'srv' }) == 200
        or die 'publish';
}, 'published by the server');
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 'srv' ],
          'the lazy message');
$h = $c->connect_start;
$r = main::lazy_held($c, $h, sub {
    main::server_publish({ channel => '/exact', data => 'one',
                           clientId => $c->client_id }) == 200
        or die 'deliver';
}, 'to the session');
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 'one' ],
          'the lazy message to it');
$h = $c->connect_start;
sleep 0.3;
main::server_publish({ channel => '/now', data => 'now',
                       clientId => $c->client_id });
$r = $c->connect_finish($h, timeout => 3);
cmp_ok($r->{elapsed}, '<', 1.2, 'a channel that is not lazy: at once');
--- no_error_log
[error]
[alert]



=== TEST 9: bayeux_lazy_channel takes channels and patterns, not /meta or /service
--- config
    location /cometd {
        bayeux;
        bayeux_lazy_channel /a /meta/connect;
    }
--- must_die
--- error_log
"bayeux_lazy_channel" takes channel names or patterns (/a/b, /a/*, /a/**), not /meta or /service: "/meta/connect"



=== TEST 10: bayeux_max_lazy_timeout must be positive
--- config
    location /cometd {
        bayeux;
        bayeux_max_lazy_timeout 0;
    }
--- must_die
--- error_log
bayeux_max_lazy_timeout
