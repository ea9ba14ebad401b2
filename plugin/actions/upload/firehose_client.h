// SPDX-License-Identifier: LGPL-2.1-or-later
// The Firehose side of the uploader: the endpoint, the PutRecordBatch request body, one signed
// request over libcurl, and what its answer means for each record. No files, no threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "actions/upload/aws_sigv4.h"

namespace emi::aws {

// PutRecordBatch's own limits.
constexpr std::size_t kServiceMaxRecords = 500;
constexpr std::size_t kServiceMaxRequestBytes = 4 * 1024 * 1024;
constexpr std::size_t kServiceMaxRecordBytes = 1000 * 1024;

struct Endpoint {
  std::string url;
  std::string host;  // the Host header: name, and :port when the URL has one
  std::string path;
};

// https://host[:port]/path, or http:// to a loopback host (localhost, 127.x.x.x, [::1]): the
// Authorization header and the session token must not cross a network in clear text. No
// user:password, query or fragment. Throws std::invalid_argument; its message never shows a
// password.
Endpoint parse_endpoint(const std::string& url);
// https://firehose.<region>.amazonaws.com/ (.com.cn in China).
std::string default_endpoint(const std::string& region);

// The JSON body of one PutRecordBatch, built a record at a time.
class RequestBody {
 public:
  explicit RequestBody(const std::string& delivery_stream_name);
  // What a record of `data_bytes` adds to a body, and the size of a body holding just it.
  static std::size_t record_bytes(std::size_t data_bytes, bool first);
  static std::size_t single_record_body_bytes(const std::string& delivery_stream_name, std::size_t data_bytes);

  // Whether a record of `data_bytes` still fits a body of at most `max_bytes` bytes.
  bool fits(std::size_t data_bytes, std::size_t max_bytes) const;
  void add(std::string_view data);
  std::size_t records() const { return records_; }
  // The body, closed.
  std::string finish() &&;

 private:
  std::string text_;
  std::size_t records_ = 0;
};

// What became of one record of a request that was answered.
enum class RecordOutcome { kConfirmed, kRetry, kRejected };

struct PutAnswer {
  enum class Kind {
    kAnswered,        // per-record outcomes below
    kRetry,           // no usable answer, or one that says "later": send it all again
    kBadCredentials,  // expired or unknown keys: read them again
    kRejected,        // refused for a reason the records don't cause (access, stream): wait
    kBadRecords,      // refused for what the request holds: a record in it can never go
    kStopped,         // the uploader is stopping
  };
  Kind kind = Kind::kRetry;
  std::vector<RecordOutcome> records;   // when answered, per record of the request
  std::vector<std::string> record_errors;  // "ErrorCode: ErrorMessage" per record; empty when confirmed
  std::string problem;  // why not every record was confirmed; may hold the server's text
};

// What an HTTP answer means, for a request of `records` records.
PutAnswer parse_put_answer(long status, std::string_view body, std::size_t records);

struct ClientOptions {
  std::string region;
  std::chrono::milliseconds connect_timeout{10'000};
  // A request is given up when fewer than min_speed bytes per second moved (either way) for
  // stall_timeout: a slow uplink can still send 4 MiB, a dead one is noticed.
  std::chrono::milliseconds stall_timeout{30'000};
  std::size_t min_speed = 1024;
  std::size_t max_answer_bytes = 1 << 20;  // larger answers are cut off and count as no answer
};

class FirehoseClient {
 public:
  // `stopping` aborts a request in flight once set; it must outlive the client.
  FirehoseClient(Endpoint endpoint, ClientOptions options, const std::atomic<bool>& stopping);
  ~FirehoseClient();
  FirehoseClient(const FirehoseClient&) = delete;
  FirehoseClient& operator=(const FirehoseClient&) = delete;

  // Signs and sends `body` (holding `records` records), and says what the answer means.
  PutAnswer put(const std::string& body, std::size_t records, const Credentials& credentials);

 private:
  class Connection;
  std::unique_ptr<Connection> connection_;
};

}  // namespace emi::aws
