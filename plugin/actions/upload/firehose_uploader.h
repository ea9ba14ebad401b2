// Sends records (event JSON) to an Amazon Kinesis Data Firehose delivery stream with
// PutRecordBatch, signed with SigV4, from a worker thread, through a spool on disk.
//
// Delivery is at least once: a record is written (and fsync'd) to the spool before enqueue()
// returns, and leaves the spool only after Firehose confirmed it. Records not yet confirmed when
// the uploader is destroyed, or when the process dies, are sent by the next uploader on the same
// spool directory. A record whose request reached Firehose but whose answer didn't reach us (the
// process died, the connection broke after sending) is sent again: Firehose may then hold it twice.
//
// The spool directory holds batch files ("<number>.batch": a header, then per record its length,
// a checksum and the data), appended to by enqueue() until full or due, then sent (several at a
// time when they fit one request). After a partial failure the file is atomically rewritten with
// the records still to send; a fully confirmed file is removed. Use one spool directory per
// delivery stream: the records in it don't say which stream they were meant for.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace emi::aws {

struct FirehoseSettings {
  std::string delivery_stream_name;
  // Empty fields come from the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
  // AWS_SESSION_TOKEN (only with a key from the environment), AWS_REGION then AWS_DEFAULT_REGION.
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  std::string region;
  std::string endpoint;   // empty: https://firehose.<region>.amazonaws.com/ (.com.cn in China)
  std::string spool_dir;  // created when missing

  // PutRecordBatch's limits; lower values are allowed.
  std::size_t max_records_per_request = 500;
  std::size_t max_request_bytes = 4 * 1024 * 1024;  // the JSON body, base64 of the records included
  std::size_t max_record_bytes = 1000 * 1024;       // one record's data: the JSON and its newline
  // Records that would make the spool hold more data than this are reported and dropped.
  std::uint64_t max_spool_bytes = std::uint64_t{1} << 30;

  // How long a batch that isn't full waits for more records before it is sent (flush() doesn't
  // wait for it).
  std::chrono::milliseconds batch_delay{1000};
  // Back-off after failures that retrying can fix (throttling, 5xx, timeouts, no connection):
  // doubles from retry_delay per consecutive failure up to max_retry_delay, half of it random.
  std::chrono::milliseconds retry_delay{500};
  std::chrono::milliseconds max_retry_delay{60'000};
  // Wait after a rejection that retrying can't fix (403, a bad signature, an unknown stream).
  std::chrono::milliseconds rejected_retry_delay{300'000};
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds request_timeout{30'000};
};

class FirehoseUploader {
 public:
  // Called from enqueue()'s caller (a record dropped) or the worker thread (a failed request),
  // so possibly from two threads at once; may be empty.
  using ErrorHandler = std::function<void(const std::string& message)>;
  // Called from the worker thread with the number of records Firehose just confirmed.
  using DeliveredHandler = std::function<void(std::size_t records)>;

  // Resolves the settings (environment, default endpoint), opens the spool (records left there
  // by an earlier uploader are sent first) and starts the worker. Throws std::invalid_argument
  // naming the setting that is missing or invalid, std::runtime_error when the spool directory
  // can't be used (another uploader holds it, no permission).
  FirehoseUploader(FirehoseSettings settings, ErrorHandler on_error, DeliveredHandler on_delivered = {});
  // Stops the worker, aborting a request in flight; what is not confirmed stays in the spool.
  ~FirehoseUploader();
  FirehoseUploader(const FirehoseUploader&) = delete;
  FirehoseUploader& operator=(const FirehoseUploader&) = delete;

  // Spools `record` (one event's JSON; a newline is appended so that the delivered objects hold
  // one event per line) and wakes the worker. Waits for the disk, never for the network. A record
  // over max_record_bytes, over max_spool_bytes or that can't be written is reported through
  // on_error and dropped.
  void enqueue(std::string record);

  // Sends what is waiting without waiting for batch_delay and waits until the spool is empty;
  // false when `timeout` passed first.
  bool flush(std::chrono::milliseconds timeout);

  // Records in the spool, not yet confirmed.
  std::size_t pending() const;

  // The settings in effect: keys and region resolved, the endpoint filled in.
  const FirehoseSettings& settings() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace emi::aws
