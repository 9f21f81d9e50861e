# Subscriptions, wildcards, publishing, /service channels, batches in order.

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

run_tests();

__DATA__

=== TEST 1: subscribe reply, exactly; a second client's publish is delivered
--- bayeux
my $a = client();
$a->handshake;
my $s = $a->subscribe('/news', { id => 's1' });
is_deeply($s, { id => 's1', channel => '/meta/subscribe',
                successful => JSON::PP::true, clientId => $a->client_id,
                subscription => '/news' }, 'subscribe reply');
$a->connect;
my $b = client();
$b->handshake;
my $p = $b->publish('/news', { n => 1 }, id => 'p1');
is_deeply($p, { id => 'p1', channel => '/news',
                successful => JSON::PP::true }, 'publish reply');
my $got = $a->wait_deliveries(count => 1);
is_deeply($got, [ { channel => '/news', data => { n => 1 }, id => 'p1' } ],
          'delivered once, without the publisher clientId');



=== TEST 2: * matches one segment, ** any depth
--- bayeux
my $one = client();  $one->handshake;  $one->subscribe('/a/*');
my $deep = client(); $deep->handshake; $deep->subscribe('/a/**');
my $root = client(); $root->handshake; $root->subscribe('/**');
$_->connect for $one, $deep, $root;
my $pub = client(); $pub->handshake;
$pub->publish($_, $_) for '/a', '/a/b', '/a/b/c', '/b';
is_deeply([ map { $_->{data} } @{ $one->wait_deliveries(count => 1) } ],
          ['/a/b'], '/a/* got /a/b only');
is_deeply([ map { $_->{data} } @{ $deep->wait_deliveries(count => 2) } ],
          ['/a/b', '/a/b/c'], '/a/** got /a/b and /a/b/c');
is_deeply([ map { $_->{data} } @{ $root->wait_deliveries(count => 4) } ],
          ['/a', '/a/b', '/a/b/c', '/b'], '/** got everything, in order');



=== TEST 3: a session subscribed by several matching patterns gets a message once
--- bayeux
my $c = client();
$c->handshake;
my @r = $c->subscribe('/x/y', '/x/*', '/x/**', '/**');
ok($_->{successful}, "subscribed $_->{subscription}") for @r;
$c->connect;
my $pub = client(); $pub->handshake;
$pub->publish('/x/y', 'once');
my $got = $c->wait_deliveries(count => 1);
sleep 0.3;
my $more = $c->connect(advice => { timeout => 0 });
is(scalar @$got + scalar @{ $more->{deliveries} }, 1, 'one copy');



=== TEST 4: [subscribe, publish] in one batch delivers to the new subscriber
--- bayeux
my $c = client();
$c->handshake;
$c->connect;
my $res = $c->post('/', [
    { channel => '/meta/subscribe', clientId => $c->client_id,
      subscription => '/batch', id => '1' },
    { channel => '/batch', clientId => $c->client_id, data => 'mine',
      id => '2' },
]);
is_deeply([ map { $_->{id} } @{ $res->{messages} } ], ['1', '2'],
          'replies in order');
my $r = $c->connect(timeout => 5);
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], ['mine'],
          'delivered to itself, subscribed first');



=== TEST 5: subscription as an array, echoed as sent
--- bayeux
my $c = client();
$c->handshake;
my $res = $c->post('/', [ { channel => '/meta/subscribe',
                            clientId => $c->client_id,
                            subscription => ['/a', '/b/**'] } ]);
is_deeply($res->{messages}[0]{subscription}, ['/a', '/b/**'], 'echoed');
ok($res->{messages}[0]{successful}, 'successful');



=== TEST 6: unsubscribe stops delivery; unsubscribing twice succeeds
--- bayeux
my $c = client();
$c->handshake;
$c->subscribe('/u');
$c->connect;
my $pub = client(); $pub->handshake;
$pub->publish('/u', 1);
is(scalar @{ $c->wait_deliveries(count => 1) }, 1, 'delivered while subscribed');
my $u = $c->unsubscribe('/u', { id => 'u1' });
is_deeply($u, { id => 'u1', channel => '/meta/unsubscribe',
                successful => JSON::PP::true, clientId => $c->client_id,
                subscription => '/u' }, 'unsubscribe reply');
ok($c->unsubscribe('/u')->{successful}, 'again: still successful');
$pub->publish('/u', 2);
my $r = $c->connect(advice => { timeout => 500 }, timeout => 3);
is(scalar @{ $r->{deliveries} }, 0, 'nothing after unsubscribe');



=== TEST 7: /service messages are acknowledged, never broadcast
--- bayeux
my $c = client();
$c->handshake;
ok($c->subscribe('/service/echo')->{successful}, 'subscribing is allowed');
ok($c->subscribe('/service/**')->{successful}, 'with wildcards too');
$c->connect;
my $p = $c->publish('/service/echo', { q => 1 }, id => 's');
is_deeply($p, { id => 's', channel => '/service/echo',
                successful => JSON::PP::true }, 'acknowledged');
my $r = $c->connect(advice => { timeout => 500 }, timeout => 3);
is(scalar @{ $r->{deliveries} }, 0, 'not delivered to subscribers');



=== TEST 8: bayeux_broadcast_to_publisher off
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 1s;
        bayeux_broadcast_to_publisher off;
    }
--- bayeux
my $a = client(); $a->handshake; $a->subscribe('/t'); $a->connect;
my $b = client(); $b->handshake; $b->subscribe('/t'); $b->connect;
$a->publish('/t', 'from a');
is_deeply([ map { $_->{data} } @{ $b->wait_deliveries(count => 1) } ],
          ['from a'], 'the other subscriber gets it');
