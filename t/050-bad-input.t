# Bad input: each row gets its exact reply, nothing of the batch is
# applied, and the worker stays healthy (the same worker answers a
# handshake after every row, nothing worse than "info" is logged).

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;

run_tests();

__DATA__

=== TEST 1: the table of bad requests
--- http_config
    client_max_body_size 1m;
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 1s;
    }
--- bayeux
my $c = client();
$c->handshake;
$c->subscribe('/watch');
my $cid = $c->client_id;

my @workers = $server->worker_pids;

my $deep = '[{"channel":"/watch","clientId":"' . $cid . '","data":'
           . ('[' x 10000) . (']' x 10000) . '}]';
my $many = '[' . join(',', ('{"channel":"/watch","clientId":"' . $cid
                            . '","data":1}') x 10000) . ']';
my $big = '[{"channel":"/watch","clientId":"' . $cid . '","data":"'
          . ('x' x 1100000) . '"}]';

# body, expected status, expected body (exact; undef: not checked)
my @table = (
  [ '[{"channel":',              400, "malformed JSON at byte 12: premature EOF\n" ],
  [ '[{"channel":"/a"},',        400, "malformed JSON at byte 18: premature EOF\n" ],
  [ "[{'channel':'/a'}]",        400, "malformed JSON at byte 3: invalid char in json text\n" ],
  [ '[{"channel":"/a",}]',       400, "malformed JSON at byte 18: invalid object key (must be a string)\n" ],
  [ '[{}] x',                    400, "malformed JSON at byte 6: trailing garbage\n" ],
  [ '{"channel":"/a"}{"channel":"/b"}', 400, "malformed JSON at byte 17: trailing garbage\n" ],
  [ '5',                         400, "body is not a message or an array of messages\n" ],
  [ '"hello"',                   400, "body is not a message or an array of messages\n" ],
  [ 'null',                      400, "body is not a message or an array of messages\n" ],
  [ '[1,2]',                     400, "batch element is not a message object\n" ],
  [ '[[{}]]',                    400, "batch element is not a message object\n" ],
  [ '[]',                        400, "no messages\n" ],
  [ '',                          400, "empty body\n" ],
  [ '[{"channel":5}]',           400, "\"channel\" must be a string\n" ],
  [ '[{"channel":"/a","clientId":["x"]}]', 400, "\"clientId\" must be a string\n" ],
  [ '[{"channel":"/a","id":{"a":1}}]', 400, "\"id\" must be a string or a number\n" ],
  [ '[{"channel":"/a","id":true}]', 400, "\"id\" must be a string or a number\n" ],
  [ '[{"channel":"/a","ext":"x"}]', 400, "\"ext\" must be an object\n" ],
  [ '[{"channel":"/a","advice":5}]', 400, "\"advice\" must be an object\n" ],
  [ '[{"channel":"/meta/subscribe","subscription":5}]', 400, "\"subscription\" must be a string or an array of strings\n" ],
  [ '[{"channel":"/meta/subscribe","subscription":[["/a"]]}]', 400, "\"subscription\" must be a string or an array of strings\n" ],
  [ '[{"channel":"/meta/handshake","supportedConnectionTypes":"long-polling"}]', 400, "\"supportedConnectionTypes\" must be an array of strings\n" ],
  [ '[{"channel":"/meta/handshake","version":1}]', 400, "\"version\" must be a string\n" ],
  [ '[{"channel":"/meta/connect","connectionType":{}}]', 400, "\"connectionType\" must be a string\n" ],
  [ "[{\"channel\":\"/a\xff\"}]", 400, "malformed JSON at byte 16: invalid bytes in UTF8 string\n" ],
  [ "[{\"channel\":\"/watch\",\"data\":\"\xc3\x28\"}]", 400, "malformed JSON at byte 31: invalid bytes in UTF8 string\n" ],
  [ $deep,                       400, "JSON nested too deeply\n" ],
  [ $many,                       400, "too many messages in the batch\n" ],
  [ $big,                        413, undef ],
  # valid JSON, bad messages: Bayeux errors, HTTP 200
  [ '{}',                        200, '[{"successful":false,"error":"400::channel_missing"}]' ],
  [ '[{"channel":"nope","clientId":"' . $cid . '","data":1}]', 200,
    '[{"channel":"nope","successful":false,"error":"405::channel_invalid","clientId":"' . $cid . '"}]' ],
  [ '[{"channel":"/' . ('a' x 1100) . '","clientId":"' . $cid . '","data":1}]', 200, undef ],
  [ '[{"channel":"/watch","clientId":"0000","data":1}]', 200,
    '[{"channel":"/watch","successful":false,"error":"402::session_unknown","clientId":"0000","advice":{"reconnect":"handshake","interval":0}}]' ],
  [ '[{"channel":"/meta/subscribe","clientId":"' . $cid . '","subscription":"/meta/**"}]', 200,
    '[{"channel":"/meta/subscribe","successful":false,"error":"403::subscription_invalid","clientId":"' . $cid . '","subscription":"/meta/**"}]' ],
  [ '[{"channel":"/meta/handshake/x","clientId":"' . $cid . '","data":1}]', 200,
    '[{"channel":"/meta/handshake/x","successful":false,"error":"403::publish_denied","clientId":"' . $cid . '"}]' ],
  # strings that are not Unicode: a surrogate escape without its pair
  # (anywhere: values, keys, data, ext), or raw bytes that are not UTF-8
  # (surrogates, overlong forms, past U+10FFFF); the byte is the escape's
  # backslash, or the first byte that cannot be part of a character
  [ '[{"channel":"/a","data":"\\udc00"}]', 400, "invalid unicode escape at byte 26: lone surrogate\n" ],
  [ '[{"channel":"/a","data":"\\ud800"}]', 400, "invalid unicode escape at byte 26: lone surrogate\n" ],
  [ '[{"channel":"/a","data":"x\\uD800\\u0041"}]', 400, "invalid unicode escape at byte 27: lone surrogate\n" ],
  [ '[{"channel":"/a","data":"\\ud800\\ud800"}]', 400, "invalid unicode escape at byte 26: lone surrogate\n" ],
  [ '[{"channel":"/a","data":"\\ud800\\\\udc00"}]', 400, "invalid unicode escape at byte 26: lone surrogate\n" ],
  [ '[{"channel":"/a","data":"\\ud800"', 400, "invalid unicode escape at byte 26: lone surrogate\n" ],
  [ '[{"channel":"/a","data":{"\\uDFFF":1}}]', 400, "invalid unicode escape at byte 27: lone surrogate\n" ],
  [ '[{"channel":"/a","ext":{"k":["\\ud83d"]}}]', 400, "invalid unicode escape at byte 31: lone surrogate\n" ],
  [ '[{"channel":"/a\\udc00"}]', 400, "invalid unicode escape at byte 16: lone surrogate\n" ],
  [ '[{"clientId":"\\udc00","channel":"/a"}]', 400, "invalid unicode escape at byte 15: lone surrogate\n" ],
  [ '[{"channel":"/watch","clientId":"' . $cid . '","data":1},{"channel":"/watch","clientId":"' . $cid . '","data":"\\udc00"}]', 400, undef ],
  [ "[{\"channel\":\"/a\",\"data\":\"\xed\xa0\x80\"}]", 400, "malformed JSON at byte 27: invalid bytes in UTF8 string\n" ],
  [ "[{\"channel\":\"/a\",\"data\":\"\xc0\xaf\"}]", 400, "malformed JSON at byte 26: invalid bytes in UTF8 string\n" ],
  [ "[{\"channel\":\"/a\",\"data\":\"\xe0\x80\xaf\"}]", 400, "malformed JSON at byte 27: invalid bytes in UTF8 string\n" ],
  [ "[{\"channel\":\"/a\",\"data\":\"\xf0\x80\x80\xaf\"}]", 400, "malformed JSON at byte 27: invalid bytes in UTF8 string\n" ],
  [ "[{\"channel\":\"/a\",\"data\":\"\xf4\x90\x80\x80\"}]", 400, "malformed JSON at byte 27: invalid bytes in UTF8 string\n" ],
  [ "[{\"channel\":\"/a\",\"data\":\"\xf5\x80\x80\x80\"}]", 400, "malformed JSON at byte 26: invalid bytes in UTF8 string\n" ],
  [ "[{\"channel\":\"/a\",\"k\xed\xbf\xbf\":1}]", 400, "malformed JSON at byte 21: invalid bytes in UTF8 string\n" ],
);

