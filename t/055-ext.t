# ext is free-form: whatever an application or an extension puts in it
# is echoed byte for byte where it is echoed (deliveries) and changes no
# reply, but for what the server's extensions answer (timesync; the
# handshake of a client that asks for acks: t/057-ack.t).  The parser decodes what CometD's ack and timesync extensions
# send (ext.ack: true/false or {"enabled":..,"batch":N} in a handshake,
# a batch number in a /meta/connect; ext.timesync: {"tc","l","o"}); the
# debug log shows what it decoded.  A value of another type is not
# decoded and fails nothing.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;

run_tests();

__DATA__

=== TEST 1: the ack and timesync extensions' ext changes no reply, but for the timesync of /meta replies and the handshake's ext.ack
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 1s;
    }
--- bayeux
# the raw reply to a raw body, with the session's clientId as "CID"
sub raw {
    my ($c, $suffix, $body) = @_;
    my $cid = $c->client_id // '';
    $body =~ s/CID/$cid/g;
    my $res = $c->post($suffix, undef, raw_body => $body);
    my $text = $res->body;
    if (!$c->client_id && $text =~ /"clientId":"([^"]+)"/) {
        $c->client_id($1);
        $cid = $1;
    }
    $text =~ s/\Q$cid\E/CID/g if length $cid;
    return ($res->status, $text);
}

my $ts = '"timesync":{"tc":1732900000123,"l":12,"o":-34}';
my @pairs = (
    # what a step sends without ext, with the extensions' ext
    [ '/handshake',
      '[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"1"%s}]',
      ',"ext":{"ack":true,' . $ts . '}' ],
    [ '/connect',
      '[{"channel":"/meta/connect","clientId":"CID","connectionType":"long-polling","advice":{"timeout":0},"id":"2"%s}]',
      ',"ext":{' . $ts . '}' ],
    [ '/',
      '[{"channel":"/meta/subscribe","clientId":"CID","subscription":"/e","id":"3"%s}]',
      ',"ext":{"ack":false}' ],
    [ '/connect',
      '[{"channel":"/meta/connect","clientId":"CID","connectionType":"long-polling","advice":{"timeout":0},"id":"4"%s}]',
      ',"ext":{"ack":7,' . $ts . '}' ],
    [ '/',
      '[{"channel":"/e","clientId":"CID","data":{"n":1},"id":"5"%s}]',
      ',"ext":{"ack":{"enabled":true,"batch":3},"app":[1,{"k":"v"}]}' ],
    [ '/',
      '[{"channel":"/meta/unsubscribe","clientId":"CID","subscription":"/e","id":"6"%s}]',
      ',"ext":{"ack":"yes","timesync":[1,2,3]}' ],
    [ '/disconnect',
      '[{"channel":"/meta/disconnect","clientId":"CID","id":"7"%s}]',
      ',"ext":{"ack":{"enabled":"no","batch":"x"},"timesync":{"tc":"now","l":1.5,"o":null}}' ],
);

