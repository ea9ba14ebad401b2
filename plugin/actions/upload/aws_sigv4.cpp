// SPDX-License-Identifier: LGPL-2.1-or-later
#include "actions/upload/aws_sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <stdexcept>

namespace emi::aws {

namespace {

constexpr char kAlgorithm[] = "AWS4-HMAC-SHA256";
constexpr char kTerminator[] = "aws4_request";

// Headers sign() sets itself; a caller's copy would be signed twice with another value.
constexpr std::string_view kReservedHeaders[] = {"authorization", "host", "x-amz-date",
                                                 "x-amz-security-token", "x-amz-content-sha256"};

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

std::string lower_case(std::string_view text) {
  std::string lowered(text);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); });
  return lowered;
}

// SigV4's Trimall: no leading or trailing blanks, runs of blanks become one space.
std::string trim_all(std::string_view value) {
  std::string trimmed;
  bool pending_space = false;
  for (const char c : value) {
    if (c == ' ' || c == '\t') {
      pending_space = !trimmed.empty();
      continue;
    }
    if (pending_space) trimmed += ' ';
    pending_space = false;
    trimmed += c;
  }
  return trimmed;
}

void require(bool condition, const char* what) {
  if (!condition) throw std::invalid_argument(std::string("SigV4 signing: ") + what);
}

}  // namespace

std::string sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SigV4 signing: OpenSSL's SHA-256 failed");
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length) == nullptr)
    throw std::runtime_error("SigV4 signing: OpenSSL's HMAC-SHA256 failed");
  return std::string(reinterpret_cast<const char*>(mac), length);
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (const unsigned char byte : bytes) {
    hex += kDigits[byte >> 4];
    hex += kDigits[byte & 0x0f];
  }
  return hex;
}

std::string uri_encode(std::string_view text, bool keep_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string encoded;
  encoded.reserve(text.size());
  for (const unsigned char c : text) {
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += kDigits[c >> 4];
      encoded += kDigits[c & 0x0f];
    }
  }
  return encoded;
}

std::string canonical_query(std::vector<std::pair<std::string, std::string>> parameters) {
  for (auto& [name, value] : parameters) {
    name = uri_encode(name, false);
    value = uri_encode(value, false);
  }
  // Sorted after encoding, by byte, as the specification says.
  std::sort(parameters.begin(), parameters.end());
  std::string query;
  for (const auto& [name, value] : parameters) {
    if (!query.empty()) query += '&';
    query += name;
    query += '=';
    query += value;
  }
  return query;
}

std::string derive_signing_key(std::string_view secret_access_key, std::string_view date,
                               std::string_view region, std::string_view service) {
  const std::string date_key = hmac_sha256("AWS4" + std::string(secret_access_key), date);
  const std::string region_key = hmac_sha256(date_key, region);
  const std::string service_key = hmac_sha256(region_key, service);
  return hmac_sha256(service_key, kTerminator);
}

std::string format_amz_date(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[sizeof "20150830T123600Z"];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

Signature sign(const Request& request, const Credentials& credentials, const SigningOptions& options,
               std::chrono::system_clock::time_point time) {
  require(!credentials.access_key_id.empty(), "the access key id is empty");
  require(!credentials.secret_access_key.empty(), "the secret access key is empty");
  require(!options.region.empty(), "the region is empty");
  require(!options.service.empty(), "the service is empty");
  require(!request.host.empty(), "the host is empty");

  Signature result;
  result.amz_date = format_amz_date(time);
  const std::string date = result.amz_date.substr(0, 8);
  result.credential_scope = date + '/' + options.region + '/' + options.service + '/' + kTerminator;
  result.payload_hash = to_hex(sha256(request.payload));

  result.headers.emplace_back("X-Amz-Date", result.amz_date);
  if (!credentials.session_token.empty())
    result.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  if (options.content_sha256_header) result.headers.emplace_back("X-Amz-Content-Sha256", result.payload_hash);

  // Lower-case name → values in the order given (repeated headers are joined with commas).
  std::map<std::string, std::string> canonical_headers;
  const auto add_header = [&canonical_headers](const std::string& name, std::string_view value) {
    require(value.find_first_of("\r\n") == std::string_view::npos, "a header value contains a line break");
    std::string& joined = canonical_headers[name];
    if (!joined.empty()) joined += ',';
    joined += trim_all(value);
  };
  for (const auto& [name, value] : request.headers) {
    require(!name.empty(), "a header name is empty");
    const std::string lowered = lower_case(name);
    if (std::find(std::begin(kReservedHeaders), std::end(kReservedHeaders), lowered) != std::end(kReservedHeaders))
      throw std::invalid_argument("SigV4 signing: header " + name + " is set by the signer, not the caller");
    add_header(lowered, value);
  }
  add_header("host", request.host);
  for (const auto& [name, value] : result.headers) add_header(lower_case(name), value);

  std::string header_block;
  for (const auto& [name, value] : canonical_headers) {
    header_block += name + ':' + value + '\n';
    if (!result.signed_headers.empty()) result.signed_headers += ';';
    result.signed_headers += name;
  }

  // Paths are encoded once more: services other than S3 sign the URI-encoded form of the path
  // as sent.
  const std::string canonical_path = request.path.empty() ? "/" : uri_encode(request.path, true);
  result.canonical_request = request.method + '\n' + canonical_path + '\n' + request.canonical_query + '\n' +
                             header_block + '\n' + result.signed_headers + '\n' + result.payload_hash;
  result.string_to_sign = std::string(kAlgorithm) + '\n' + result.amz_date + '\n' + result.credential_scope +
                          '\n' + to_hex(sha256(result.canonical_request));
  const std::string signing_key =
      derive_signing_key(credentials.secret_access_key, date, options.region, options.service);
  result.signature = to_hex(hmac_sha256(signing_key, result.string_to_sign));
  result.authorization = std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + '/' +
                         result.credential_scope + ", SignedHeaders=" + result.signed_headers +
                         ", Signature=" + result.signature;
  result.headers.emplace_back("Authorization", result.authorization);
  return result;
}

}  // namespace emi::aws
