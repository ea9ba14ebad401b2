// SPDX-License-Identifier: LGPL-2.1-or-later
// AWS Signature Version 4 for one HTTP request (header-based signing, AWS4-HMAC-SHA256), with
// SHA-256 and HMAC from OpenSSL's libcrypto. No I/O: the caller sends the request and adds the
// headers this returns.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace emi::aws {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials only; empty otherwise
};

using Header = std::pair<std::string, std::string>;  // name, value

// The request as it will be sent.
struct Request {
  std::string method = "GET";
  std::string host;                  // the Host header: "firehose.eu-west-1.amazonaws.com", "127.0.0.1:8080"
  std::string path = "/";            // as sent (already URI-encoded); "" means "/"
  std::string canonical_query;       // see canonical_query(); "" when there is none
  std::vector<Header> headers;       // signed besides host and the x-amz-* ones sign() adds
  std::string_view payload;          // the body; must outlive the sign() call
};

struct SigningOptions {
  std::string region;   // "us-east-1"
  std::string service;  // "firehose"
  // Also sign and return X-Amz-Content-Sha256 (S3 requires it; other services accept it).
  bool content_sha256_header = false;
};

struct Signature {
  std::string amz_date;          // "20150830T123600Z"
  std::string credential_scope;  // "20150830/us-east-1/iam/aws4_request"
  std::string payload_hash;      // hex SHA-256 of the payload
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;    // "content-type;host;x-amz-date"
  std::string signature;         // hex
  std::string authorization;     // the Authorization header's value
  // What to add to the request: X-Amz-Date, X-Amz-Security-Token (with a session token),
  // X-Amz-Content-Sha256 (when asked for) and Authorization.
  std::vector<Header> headers;
};

// Signs `request` as of `time`. Throws std::invalid_argument when the credentials, region or
// service are empty, a header name is empty, or a header value contains a line break.
Signature sign(const Request& request, const Credentials& credentials, const SigningOptions& options,
               std::chrono::system_clock::time_point time);

// The canonical query string of these (unencoded) parameters: names and values percent-encoded
// as SigV4 requires (everything but A-Z a-z 0-9 - _ . ~), sorted by name, then value.
std::string canonical_query(std::vector<std::pair<std::string, std::string>> parameters);

// Percent-encodes all but the unreserved characters, and '/' too unless `keep_slash`.
std::string uri_encode(std::string_view text, bool keep_slash);

// The key that signs requests of one day (date "20120215"), region and service: raw bytes.
std::string derive_signing_key(std::string_view secret_access_key, std::string_view date,
                               std::string_view region, std::string_view service);

// Raw SHA-256 digest / HMAC-SHA256 (32 bytes), and lower-case hex of any bytes.
std::string sha256(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string to_hex(std::string_view bytes);

// "20150830T123600Z" (UTC).
std::string format_amz_date(std::chrono::system_clock::time_point time);

}  // namespace emi::aws
