# A page reload with CometD's ReloadExtension, as the server sees it
# without a browser (t/browser/reload.test.js has the browser): the old
# page's held /meta/connect goes away with the page (or is still held when
# the new page comes), the new page sends no handshake but a /meta/connect
# with the same clientId and the same BAYEUX_BROWSER cookie (advice.timeout
# 0, as the client's first connect), then subscribes again to what it was
# subscribed to.  It gets what was published meanwhile, at once and
# exactly once, and the session goes on.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_timeout 3s;
    }
CONF

run_tests();

__DATA__

=== TEST 1: the old page's connect went away: the reloaded page gets what was published meanwhile, once
--- bayeux
my $old = client();
$old->handshake;
$old->subscribe('/r');
$old->connect;
my $pub = client();
$pub->handshake;
my $h = $old->connect_start;
sleep 0.3;
$pub->publish('/r', 1);
my $r = $old->connect_finish($h, timeout => 5);
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [1], 'before');

# the page unloads: its held connect is aborted
$h = $old->connect_start;
sleep 0.3;
$old->abandon($h);
ok($server->wait_for_log(qr/client prematurely closed connection/,
                         timeout => 5), 'the server saw it go');
$pub->publish('/r', $_) for 2, 3;

# the reloaded page: a new client, the same browser, the saved clientId
my $new = client(cookie_jar => $old->cookie_jar);
$new->client_id($old->client_id);
$r = $new->connect(advice => { timeout => 0 }, timeout => 5);
ok($r->{reply}{successful}, 'the connect is successful');
cmp_ok($r->{elapsed}, '<', 1, 'at once');
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [2, 3],
          'what was published meanwhile');
my $s = $new->subscribe('/r');
ok($s->{successful}, 'subscribing again is successful');

$pub->publish('/r', 4);
$r = $new->connect(timeout => 5);
cmp_ok($r->{elapsed}, '<', 1, 'the next one at once');
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [4],
          'once, not once per subscribe');
$h = $new->connect_start;
sleep 0.3;
$pub->publish('/r', 5);
$r = $new->connect_finish($h, timeout => 5);
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [5],
          'and the session goes on');
--- no_error_log
[alert]
[crit]



=== TEST 2: the old page's connect is still held when the reloaded page connects
--- bayeux
my $old = client();
$old->handshake;
$old->subscribe('/r');
$old->connect;
my $pub = client();
$pub->handshake;
my $h = $old->connect_start;
sleep 0.3;

# the server has not seen the old page go: the new page's connect answers
# the old one, and is answered at once (advice.timeout 0)
my $new = client(cookie_jar => $old->cookie_jar);
$new->client_id($old->client_id);
my $r = $new->connect(advice => { timeout => 0 }, timeout => 5);
ok($r->{reply}{successful}, 'the connect is successful');
cmp_ok($r->{elapsed}, '<', 1, 'at once');
my $o = $old->connect_finish($h, timeout => 5);
ok($o->{reply}{successful}, 'the old connect is answered');
cmp_ok($o->{elapsed}, '<', 1, 'at once');
is_deeply($o->{deliveries}, [], 'with nothing');
ok($new->subscribe('/r')->{successful}, 'subscribing again');

$h = $new->connect_start;
sleep 0.3;
$pub->publish('/r', 1);
$r = $new->connect_finish($h, timeout => 5);
is_deeply([ map { $_->{data} } @{ $r->{deliveries} } ], [1],
          'the reloaded page gets what comes, once');
--- no_error_log
[alert]
[crit]