my $plain = client();
my $extended = client();
for my $p (@pairs) {
    my ($suffix, $body, $ext) = @$p;
    my ($s1, $r1) = raw($plain, $suffix, sprintf($body, ''));
    my ($s2, $r2) = raw($extended, $suffix, sprintf($body, $ext));
    my $label = (split /"/, $body)[3];
    # timesync {tc, l, o} in a /meta message: the reply tells the time
    # (t/056-server-ext.t); that is all that differs
    my $synced = $label =~ m{^/meta/} && index($ext, $ts) >= 0;
    if ($synced) {
        # a handshake that asks for acks is told they are on
        my $acks = $label eq '/meta/handshake' ? ',"ack":true' : '';
        ok($r2 =~ s/,"ext":\{"timesync":\{"tc":1732900000123,"ts":\d+,"p":\d+,"a":-?\d+\}\Q$acks\E\}//,
           "$label: timesync in the reply" . ($acks ? ', and ack' : ''));
    }
    is($s2, $s1, "$label: the same status with ext");
    is($r2, $r1, "$label: the same reply with ext" . ($synced ? ' but timesync' : ''));
    like($r2, qr/"successful":true/, "$label: successful");
}
--- error_log
bayeux message: ext.ack is true
bayeux message: ext.ack is false
bayeux message: ext.ack is 7
bayeux message: ext.ack.enabled is true
bayeux message: ext.ack.batch is 3
bayeux message: ext.timesync.tc is 1732900000123
bayeux message: ext.timesync.l is 12
bayeux message: ext.timesync.o is -34
bayeux message: advice.timeout is 0
--- no_error_log eval
[ '[error]', qr/ext\.ack\S* is "/, qr/ext\.timesync\S* is (?:"|1\.5|null)/,
  qr/ext\.ack\S* is [[{]/, qr/ext\.timesync is/ ]



=== TEST 2: ext reaches subscribers byte for byte, whatever its members' types
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 1s;
    }
--- bayeux
my @exts = (
    '{}',
    '{"ack":true}',
    '{"ack":12345}',
    '{"ack":{"enabled":true,"batch":0}}',
    '{"timesync":{"tc":1732900000123,"l":0,"o":0}}',
    '{"ack":"12345","timesync":"now"}',
    '{"ack":null,"timesync":null}',
    '{"ack":[22222],"timesync":[{"tc":33333}]}',
    '{"ack":{"":44444,"enabled":1,"batch":true}}',
    '{"x":{"ack":55555,"timesync":{"tc":66666}}}',
    '{"ack":1.5e3,"timesync":{"tc":-0,"l":1E2,"o":12.0}}',
    '{"ack":99999999999999999999,"timesync":{"tc":-9223372036854775808}}',
    '{"ack":9223372036854775807,"timesync":{"tc":-9223372036854775807}}',
    '{"timesync":{"tc":1,"l":2,"o":3,"tc":4},"ack":false,"ack":5}',
    '{"nested":{"a":[1,[2,{"b":null}]],"s":"\u00e9"}}',
);
my $sub = client();
$sub->handshake;
$sub->subscribe('/e');
$sub->connect;
my $pub = client();
$pub->handshake;
my $n = 0;
for my $ext (@exts) {
    $n++;
    my $body = '[{"channel":"/e","clientId":"' . $pub->client_id
             . '","data":' . $n . ',"id":"p' . $n . '","ext":' . $ext . '}]';
    (my $plain = $body) =~ s/,"ext":.*\}\]\z/}]/;
    my $usual = $pub->post('/', undef, raw_body => $plain);
    my $res = $pub->post('/', undef, raw_body => $body);
    is($res->status, 200, "ext $n: published");
    is($res->body, $usual->body, "ext $n: the reply of a publish without ext");
    like($res->body, qr/"successful":true/, "ext $n: successful");
    my $r = $sub->connect(advice => { timeout => 0 });
    my $raw = $r->{response}->body;
    (my $sent = $ext) =~ s/\\u00e9/\xc3\xa9/;
    ok(index($raw, '"data":' . $n . ',"id":"p' . $n . '","ext":' . $sent . '}') >= 0,
       "ext $n: delivered as sent") or diag $raw;
}
--- error_log
bayeux message: ext.ack is true
bayeux message: ext.ack is 12345
bayeux message: ext.ack.enabled is true
bayeux message: ext.ack.batch is 0
bayeux message: ext.timesync.tc is 1732900000123
bayeux message: ext.timesync.tc is -0
bayeux message: ext.ack is 9223372036854775807
bayeux message: ext.timesync.tc is -9223372036854775807
bayeux message: ext.timesync.tc is 4
bayeux message: ext.ack is 5
--- no_error_log eval
[ '[error]', 'is 22222', 'is 33333', 'is 44444', 'is 55555', 'is 66666',
  qr/ext\.ack\S* is (?:"|1\.5e3|99999999999999999999|1\b|null)/,
  qr/ext\.timesync\S* is (?:"|1E2|12\.0|-9223372036854775808|null)/ ]