my $row = 0;
for my $t (@table) {
    my ($body, $status, $expect) = @$t;
    $row++;
    my $label = length $body > 40 ? substr($body, 0, 40) . '...' : $body;
    my $res = $c->post('/', undef, raw_body => $body);
    is($res->status, $status, "row $row: status for $label");
    is($res->body, $expect, "row $row: body for $label") if defined $expect;

    my $h = client()->handshake;
    ok($h && $h->{successful}, "row $row: the worker still answers");
}

like($c->post('/', undef, raw_body => $table[31][0])->body,
     qr/"error":"405::channel_invalid"/, 'a channel name over 1024 bytes');

# nothing of a refused batch was applied
my $r = $c->connect(advice => { timeout => 0 });
ok($r->{reply}{successful}, 'the session survived the table');
is(scalar @{ $r->{deliveries} }, 0, 'no message of a refused batch was delivered');

is_deeply([ $server->worker_pids ], \@workers, 'the same worker process throughout');
--- error_log
bayeux: bad request: JSON nested too deeply
bayeux: bad request: too many messages in the batch
bayeux: bad request: "channel" must be a string
bayeux: bad request: invalid unicode escape at byte 26: lone surrogate
client intended to send too large body
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 2: surrogate pairs, non-ASCII text and an escaped backslash before "u" are delivered as the same code points, in valid UTF-8
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 1s;
    }
--- bayeux
my $utf8 = qr/\A(?:[\x00-\x7f]|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]
               |[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]
               |\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}
               |\xf4[\x80-\x8f][\x80-\xbf]{2})*\z/x;
my $sub = client();
$sub->handshake;
$sub->subscribe('/u');
my $pub = client();
$pub->handshake;
my $body = '[{"channel":"/u","clientId":"' . $pub->client_id . '","id":"u1",'
         . '"data":{"t":"\ud83d\ude00 \uD83D\uDE00 \u00e9 \\\\udc00 \udbff\udfff '
         . "\xf0\x9f\x98\x80 \xed\x9f\xbf \xee\x80\x80 \xf4\x8f\xbf\xbf"
         . '","\ud83d\ude00":1},"ext":{"e":"\ud800\udc00"}}]';
my $res = $pub->post('/', undef, raw_body => $body);
is($res->status, 200, 'published');
like($res->body, qr/"successful":true/, 'successfully');
my $r = $sub->connect(advice => { timeout => 0 });
my $raw = $r->{response}->body;
like($raw, $utf8, 'the delivery is valid UTF-8');
my ($d) = grep { $_->{channel} eq '/u' } @{ $r->{deliveries} };
is_deeply($d && $d->{data},
          { t => "\x{1F600} \x{1F600} \x{E9} \\udc00 \x{10FFFF} "
                 . "\x{1F600} \x{D7FF} \x{E000} \x{10FFFF}",
            "\x{1F600}" => 1 },
          'data: exactly the code points sent');
--- no_error_log
[error]
