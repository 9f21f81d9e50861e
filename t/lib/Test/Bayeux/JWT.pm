package Test::Bayeux::JWT;

# Makes JSON Web Tokens for the tests of bayeux_jwt_key: HS256 in Perl
# (Digest::SHA), RS256 and ES256 with the openssl command line, keys made
# at test time. Core Perl only.
#
#   my $t = jwt_hs256($secret, { sub => 'alice', exp => time + 60 });
#   my ($priv, $pub) = jwt_keypair($dir, 'ES256');    # PEM files in $dir
#   my $t = jwt_sign('ES256', $priv, { sub => 'alice' });
#   my $t = jwt_sign('HS256', $secret, $claims,
#                    header => { alg => 'none' },     # replaces the header
#                    payload => '{"sub":1}');         # raw payload text
#   jwt_openssl_verify('ES256', $pub, $t)             # 1 if openssl agrees

use strict;
use warnings;

use Exporter 'import';
use Digest::SHA qw(hmac_sha256);
use File::Temp qw(tempdir);
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);

our @EXPORT = qw(jwt_hs256 jwt_keypair jwt_sign jwt_openssl_verify
                 b64url b64url_decode);

my $JSON = JSON::PP->new->canonical->utf8;

sub b64url {
    my ($bytes) = @_;
    my $s = encode_base64($bytes, '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

sub b64url_decode {
    my ($s) = @_;
    $s =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return decode_base64($s);
}

sub jwt_hs256 {
    my ($secret, $claims, %opt) = @_;
    return jwt_sign('HS256', $secret, $claims, %opt);
}

# (private_path, public_path): PEM files, the public one as
# "openssl pkey -pubout" writes it (what bayeux_jwt_key reads)
sub jwt_keypair {
    my ($dir, $alg, %opt) = @_;
    my $name = $opt{name} // lc $alg;
    my ($priv, $pub) = ("$dir/$name.key.pem", "$dir/$name.pub.pem");
    my @gen = $alg eq 'RS256'
        ? ('-algorithm', 'RSA', '-pkeyopt',
           'rsa_keygen_bits:' . ($opt{bits} // 2048))
        : $alg eq 'ES256'
        ? ('-algorithm', 'EC', '-pkeyopt',
           'ec_paramgen_curve:' . ($opt{curve} // 'P-256'))
        : die "jwt_keypair: no keys for $alg\n";
    _openssl('genpkey', @gen, '-out', $priv);
    _openssl('pkey', '-in', $priv, '-pubout', '-out', $pub);
    return ($priv, $pub);
}

# $key: the secret for HS256, a private key file for RS256 and ES256.
# Options: header => {...} (the whole header), payload => 'text' (instead
# of the claims), alg_header => 'X' (only "alg" changed), signature =>
# bytes (instead of the real one).
sub jwt_sign {
    my ($alg, $key, $claims, %opt) = @_;
    my $header = $opt{header}
        // { alg => $opt{alg_header} // $alg, typ => 'JWT' };
    my $h = ref $header ? $JSON->encode($header) : $header;
    my $p = defined $opt{payload} ? $opt{payload} : $JSON->encode($claims);
    my $input = b64url($h) . '.' . b64url($p);
    my $sig = exists $opt{signature} ? $opt{signature}
            : $alg eq 'HS256' ? hmac_sha256($input, $key)
            : $alg eq 'RS256' ? _openssl_sign($key, $input)
            : $alg eq 'ES256' ? _der_to_raw(_openssl_sign($key, $input))
            : die "jwt_sign: unknown algorithm $alg\n";
    return "$input." . b64url($sig);
}

# checks a token's signature with openssl: the helper's self-test
sub jwt_openssl_verify {
    my ($alg, $pub, $token) = @_;
    my ($h, $p, $s) = split /\./, $token, 3;
    my $sig = b64url_decode($s);
    $sig = _raw_to_der($sig) if $alg eq 'ES256';
    my $dir = tempdir(CLEANUP => 1);
    _write("$dir/in", "$h.$p");
    _write("$dir/sig", $sig);
    my $out = qx{openssl dgst -sha256 -verify '$pub' \\
                 -signature '$dir/sig' '$dir/in' 2>&1};
    return $? == 0 && $out =~ /Verified OK/ ? 1 : 0;
}

sub _openssl {
    my @cmd = ('openssl', @_);
    my $out = qx{@{[ join ' ', map { "'$_'" } @cmd ]} 2>&1};
    die "@cmd: $out\n" if $?;
    return $out;
}

sub _openssl_sign {
    my ($priv, $input) = @_;
    my $dir = tempdir(CLEANUP => 1);
    _write("$dir/in", $input);
    _openssl('dgst', '-sha256', '-sign', $priv, '-out', "$dir/sig",
             "$dir/in");
    open my $fh, '<:raw', "$dir/sig" or die "$dir/sig: $!\n";
    local $/;
    return scalar <$fh>;
}

sub _write {
    my ($file, $bytes) = @_;
    open my $fh, '>:raw', $file or die "$file: $!\n";
    print $fh $bytes;
    close $fh or die "$file: $!\n";
}

# ECDSA-Sig-Value (SEQUENCE { INTEGER r, INTEGER s }) -> r || s, 32 each
sub _der_to_raw {
    my ($der) = @_;
    my @b = unpack 'C*', $der;
    die "not an ECDSA signature\n" unless $b[0] == 0x30;
    my $i = 2;
    my $raw = '';
    for (1 .. 2) {
        die "not an ECDSA signature\n" unless $b[$i] == 0x02;
        my $len = $b[$i + 1];
        my $n = pack 'C*', @b[$i + 2 .. $i + 1 + $len];
        $n =~ s/^\x00+//;
        $raw .= ("\x00" x (32 - length $n)) . $n;
        $i += 2 + $len;
    }
    return $raw;
}

sub _raw_to_der {
    my ($raw) = @_;
    my $body = '';
    for my $half (substr($raw, 0, 32), substr($raw, 32, 32)) {
        (my $n = $half) =~ s/^\x00+//;
        $n = "\x00" if $n eq '';
        $n = "\x00$n" if ord($n) & 0x80;
        $body .= pack('CC', 0x02, length $n) . $n;
    }
    return pack('CC', 0x30, length $body) . $body;
}

1;
