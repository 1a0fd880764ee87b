<?php
// Verify a Print.one webhook signature (plain PHP, no extensions beyond core).
//
// Library use:
//   [$outcome, $index] = printone_verify($secrets, file_get_contents('php://input'), $headerPairs);
//
// Command line:
//   php verify.php SECRET BODY_FILE SIGNATURE   # exit 0 silently when valid, else 1
//   php verify.php --vectors FILE               # run the test vector file
//
// See docs/VERIFYING.md for the rules implemented here.

declare(strict_types=1);

const PRINTONE_SIGNATURE_HEADERS = ['x-webhook-hmac-sha256', 'x-printone-hmac-sha256'];

/**
 * @param string[] $secrets tried in order (several during a rotation)
 * @param string   $body    the raw request body, exactly as received
 * @param array    $headers list of [name, value] pairs, repeats included.
 *                          From getallheaders(): array_map(null, array_keys($h), $h).
 *                          PHP folds repeated headers into "a, b"; such a value
 *                          is malformed, so the check still fails closed.
 * @return array [outcome, index of the matching secret or null]
 */
function printone_verify(array $secrets, string $body, array $headers): array
{
    // Rule 1: an empty secret (or none at all) is a configuration error.
    if (count($secrets) === 0 || in_array('', $secrets, true)) {
        return ['empty_secret', null];
    }

    // Rule 2: collect every value of both names, trimmed of spaces and tabs.
    $values = [];
    foreach ($headers as [$name, $value]) {
        if (in_array(strtolower($name), PRINTONE_SIGNATURE_HEADERS, true)) {
            $values[] = trim($value, " \t");
        }
    }
    if (count($values) === 0) {
        return ['missing', null];
    }
    foreach ($values as $v) {
        if ($v !== $values[0]) {
            return ['ambiguous', null];
        }
    }
    $value = $values[0];

    // Rule 3: exactly 44 characters of canonical, padded, standard base64
    // that decode to 32 bytes. Re-encoding and comparing rejects URL-safe
    // characters, missing padding, whitespace and non-zero spare bits.
    $mac = base64_decode($value, true);
    if (strlen($value) !== 44 || $mac === false || strlen($mac) !== 32 || base64_encode($mac) !== $value) {
        return ['malformed', null];
    }

    // Rule 4: HMAC-SHA256 over the raw body with each secret (its bytes, used
    // as given), compared in constant time.
    foreach (array_values($secrets) as $i => $secret) {
        if (hash_equals(hash_hmac('sha256', $body, $secret, true), $mac)) {
            return ['valid', $i];
        }
    }
    return ['mismatch', null];
}

function printone_run_vectors(string $path): int
{
    $text = @file_get_contents($path);
    $file = $text === false ? null : json_decode($text, true);
    if (!is_array($file) || !isset($file['vectors'])) {
        fwrite(STDERR, "cannot read vectors: $path\n");
        return 2;
    }
    $passed = 0;
    $failed = 0;
    foreach ($file['vectors'] as $v) {
        [$outcome, $index] = printone_verify($v['secrets'], $v['body'], $v['headers']);
        $want = $v['expected']['outcome'];
        $wantIndex = $v['expected']['matched_secret'] ?? null;
        if ($outcome === $want && $index === $wantIndex) {
            $passed++;
        } else {
            $failed++;
            printf("FAIL %s: expected %s %s, got %s %s\n", $v['name'], $want, var_export($wantIndex, true),
                $outcome, var_export($index, true));
        }
    }
    echo "$passed passed, $failed failed\n";
    return $failed === 0 ? 0 : 1;
}

function printone_main(array $args): int
{
    if (count($args) === 2 && $args[0] === '--vectors') {
        return printone_run_vectors($args[1]);
    }
    if (count($args) !== 3 || $args[0] === '--vectors') {
        fwrite(STDERR, "usage: php verify.php SECRET BODY_FILE SIGNATURE | php verify.php --vectors FILE\n");
        return 2;
    }
    [$secret, $bodyFile, $signature] = $args;
    $body = @file_get_contents($bodyFile); // raw bytes: never decode or re-serialise
    if ($body === false) {
        fwrite(STDERR, "cannot read $bodyFile\n");
        return 2;
    }
    [$outcome] = printone_verify([$secret], $body, [['x-webhook-hmac-sha256', $signature]]);
    if ($outcome === 'valid') {
        return 0;
    }
    fwrite(STDERR, "$outcome\n");
    return 1;
}

// Run as a command only when executed directly, not when included.
if (PHP_SAPI === 'cli' && realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    exit(printone_main(array_slice($argv, 1)));
}