my $r = $a->connect(timeout => 3);
is(scalar @{ $r->{deliveries} }, 0, 'the publisher does not');



=== TEST 9: id and ext of a publish reach the subscriber, data as sent
--- bayeux
my $a = client(); $a->handshake; $a->subscribe('/e'); $a->connect;
my $b = client(); $b->handshake;
my $data = { s => "caf\x{e9} \x{2603}", n => [1, 2.5, -3e2], t => JSON::PP::true,
             z => undef, o => { deep => [ [ [] ] ] } };
$b->publish('/e', $data, id => 77, ext => { trace => 'abc' });
my $got = $a->wait_deliveries(count => 1);
is_deeply($got->[0], { channel => '/e', data => $data, id => 77,
                       ext => { trace => 'abc' } }, 'round trip');



=== TEST 10: subscribe errors
--- bayeux
my $c = client();
$c->handshake;
my $cid = $c->client_id;
my $res = $c->post('/', [
    { channel => '/meta/subscribe', clientId => $cid, id => '1' },
    { channel => '/meta/subscribe', clientId => $cid, id => '2',
      subscription => '/meta/connect' },
    { channel => '/meta/subscribe', clientId => $cid, id => '3',
      subscription => 'no-slash' },
    { channel => '/meta/subscribe', clientId => $cid, id => '4',
      subscription => '/a/**/b' },
    { channel => '/meta/subscribe', clientId => $cid, id => '5',
      subscription => ['/ok', '/bad//x'] },
    { channel => '/meta/unsubscribe', clientId => $cid, id => '6' },
    { channel => '/meta/subscribe', clientId => 'nobody', id => '7',
      subscription => '/x' },
]);
my %e = map { $_->{id} => $_->{error} } @{ $res->{messages} };
is_deeply(\%e, {
    1 => '403::subscription_missing',
    2 => '403::subscription_invalid',
    3 => '405::channel_invalid',
    4 => '405::channel_invalid',
    5 => '405::channel_invalid',
    6 => '403::subscription_missing',
    7 => '402::session_unknown',
}, 'errors as CometD writes them');
is_deeply($res->{messages}[6]{advice}, { reconnect => 'handshake',
                                         interval => 0 },
          'unknown session: handshake advice');
is($res->{messages}[1]{subscription}, '/meta/connect', 'subscription echoed');



=== TEST 11: publish errors
--- bayeux
my $c = client();
$c->handshake;
my $cid = $c->client_id;
my $res = $c->post('/', [
    { clientId => $cid, data => 1, id => '1' },
    { channel => '/meta/foo', clientId => $cid, data => 1, id => '2' },
    { channel => '/a/*', clientId => $cid, data => 1, id => '3' },
    { channel => '/a/**', clientId => $cid, data => 1, id => '4' },
    { channel => '/a b', clientId => $cid, data => 1, id => '5' },
    { channel => '/a', clientId => $cid, id => '6' },
    { channel => '/a', clientId => 'nobody', data => 1, id => '7' },
    { channel => '/a', data => 1, id => '8' },
    { channel => '/a/', clientId => $cid, data => 1, id => '9' },
    { channel => '/', clientId => $cid, data => 1, id => '10' },
]);
my %e = map { $_->{id} => $_->{error} } @{ $res->{messages} };
is_deeply(\%e, {
    1 => '400::channel_missing',
    2 => '403::publish_denied',
    3 => '405::channel_invalid',
    4 => '405::channel_invalid',
    5 => '405::channel_invalid',
    6 => '400::data_missing',
    7 => '402::session_unknown',
    8 => '402::session_unknown',
    9 => '405::channel_invalid',
    10 => '405::channel_invalid',
}, 'errors as CometD writes them');
ok(!$_->{successful}, "message $_->{id} unsuccessful") for @{ $res->{messages} };



=== TEST 12: data null is data
--- bayeux
my $a = client(); $a->handshake; $a->subscribe('/n'); $a->connect;
my $p = $a->post('/', [ { channel => '/n', clientId => $a->client_id,
                          data => undef, id => 'n' } ]);
ok($p->{messages}[0]{successful}, 'published');
my $got = $a->wait_deliveries(count => 1);
ok(exists $got->[0]{data} && !defined $got->[0]{data}, 'null delivered');



=== TEST 13: a chunked body in pieces: the buffer that ends it has no memory (nothing copied from it)
--- bayeux
my $c = client();
my $b = '[{"channel":"/meta/handshake","version":"1.0","id":"h"}]';
my $r = $c->post('/handshake', undef, raw_body => $b,
                 chunked => [ substr($b, 0, 5), substr($b, 5) ],
                 chunk_delay => 0.2);
is($r->status, 200, 'handshake: 200');
ok($r->json && $r->json->[0]{successful}, 'successful');
is($r->json && $r->json->[0]{id}, 'h', 'the whole body was read');
my $cid = $r->json && $r->json->[0]{clientId};
my $s = client();
$s->handshake;
$s->subscribe('/ch');
$b = '[{"channel":"/ch","clientId":"' . $cid . '","data":"chunked"}]';
$r = $c->post('/', undef, raw_body => $b, chunked => [ $b ]);
is($r->status, 200, 'publish in one chunk: 200');
$r = $s->connect(advice => { timeout => 0 });
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [ 'chunked' ],
          'delivered');
--- no_error_log
[error]
