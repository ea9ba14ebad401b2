// SPDX-License-Identifier: LGPL-2.1-or-later
#include "actions/upload/firehose_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <optional>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "common/gst_ptr.h"

namespace emi::aws {
namespace {

using nlohmann::json;

constexpr char kService[] = "firehose";
constexpr char kTarget[] = "Firehose_20150804.PutRecordBatch";
constexpr char kContentType[] = "application/x-amz-json-1.1";

// A record in the request body: {"Data":"<base64>"}, and a comma before all but the first.
constexpr std::string_view kRecordOpen = R"({"Data":")";
constexpr std::string_view kRecordClose = R"("})";
constexpr std::string_view kBodyClose = "]}";

// Error types that mean "too fast" or "not now" whatever their HTTP status, for a whole request
// or for one record.
constexpr std::string_view kRetryableErrorTypes[] = {
    "ThrottlingException",   "ThrottledException",     "TooManyRequestsException", "RequestLimitExceeded",
    "LimitExceededException", "ServiceUnavailableException", "InternalFailure",   "InternalFailureException",
    "RequestTimeout",        "RequestTimeoutException"};
// The keys expired or are not (or no longer) known: fresh ones may be in the environment or files.
constexpr std::string_view kCredentialErrorTypes[] = {"ExpiredToken", "ExpiredTokenException",
                                                      "UnrecognizedClientException", "InvalidClientTokenId"};
// What the request holds can't be taken, whatever is tried: one of its records is bad.
constexpr std::string_view kBadContentErrorTypes[] = {"InvalidArgumentException", "SerializationException",
                                                      "ValidationException"};

using CurlEasy = std::unique_ptr<CURL, ReleaseWith<curl_easy_cleanup>>;
using CurlList = std::unique_ptr<curl_slist, ReleaseWith<curl_slist_free_all>>;
using CurlUrl = std::unique_ptr<CURLU, ReleaseWith<curl_url_cleanup>>;
using CurlText = std::unique_ptr<char, ReleaseWith<curl_free>>;

template <std::size_t N>
bool is_one_of(const std::string& type, const std::string_view (&types)[N]) {
  return std::find(std::begin(types), std::end(types), type) != std::end(types);
}

std::size_t base64_size(std::size_t bytes) { return (bytes + 2) / 3 * 4; }

void append_base64(std::string& out, std::string_view data) {
  const std::size_t start = out.size();
  out.resize(start + base64_size(data.size()) + 1);  // EVP_EncodeBlock ends with a NUL
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[start]),
                                      reinterpret_cast<const unsigned char*>(data.data()),
                                      static_cast<int>(data.size()));
  out.resize(start + static_cast<std::size_t>(written));
}

std::string body_head(const std::string& delivery_stream_name) {
  return R"({"DeliveryStreamName":)" + json(delivery_stream_name).dump() + R"(,"Records":[)";
}

// The URL as it may be shown: whatever stands before an '@' in its authority is hidden.
std::string shown_url(const std::string& url) {
  const auto authority = url.find("://");
  const std::size_t start = authority == std::string::npos ? 0 : authority + 3;
  const auto at = url.rfind('@', url.find_first_of("/?#", start));
  if (at == std::string::npos || at < start) return url;
  return url.substr(0, start) + "***" + url.substr(at);
}

bool is_loopback(std::string host) {
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  if (host == "localhost" || host == "[::1]") return true;
  in_addr address{};
  return inet_pton(AF_INET, host.c_str(), &address) == 1 && (ntohl(address.s_addr) >> 24) == 127;
}

void initialise_curl() {
  // Once per process, before the first handle; libcurl's global state is never torn down, as
  // other code in the process may use it.
  static const CURLcode result = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (result != CURLE_OK)
    throw std::runtime_error(std::string("Firehose uploader: libcurl failed to initialise: ") +
                             curl_easy_strerror(result));
}

std::string text_field(const json& object, const char* key) {
  if (!object.is_object()) return {};
  const auto field = object.find(key);
  return field != object.end() && field->is_string() ? field->get<std::string>() : std::string();
}

// "InvalidSignatureException" from "com.amazon.coral.service#InvalidSignatureException".
std::string error_type_of(const json& answer) {
  const std::string type = text_field(answer, "__type");
  return type.substr(type.find('#') + 1);  // npos + 1: the whole name
}

std::string error_message_of(const json& answer) {
  const std::string message = text_field(answer, "message");
  return message.empty() ? text_field(answer, "Message") : message;
}

}  // namespace

