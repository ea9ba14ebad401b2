// SPDX-License-Identifier: LGPL-2.1-or-later
// Sends records (event JSON) to an Amazon Kinesis Data Firehose delivery stream with
// PutRecordBatch, signed with SigV4, from a worker thread, through a spool on disk.
//
// Delivery is at least once: a record is written (and fsync'd) to the spool before enqueue()
// returns, and leaves the spool only after Firehose confirmed it, or refused it for good (then
// it goes to the dead-letter file rejected.jsonl beside the spool, with the error, and the
// queue moves on). Records not yet confirmed when the uploader is destroyed, or when the process
// dies, are sent by the next uploader on the same spool, in this process or another. A record
// whose request reached Firehose but whose answer didn't reach us is sent again: Firehose may
// then hold it twice (at most one request's worth).
//
// Several uploaders, in one process or several, may share a spool (by default the delivery
// stream's folder in the user's state folder): each writes a folder of its own below it (see
// spool.h). When the disk refuses a record (full, over a size limit), it is kept in memory,
// written later or sent from there; only records beyond max_spool_bytes are dropped, counted
// in dropped().
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
  // The keys (both, or neither) and their session token. Without keys, credentials are found as
  // the AWS SDKs find them (see aws_credentials.h): the environment, then the shared credentials
  // and config files; they are read again when Firehose says they expired or are unknown. An
  // empty region comes from AWS_REGION, AWS_DEFAULT_REGION, then the config file's profile.
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  std::string region;
  // Empty: https://firehose.<region>.amazonaws.com/ (.com.cn in China). http:// only to a
  // loopback host; never a user name or password.
  std::string endpoint;
  // Empty: $XDG_STATE_HOME/emi/firehose/<delivery stream> (~/.local/state/...). Created (0700)
  // when missing; several uploaders may share it.
  std::string spool_dir;

  // PutRecordBatch's limits; lower values are allowed.
  std::size_t max_records_per_request = 500;
  std::size_t max_request_bytes = 4 * 1024 * 1024;  // the JSON body, base64 of the records included
  std::size_t max_record_bytes = 1000 * 1024;       // one record's data: the JSON and its newline
  // Records that would make the spool (on disk and, when the disk refuses, in memory) hold
  // more data than this are reported, dropped and counted.
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
  // No total request timeout (a slow uplink needs long for 4 MiB): a request is given up when
  // fewer than min_speed_bytes_per_second moved for stall_timeout (whole seconds).
  std::chrono::milliseconds stall_timeout{30'000};
  std::size_t min_speed_bytes_per_second = 1024;
  // Longer answers are cut off and count as no answer (PutRecordBatch's are ~100 KiB at most).
  std::size_t max_answer_bytes = 1 << 20;
};

class FirehoseUploader {
 public:
  // Called from enqueue()'s caller (a record dropped) or the worker thread (a failed request),
  // so possibly from two threads at once; may be empty.
  using ErrorHandler = std::function<void(const std::string& message)>;
  // Called from the worker thread with the number of records Firehose just confirmed.
  using DeliveredHandler = std::function<void(std::size_t records)>;

  // Resolves the settings (credentials, region, default endpoint and spool), opens the spool
  // (records left there by uploaders that stopped are sent first) and starts the worker. Throws
  // std::invalid_argument naming the setting that is missing or invalid (never showing a secret),
  // std::runtime_error when the spool directory can't be used (no permission).
  FirehoseUploader(FirehoseSettings settings, ErrorHandler on_error, DeliveredHandler on_delivered = {});
  // Stops the worker, aborting a request in flight; what is not confirmed stays in the spool.
  ~FirehoseUploader();
  FirehoseUploader(const FirehoseUploader&) = delete;
  FirehoseUploader& operator=(const FirehoseUploader&) = delete;

  // Spools `record` (one event's JSON; a newline is appended so that the delivered objects hold
  // one event per line) and wakes the worker. Waits for the disk, never for the network. A record
  // the disk refuses is kept in memory. A record over max_record_bytes or max_spool_bytes is
  // reported through on_error, dropped and counted.
  void enqueue(std::string record);

  // Sends what is waiting without waiting for batch_delay, making one attempt at once whatever
  // the back-off, and waits until the spool is empty; false when `timeout` passed first.
  bool flush(std::chrono::milliseconds timeout);

  // Records in the spool (or held in memory), not yet confirmed.
  std::size_t pending() const;
  // Records lost: over max_record_bytes or max_spool_bytes, damaged on disk, or held in memory
  // when the uploader was destroyed (counted as it is destroyed: process_upload_totals has it).
  std::uint64_t dropped() const;
  // Records Firehose refused for good, now in the dead-letter file.
  std::uint64_t rejected() const;

  // The settings in effect: keys and region resolved (as first found), the endpoint and spool
  // filled in.
  const FirehoseSettings& settings() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// What every uploader of this process to `delivery_stream_name` dropped and had refused for good,
// since the process started. These go on counting what an uploader loses while it is destroyed
// (records the disk refused, held only in memory), when its own dropped() can't be read any more.
struct UploadTotals {
  std::uint64_t dropped = 0;
  std::uint64_t rejected = 0;
};
UploadTotals process_upload_totals(const std::string& delivery_stream_name);

}  // namespace emi::aws
