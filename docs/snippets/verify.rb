#!/usr/bin/env ruby
# frozen_string_literal: true

# Verify a Print.one webhook signature (Ruby standard library only: openssl and json).
#
# Library use:
#   require_relative 'verify'
#   outcome, index = PrintoneVerify.verify(secrets, raw_body, header_pairs)
#   # In Rack (Sinatra, Rails): header_pairs = PrintoneVerify.rack_headers(request.env)
#
# Command line:
#   ruby verify.rb SECRET BODY_FILE SIGNATURE   # exit 0 silently when valid, else 1
#   ruby verify.rb --vectors FILE               # run the test vector file
#
# See docs/VERIFYING.md for the rules implemented here.

require 'json'
require 'openssl'

module PrintoneVerify
  SIGNATURE_HEADERS = %w[x-webhook-hmac-sha256 x-printone-hmac-sha256].freeze

  module_function

  # Returns [outcome, index of the matching secret or nil].
  #
  # secrets -- array of strings, tried in order (several during a rotation);
  #            each is used as its bytes, which are UTF-8 for a UTF-8 string
  # body    -- the raw request body, exactly as received (its bytes are used)
  # headers -- array of [name, value] pairs, repeats included
  def verify(secrets, body, headers)
    # Rule 1: an empty secret (or none at all) is a configuration error.
    return ['empty_secret', nil] if secrets.empty? || secrets.any?(&:empty?)

    # Rule 2: collect every value of both names (ASCII case-insensitive),
    # trimmed of spaces and tabs only (String#strip would also take \r, \n, \0).
    values = headers
             .select { |name, _| SIGNATURE_HEADERS.include?(name.downcase(:ascii)) }
             .map { |_, value| value.sub(/\A[ \t]+/, '').sub(/[ \t]+\z/, '') }
    return ['missing', nil] if values.empty?
    return ['ambiguous', nil] if values.any? { |v| v != values.first }

    value = values.first

    # Rule 3: exactly 44 characters of canonical, padded, standard base64 that
    # decode to 32 bytes. unpack1('m0') is strict RFC 4648 decoding; re-encoding
    # and comparing also rejects non-zero spare bits.
    mac = begin
      value.unpack1('m0')
    rescue ArgumentError
      nil
    end
    if mac.nil? || value.length != 44 || mac.bytesize != 32 || [mac].pack('m0') != value
      return ['malformed', nil]
    end

    # Rule 4: HMAC-SHA256 over the raw body with each secret, compared in
    # constant time (both sides are 32 bytes, as fixed_length_secure_compare needs).
    data = body.b
    secrets.each_with_index do |secret, index|
      expected = OpenSSL::HMAC.digest('SHA256', secret.b, data)
      return ['valid', index] if OpenSSL.fixed_length_secure_compare(expected, mac)
    end
    ['mismatch', nil]
  end

  # The signature headers of a Rack env as [name, value] pairs. Rack servers
  # fold repeated headers into one "a, b" value; such a value is malformed, so
  # the check still fails closed.
  def rack_headers(env)
    SIGNATURE_HEADERS.filter_map do |name|
      value = env["HTTP_#{name.upcase.tr('-', '_')}"]
      [name, value] if value
    end
  end

  def run_vectors(path)
    vectors = JSON.parse(File.read(path, encoding: 'UTF-8')).fetch('vectors')
    passed = 0
    failed = 0
    vectors.each do |v|
      outcome, index = verify(v['secrets'], v['body'], v['headers'])
      want = v['expected']
      if outcome == want['outcome'] && index == want['matched_secret']
        passed += 1
      else
        failed += 1
        puts "FAIL #{v['name']}: expected #{want['outcome']} #{want['matched_secret'].inspect}, " \
             "got #{outcome} #{index.inspect}"
      end
    end
    puts "#{passed} passed, #{failed} failed"
    failed.zero? ? 0 : 1
  end

  def main(args)
    if args.length == 2 && args[0] == '--vectors'
      begin
        return run_vectors(args[1])
      rescue SystemCallError, JSON::ParserError, KeyError, TypeError, NoMethodError => e
        warn "cannot read vectors: #{e.message}"
        return 2
      end
    end
    if args.length != 3 || args[0] == '--vectors'
      warn 'usage: ruby verify.rb SECRET BODY_FILE SIGNATURE | ruby verify.rb --vectors FILE'
      return 2
    end
    secret, body_file, signature = args
    begin
      body = File.binread(body_file) # raw bytes: never decode or re-serialise
    rescue SystemCallError => e
      warn "cannot read #{body_file}: #{e.message}"
      return 2
    end
    outcome, = verify([secret], body, [['x-webhook-hmac-sha256', signature]])
    return 0 if outcome == 'valid'

    warn outcome
    1
  end
end

exit(PrintoneVerify.main(ARGV)) if $PROGRAM_NAME == __FILE__