Endpoint parse_endpoint(const std::string& url) {
  const auto invalid = [&url](const std::string& why) {
    return std::invalid_argument("endpoint '" + shown_url(url) + "' " + why);
  };
  const CurlUrl handle(curl_url());
  if (!handle) throw std::bad_alloc();
  if (const CURLUcode result = curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0); result != CURLUE_OK)
    throw invalid(std::string("is not a URL: ") + curl_url_strerror(result));
  const auto part = [&handle](CURLUPart which) -> std::optional<std::string> {
    char* text = nullptr;
    if (curl_url_get(handle.get(), which, &text, 0) != CURLUE_OK) return std::nullopt;
    const CurlText owned(text);
    return std::string(owned.get());
  };
  const std::string scheme = part(CURLUPART_SCHEME).value_or("");
  const std::string host = part(CURLUPART_HOST).value_or("");
  if (scheme != "https" && !(scheme == "http" && is_loopback(host)))
    throw invalid("must be https:// (http:// only to this machine: localhost, 127.0.0.1, [::1])");
  if (part(CURLUPART_USER) || part(CURLUPART_PASSWORD))
    throw invalid("must not hold a user name or password: requests are signed with the AWS keys");
  if (part(CURLUPART_QUERY) || part(CURLUPART_FRAGMENT)) throw invalid("must not have a query or fragment");
  Endpoint endpoint{url, host, part(CURLUPART_PATH).value_or("/")};
  if (const auto port = part(CURLUPART_PORT)) endpoint.host += ':' + *port;
  return endpoint;
}

std::string default_endpoint(const std::string& region) {
  const bool china = region.rfind("cn-", 0) == 0;
  return "https://firehose." + region + (china ? ".amazonaws.com.cn/" : ".amazonaws.com/");
}

RequestBody::RequestBody(const std::string& delivery_stream_name) : text_(body_head(delivery_stream_name)) {}

std::size_t RequestBody::record_bytes(std::size_t data_bytes, bool first) {
  return kRecordOpen.size() + base64_size(data_bytes) + kRecordClose.size() + (first ? 0 : 1);
}

std::size_t RequestBody::single_record_body_bytes(const std::string& delivery_stream_name, std::size_t data_bytes) {
  return body_head(delivery_stream_name).size() + record_bytes(data_bytes, true) + kBodyClose.size();
}

bool RequestBody::fits(std::size_t data_bytes, std::size_t max_bytes) const {
  return text_.size() + record_bytes(data_bytes, records_ == 0) + kBodyClose.size() <= max_bytes;
}

void RequestBody::add(std::string_view data) {
  if (records_++ > 0) text_ += ',';
  text_ += kRecordOpen;
  append_base64(text_, data);
  text_ += kRecordClose;
}

std::string RequestBody::finish() && {
  text_ += kBodyClose;
  return std::move(text_);
}

PutAnswer parse_put_answer(long status, std::string_view body, std::size_t records) {
  PutAnswer result;
  const json answer = json::parse(body, nullptr, false);
  if (status != 200) {
    const std::string type = error_type_of(answer);
    const std::string message = error_message_of(answer);
    result.problem = "HTTP " + std::to_string(status) + (type.empty() ? "" : " " + type) +
                     (message.empty() ? "" : ": " + message);
    if (status >= 500 || status == 429 || is_one_of(type, kRetryableErrorTypes))
      result.kind = PutAnswer::Kind::kRetry;
    else if (is_one_of(type, kCredentialErrorTypes))
      result.kind = PutAnswer::Kind::kBadCredentials;
    else if (status == 413 || is_one_of(type, kBadContentErrorTypes))
      result.kind = PutAnswer::Kind::kBadRecords;
    else
      result.kind = PutAnswer::Kind::kRejected;
    return result;
  }
  const json* responses = answer.is_object() && answer.contains("RequestResponses") ? &answer["RequestResponses"] : nullptr;
  if (responses == nullptr || !responses->is_array() || responses->size() != records) {
    // The records may or may not have arrived: sending them again is the safe side.
    result.problem = "an answer without one RequestResponses entry per record";
    return result;
  }
  result.kind = PutAnswer::Kind::kAnswered;
  std::size_t failed = 0;
  std::string first_error;
  for (const json& entry : *responses) {
    const std::string code = text_field(entry, "ErrorCode");
    const bool confirmed = entry.is_object() && entry.contains("RecordId") && !entry.contains("ErrorCode");
    if (confirmed) {
      result.records.push_back(RecordOutcome::kConfirmed);
      result.record_errors.emplace_back();
      continue;
    }
    std::string error = (code.empty() ? "no RecordId" : code) + ": " + text_field(entry, "ErrorMessage");
    result.records.push_back(code.empty() || is_one_of(code, kRetryableErrorTypes) ? RecordOutcome::kRetry
                                                                                    : RecordOutcome::kRejected);
    if (failed++ == 0) first_error = error;
    result.record_errors.push_back(std::move(error));
  }
  if (failed > 0)
    result.problem = std::to_string(failed) + " of " + std::to_string(records) + " records failed (" + first_error + ")";
  return result;
}

// One libcurl handle, kept between requests so the connection is reused.
class FirehoseClient::Connection {
 public:
  Connection(Endpoint endpoint, ClientOptions options, const std::atomic<bool>& stopping)
      : endpoint_(std::move(endpoint)), options_(std::move(options)), stopping_(stopping) {
    initialise_curl();
    curl_.reset(curl_easy_init());
    if (!curl_) throw std::runtime_error("Firehose uploader: libcurl can't make a handle");
    CURL* curl = curl_.get();
    const long stall_seconds = std::max<long>(1, static_cast<long>((options_.stall_timeout.count() + 999) / 1000));
    curl_easy_setopt(curl, CURLOPT_URL, endpoint_.url.c_str());
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, endpoint_.url.rfind("https:", 0) == 0 ? "https" : "http");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // a worker thread: no SIGALRM for DNS timeouts
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(options_.min_speed));
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, stall_seconds);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "emi/" EMI_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Connection::take_answer);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_);
    // Stopping must not wait for a stalled request: the progress callback aborts it.
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &Connection::abort_when_stopping);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, this);
  }

  PutAnswer put(const std::string& body, std::size_t records, const Credentials& credentials) {
    Request request;
    request.method = "POST";
    request.host = endpoint_.host;
    request.path = endpoint_.path;
    request.headers = {{"Content-Type", kContentType}, {"X-Amz-Target", kTarget}};
    request.payload = body;
    const Signature signature =
        sign(request, credentials, {options_.region, kService, false}, std::chrono::system_clock::now());

    CurlList headers;
    const auto add_header = [&headers](const std::string& line) {
      curl_slist* extended = curl_slist_append(headers.get(), line.c_str());
      if (extended == nullptr) throw std::bad_alloc();
      headers.release();  // now owned by `extended`
      headers.reset(extended);
    };
    add_header("Host: " + request.host);
    for (const auto& [name, value] : request.headers) add_header(name + ": " + value);
    for (const auto& [name, value] : signature.headers) add_header(name + ": " + value);
    add_header("Expect:");  // no 100-continue round trip for large bodies

    CURL* curl = curl_.get();
    answer_.clear();
    answer_too_large_ = false;
    error_[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    const CURLcode transfer = curl_easy_perform(curl);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);

    PutAnswer answer;
    if (transfer == CURLE_ABORTED_BY_CALLBACK && stopping_) {
      answer.kind = PutAnswer::Kind::kStopped;
    } else if (answer_too_large_) {
      answer.problem = "an answer over " + std::to_string(options_.max_answer_bytes) + " bytes: cut off";
    } else if (transfer != CURLE_OK) {
      answer.problem = std::string("no answer: ") + (error_[0] != '\0' ? error_ : curl_easy_strerror(transfer));
    } else {
      long status = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      answer = parse_put_answer(status, answer_, records);
    }
    return answer;
  }

 private:
  static std::size_t take_answer(char* data, std::size_t size, std::size_t count, void* self) {
    auto& connection = *static_cast<Connection*>(self);
    if (connection.answer_.size() + size * count > connection.options_.max_answer_bytes) {
      connection.answer_too_large_ = true;
      return 0;  // libcurl ends the transfer
    }
    connection.answer_.append(data, size * count);
    return size * count;
  }
  static int abort_when_stopping(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<const Connection*>(self)->stopping_.load() ? 1 : 0;
  }

  const Endpoint endpoint_;
  const ClientOptions options_;
  const std::atomic<bool>& stopping_;
  CurlEasy curl_;
  std::string answer_;
  bool answer_too_large_ = false;
  char error_[CURL_ERROR_SIZE] = {};
};

FirehoseClient::FirehoseClient(Endpoint endpoint, ClientOptions options, const std::atomic<bool>& stopping)
    : connection_(std::make_unique<Connection>(std::move(endpoint), std::move(options), stopping)) {}

FirehoseClient::~FirehoseClient() = default;

PutAnswer FirehoseClient::put(const std::string& body, std::size_t records, const Credentials& credentials) {
  return connection_->put(body, records, credentials);
}

}  // namespace emi::aws
