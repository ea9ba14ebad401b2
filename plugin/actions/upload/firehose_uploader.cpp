// SPDX-License-Identifier: LGPL-2.1-or-later
// The uploader's worker: the queue of batches (from our spool folder, from folders left by
// uploaders that stopped, and held in memory when the disk refused them), one request at a time,
// the settling of each answer, and the back-off. The spool (spool.h) and Firehose
// (firehose_client.h) are done elsewhere.
#include "actions/upload/firehose_uploader.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "actions/upload/firehose_client.h"
#include "actions/upload/firehose_settings.h"
#include "actions/upload/retry_policy.h"
#include "actions/upload/spool.h"
#include "actions/upload/upload_log.h"

#define GST_CAT_DEFAULT emi::upload_debug()

namespace emi::aws {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How often a worker looks for spool folders whose writer stopped (besides at its start).
constexpr milliseconds kClaimInterval{60'000};

bool same(const Credentials& a, const Credentials& b) {
  return a.access_key_id == b.access_key_id && a.secret_access_key == b.secret_access_key &&
         a.session_token == b.session_token;
}

// The process's totals per delivery stream (process_upload_totals).
struct TotalsRegistry {
  std::mutex mutex;
  std::map<std::string, UploadTotals> totals;
};

TotalsRegistry& totals_registry() {
  static TotalsRegistry registry;
  return registry;
}

void add_to_totals(const std::string& delivery_stream_name, std::uint64_t dropped, std::uint64_t rejected) {
  if (dropped == 0 && rejected == 0) return;
  TotalsRegistry& registry = totals_registry();
  const std::lock_guard lock(registry.mutex);
  UploadTotals& totals = registry.totals[delivery_stream_name];
  totals.dropped += dropped;
  totals.rejected += rejected;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

}  // namespace

class FirehoseUploader::Impl {
 public:
  Impl(FirehoseSettings settings, ErrorHandler on_error, DeliveredHandler on_delivered);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void enqueue(std::string record);
  bool flush(milliseconds timeout);
  std::size_t pending() const;
  std::uint64_t dropped() const { return dropped_; }
  std::uint64_t rejected() const { return rejected_; }
  // Counts here and in the process's totals for the delivery stream.
  void count_dropped(std::uint64_t records);
  void count_rejected(std::uint64_t records);
  const FirehoseSettings& settings() const { return settings_; }

 private:
  // A spool folder we hold: our own, or one claimed from a writer that stopped.
  struct Folder {
    spool::Folder spool;
    bool own;
    std::size_t batches = 0;  // in the outbox
  };
  // A batch waiting to be sent.
  struct Batch {
    Folder* folder = nullptr;  // nullptr: held in memory only, the disk refused it
    std::uint64_t id = 0;
    std::size_t records = 0;   // as last counted
    std::uint64_t bytes = 0;   // of record data
    std::optional<std::vector<std::string>> contents;  // read when it goes into a request
  };
  // The batch file enqueue() appends to.
  struct OpenBatch {
    explicit OpenBatch(spool::BatchWriter writer) : file(std::move(writer)) {}
    spool::BatchWriter file;
    std::size_t records = 0;
    std::uint64_t record_bytes = 0;
    std::size_t body_bytes = 0;  // of a request holding this batch alone
    Clock::time_point first_record;
  };
  // Record `record` of outbox_[batch] in a request.
  struct RequestEntry {
    std::size_t batch;
    std::size_t record;
  };
  enum class Failure { kRetry, kRejected };

  // enqueue() side, with mutex_ held.
  void append_locked(const std::string& record);
  void open_batch_locked();
  void seal_locked();

  // Worker side.
  void run();
  bool wait_for_work();
  void claim_orphans();
  void claim_orphans_reporting();
  void send_next_request();
  void spill(Batch& batch);
  void load(Batch& batch);
  std::vector<std::string> read_batch(const Batch& batch);
  void settle(const std::vector<RequestEntry>& entries, const PutAnswer& answer);
  void give_up_on(const std::vector<RequestEntry>& entries, const std::string& problem);
  void refused_alone(const std::vector<RequestEntry>& entries, const std::string& problem);
  bool dead_letter(const std::string& record, const std::string& error);
  void retire_batch(std::size_t index);
  void reload_credentials(const std::string& problem);
  void after_failure(Failure failure, const std::string& problem);
  void recount(std::int64_t records, std::int64_t bytes);
  void report(const std::string& message) const;
  Credentials credentials() const;

  ResolvedSettings resolved_;
  const FirehoseSettings& settings_ = resolved_.settings;
  const ErrorHandler on_error_;
  const DeliveredHandler on_delivered_;
  const spool::fs::path spool_root_;
  const std::string description_;  // "Firehose stream 'name' at URL", for messages

  mutable std::mutex credentials_mutex_;
  ResolvedCredentials credentials_;  // guarded by credentials_mutex_

  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> rejected_{0};

  mutable std::mutex mutex_;
  std::condition_variable worker_wake_;
  std::condition_variable spool_changed_;
  // Guarded by mutex_ (stopping_ is also read by libcurl's progress callback).
  std::atomic<bool> stopping_{false};
  std::list<Folder> folders_;     // ours first; the worker adds and removes claimed ones
  std::optional<OpenBatch> open_;
  std::deque<Batch> sealed_;      // closed batches the worker hasn't taken yet, oldest first
  std::vector<std::string> in_memory_;  // records the disk refused, the worker hasn't taken yet
  bool memory_reported_ = false;  // since the disk last took a record
  std::uint64_t next_batch_id_ = 1;
  std::size_t pending_records_ = 0;
  std::uint64_t spool_bytes_ = 0;
  bool recovered_ = false;        // what uploaders that stopped left is counted
  unsigned flush_waiters_ = 0;
  std::uint64_t flush_requests_ = 0;

  // The worker's own.
  std::deque<Batch> outbox_;      // batches to send, oldest first
  FirehoseClient client_;
  std::uint64_t flushes_served_ = 0;
  RefusalSearch search_;
  Backoff backoff_;
  Clock::time_point next_attempt_;
  Clock::time_point next_claim_;

  std::thread worker_;  // last: starts once everything above exists
};

FirehoseUploader::Impl::Impl(FirehoseSettings settings, ErrorHandler on_error, DeliveredHandler on_delivered)
    : resolved_(resolve_settings(std::move(settings))),
      on_error_(std::move(on_error)),
      on_delivered_(std::move(on_delivered)),
      spool_root_(settings_.spool_dir),
      description_("Firehose stream '" + settings_.delivery_stream_name + "' at " + settings_.endpoint),
      credentials_(resolved_.credentials),
      client_(resolved_.endpoint,
              {settings_.region, settings_.connect_timeout, settings_.stall_timeout,
               settings_.min_speed_bytes_per_second, settings_.max_answer_bytes},
              stopping_),
      search_(settings_.max_records_per_request),
      backoff_(settings_.retry_delay, settings_.max_retry_delay) {
  try {
    folders_.push_back({spool::Folder::create(spool_root_), true});
  } catch (const std::exception& error) {
    throw std::runtime_error("Firehose uploader: spool_dir " + spool_root_.string() + ": " + error.what());
  }
  GST_INFO("%s: spooling in %s (credentials from %s, access key %s)", description_.c_str(),
           folders_.front().spool.path().c_str(), credentials_.origin.c_str(),
           mask_access_key(credentials_.credentials.access_key_id).c_str());
  worker_ = std::thread([this] { run(); });
}

FirehoseUploader::Impl::~Impl() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  worker_wake_.notify_all();
  worker_.join();
  if (open_) seal_locked();  // the worker is gone: nobody else holds mutex_
  // Records only in memory have one more chance to reach the disk; then they are lost.
  std::size_t lost = in_memory_.size();
  for (Batch& batch : outbox_) {
    if (batch.folder != nullptr) continue;
    try {
      spill(batch);
    } catch (const std::exception&) {
    }
    if (batch.folder == nullptr) lost += batch.records;
  }
  if (lost > 0) {
    count_dropped(lost);
    report(description_ + ": " + std::to_string(lost) +
           " records the disk refused were held in memory and are lost as the uploader stops");
  }
  folders_.front().spool.remove_if_empty();
}

void FirehoseUploader::Impl::enqueue(std::string record) {
  record += '\n';
  if (record.size() > settings_.max_record_bytes) {
    count_dropped(1);
    report(description_ + ": a record of " + std::to_string(record.size()) +
           " bytes (with its newline) is over max_record_bytes (" + std::to_string(settings_.max_record_bytes) +
           "): dropped, not sent");
    return;
  }
  std::string problem;
  bool wake_worker = false;
  {
    const std::lock_guard lock(mutex_);
    if (spool_bytes_ + record.size() > settings_.max_spool_bytes) {
      count_dropped(1);
      problem = "a record could not be spooled: the spool " + spool_root_.string() + " holds " +
                std::to_string(spool_bytes_) + " bytes of records not yet delivered, max_spool_bytes is " +
                std::to_string(settings_.max_spool_bytes) + "; dropped";
    } else {
      const std::size_t sealed_before = sealed_.size();
      ++pending_records_;
      spool_bytes_ += record.size();
      try {
        append_locked(record);
        memory_reported_ = false;
      } catch (const std::exception& error) {
        if (!memory_reported_)
          problem = std::string("the disk refused a record (") + error.what() +
                    "): records are kept in memory until it takes them or Firehose confirms them";
        memory_reported_ = true;
        in_memory_.push_back(record);
        wake_worker = true;
      }
      // The worker needs to know when a batch starts (its delay runs) or is full.
      wake_worker = wake_worker || sealed_.size() != sealed_before || (open_ && open_->records == 1);
    }
  }
  if (!problem.empty()) report(description_ + ": " + problem);
  if (wake_worker) worker_wake_.notify_one();
}

void FirehoseUploader::Impl::append_locked(const std::string& record) {
  if (open_ && (open_->records == settings_.max_records_per_request ||
                open_->body_bytes + RequestBody::record_bytes(record.size(), false) > settings_.max_request_bytes))
    seal_locked();
  if (!open_) open_batch_locked();
  try {
    open_->file.append(record);
  } catch (const std::exception&) {
    seal_locked();  // a new file next time, in case this one is what failed
    throw;
  }
  const bool first = open_->records == 0;
  if (first) open_->first_record = Clock::now();
  open_->records += 1;
  open_->record_bytes += record.size();
  open_->body_bytes += RequestBody::record_bytes(record.size(), first);
  if (open_->records == settings_.max_records_per_request) seal_locked();
}

void FirehoseUploader::Impl::open_batch_locked() {
  const std::uint64_t id = next_batch_id_++;
  open_.emplace(spool::BatchWriter(folders_.front().spool, id));
  open_->body_bytes = RequestBody::single_record_body_bytes(settings_.delivery_stream_name, 0) -
                      RequestBody::record_bytes(0, true);
}

void FirehoseUploader::Impl::seal_locked() {
  if (open_->records == 0) {
    std::error_code ignored;  // an empty batch file left behind is skipped when read
    spool::fs::remove(folders_.front().spool.batch_path(open_->file.id()), ignored);
  } else {
    sealed_.push_back(Batch{&folders_.front(), open_->file.id(), open_->records, open_->record_bytes, std::nullopt});
    GST_INFO("%s: batch %" G_GUINT64_FORMAT " sealed with %zu records; the spool holds %zu records, %" G_GUINT64_FORMAT
             " bytes",
             description_.c_str(), open_->file.id(), open_->records, pending_records_, spool_bytes_);
  }
  open_.reset();
}

bool FirehoseUploader::Impl::flush(milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ++flush_waiters_;
  ++flush_requests_;
  worker_wake_.notify_one();
  const bool empty = spool_changed_.wait_for(lock, timeout, [this] { return recovered_ && pending_records_ == 0; });
  --flush_waiters_;
  return empty;
}

std::size_t FirehoseUploader::Impl::pending() const {
  const std::lock_guard lock(mutex_);
  return pending_records_;
}

void FirehoseUploader::Impl::run() {
  claim_orphans_reporting();
  {
    const std::lock_guard lock(mutex_);
    recovered_ = true;
  }
  spool_changed_.notify_all();
  while (wait_for_work()) {
    if (Clock::now() >= next_claim_) claim_orphans_reporting();
    if (outbox_.empty() || Clock::now() < next_attempt_) continue;
    try {
      send_next_request();
    } catch (const std::exception& error) {
      // Spool I/O failed, or memory ran out: nothing was confirmed, so try again later.
      after_failure(Failure::kRetry, error.what());
    }
  }
}

bool FirehoseUploader::Impl::wait_for_work() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const Clock::time_point now = Clock::now();
    if (open_ && open_->records > 0 && (flush_waiters_ > 0 || now >= open_->first_record + settings_.batch_delay))
      seal_locked();
    for (; !sealed_.empty(); sealed_.pop_front()) {
      ++sealed_.front().folder->batches;
      outbox_.push_back(std::move(sealed_.front()));
    }
    if (!in_memory_.empty()) {
      Batch held{nullptr, 0, in_memory_.size(), 0, std::move(in_memory_)};
      for (const std::string& record : *held.contents) held.bytes += record.size();
      in_memory_.clear();
      outbox_.push_back(std::move(held));
    }
    // A flush makes one attempt at once, whatever the back-off.
    if (flushes_served_ != flush_requests_) {
      flushes_served_ = flush_requests_;
      next_attempt_ = now;
    }
    if ((!outbox_.empty() && now >= next_attempt_) || now >= next_claim_) return true;
    Clock::time_point wake = next_claim_;
    if (!outbox_.empty()) wake = std::min(wake, next_attempt_);
    if (open_ && open_->records > 0) wake = std::min(wake, open_->first_record + settings_.batch_delay);
    worker_wake_.wait_until(lock, wake);
  }
  return false;
}

// claim_orphans, which can't stop the worker: what went wrong is reported, tried again later.
void FirehoseUploader::Impl::claim_orphans_reporting() {
  try {
    claim_orphans();
  } catch (const std::exception& error) {
    report(description_ + ": looking for what stopped uploaders left in " + spool_root_.string() + " failed (" +
           error.what() + ")");
  }
}

// Takes over the spool folders of writers that stopped (their lock is free): what they left is
// counted, then sent with ours.
void FirehoseUploader::Impl::claim_orphans() {
  next_claim_ = Clock::now() + kClaimInterval;
  for (const spool::fs::path& path : spool::Folder::candidates(spool_root_)) {
    if (stopping_) return;
    const bool held = std::any_of(folders_.begin(), folders_.end(),
                                  [&path](const Folder& folder) { return folder.spool.path() == path; });
    if (held) continue;
    std::optional<spool::Folder> claimed = spool::Folder::claim(path);
    if (!claimed) continue;
    std::vector<std::uint64_t> ids;
    try {
      ids = claimed->batch_ids();
    } catch (const std::exception& error) {
      report(description_ + ": spool folder " + path.string() + " can't be read now (" + error.what() + ")");
      continue;
    }
    Folder* folder;
    {
      const std::lock_guard lock(mutex_);
      folder = &folders_.emplace_back(Folder{std::move(*claimed), false});
    }
    for (const std::uint64_t id : ids) {
      Batch batch{folder, id, 0, 0, std::nullopt};
      bool readable = true;
      try {
        load(batch);
      } catch (const std::exception& error) {
        readable = false;
        report(description_ + ": spool batch " + folder->spool.batch_path(id).string() + " can't be read now (" +
               error.what() + "); trying again when sending");
      }
      if (readable && batch.records == 0) continue;  // nothing to send: its file is gone
      batch.contents.reset();  // read again when sent: a long outage may have left a lot
      ++folder->batches;
      outbox_.push_back(std::move(batch));
    }
    GST_INFO("%s: took over %s from a writer that stopped: %zu batches", description_.c_str(), path.c_str(),
             ids.size());
    if (folder->batches == 0) {
      folder->spool.remove_if_empty();
      const std::lock_guard lock(mutex_);
      folders_.pop_back();
    }
  }
}

// Writes a batch held in memory into our spool folder, if the disk takes it now.
void FirehoseUploader::Impl::spill(Batch& batch) {
  Folder& own = folders_.front();
  std::uint64_t id;
  {
    const std::lock_guard lock(mutex_);
    id = next_batch_id_++;
  }
  own.spool.store_batch(id, *batch.contents);
  batch.folder = &own;
  batch.id = id;
  ++own.batches;
  GST_INFO("%s: %zu records held in memory are now in batch %" G_GUINT64_FORMAT, description_.c_str(),
           batch.records, id);
}

// Sends the oldest records that fit one request and settles the answer.
void FirehoseUploader::Impl::send_next_request() {
  for (Batch& batch : outbox_) {
    if (batch.folder != nullptr) continue;
    try {
      spill(batch);
    } catch (const std::exception&) {
      // Still refused: sent from memory.
    }
  }
  std::vector<RequestEntry> entries;
  RequestBody body(settings_.delivery_stream_name);
  bool request_full = false;
  bool skip_suspect = search_.suspect().has_value();
  for (std::size_t index = 0; index < outbox_.size() && !request_full;) {
    Batch& batch = outbox_[index];
    if (!batch.contents) load(batch);
    if (batch.contents->empty()) {
      retire_batch(index);
      continue;
    }
    for (std::size_t record = 0; record < batch.contents->size(); ++record) {
      if (std::exchange(skip_suspect, false)) continue;
      const std::string& data = (*batch.contents)[record];
      if (entries.size() == search_.request_limit() || !body.fits(data.size(), settings_.max_request_bytes)) {
        request_full = true;
        break;
      }
      body.add(data);
      entries.push_back({index, record});
    }
    ++index;
  }
  if (entries.empty()) {
    if (search_.suspect()) {
      // No record after the suspect to tell the stream from the record: wait, as for the stream.
      const std::string problem = *search_.suspect();
      search_.end();
      after_failure(Failure::kRejected, problem);
    }
    return;
  }

  const std::size_t body_records = body.records();
  const std::string text = std::move(body).finish();
  const Clock::time_point started = Clock::now();
  const PutAnswer answer = client_.put(text, body_records, credentials());
  GST_INFO("%s: PutRecordBatch of %zu records (%zu bytes) took %lld ms: %s", description_.c_str(), body_records,
           text.size(),
           static_cast<long long>(std::chrono::duration_cast<milliseconds>(Clock::now() - started).count()),
           answer.problem.empty() ? "all confirmed" : redact(answer.problem, credentials()).c_str());
  switch (answer.kind) {
    case PutAnswer::Kind::kStopped:
      return;
    case PutAnswer::Kind::kAnswered: {
      const bool any_confirmed = std::find(answer.records.begin(), answer.records.end(), RecordOutcome::kConfirmed) !=
                                 answer.records.end();
      settle(entries, answer);
      if (any_confirmed && search_.suspect()) {
        // The record after the suspect went: the suspect itself is what Firehose refuses.
        give_up_on({{0, 0}}, *search_.suspect());
        search_.end();
      } else if (any_confirmed) {
        search_.delivered();
      }
      const bool all_settled = std::none_of(answer.records.begin(), answer.records.end(),
                                            [](RecordOutcome outcome) { return outcome == RecordOutcome::kRetry; });
      if (all_settled) {
        backoff_.reset();
        next_attempt_ = Clock::now();
      } else {
        after_failure(Failure::kRetry, answer.problem);
      }
      return;
    }
    case PutAnswer::Kind::kBadRecords:
      if (entries.size() > 1) {
        // One of them is bad: halve the requests until it is alone.
        search_.refused(entries.size());
        GST_INFO("%s: %s; looking for the record refused with requests of %zu records", description_.c_str(),
                 redact(answer.problem, credentials()).c_str(), search_.request_limit());
        next_attempt_ = Clock::now();
      } else {
        refused_alone(entries, answer.problem);
      }
      return;
    case PutAnswer::Kind::kBadCredentials:
      reload_credentials(answer.problem);
      return;
    case PutAnswer::Kind::kRejected:
      after_failure(Failure::kRejected, answer.problem);
      return;
    case PutAnswer::Kind::kRetry:
      after_failure(Failure::kRetry, answer.problem);
      return;
  }
}

// Gives up on these records: Firehose refuses them for `problem`, whatever is tried.
void FirehoseUploader::Impl::give_up_on(const std::vector<RequestEntry>& entries, const std::string& problem) {
  PutAnswer verdict;
  verdict.records.assign(entries.size(), RecordOutcome::kRejected);
  verdict.record_errors.assign(entries.size(), problem);
  verdict.problem = problem;
  settle(entries, verdict);
}

// A request of one record was refused for its content.
void FirehoseUploader::Impl::refused_alone(const std::vector<RequestEntry>& entries, const std::string& problem) {
  const bool oldest = entries[0].batch == 0 && entries[0].record == 0;
  switch (search_.refused_alone(oldest, problem)) {
    case RefusalSearch::Verdict::kGiveUpOnIt:
      give_up_on(entries, problem);
      next_attempt_ = Clock::now();
      return;
    case RefusalSearch::Verdict::kTryTheNextAlone:
      next_attempt_ = Clock::now();
      return;
    case RefusalSearch::Verdict::kTheStreamRefuses:
      after_failure(Failure::kRejected, problem + " (every record is refused: check the delivery stream)");
      return;
  }
}

// Reads the batch's records, and counts them anew.
void FirehoseUploader::Impl::load(Batch& batch) {
  std::vector<std::string> records = read_batch(batch);
  std::uint64_t bytes = 0;
  for (const std::string& record : records) bytes += record.size();
  recount(static_cast<std::int64_t>(records.size()) - static_cast<std::int64_t>(batch.records),
          static_cast<std::int64_t>(bytes) - static_cast<std::int64_t>(batch.bytes));
  batch.records = records.size();
  batch.bytes = bytes;
  batch.contents = std::move(records);
}

// The records of a batch file that can be sent. What can't (a tail cut short by a crash, a
// record over max_record_bytes, a file that isn't a batch) is reported, counted and leaves the
// spool.
std::vector<std::string> FirehoseUploader::Impl::read_batch(const Batch& batch) {
  const spool::Folder& folder = batch.folder->spool;
  const spool::fs::path path = folder.batch_path(batch.id);
  if (!spool::fs::exists(path)) {
    count_dropped(batch.records);
    report(description_ + ": spool batch " + path.string() + " was removed by someone else; its " +
           std::to_string(batch.records) + " records are lost");
    return {};
  }
  spool::ParsedBatch parsed = folder.read_batch(batch.id);
  if (parsed.foreign) {
    report(description_ + ": " + path.string() + " is not a spool batch file; renamed " + path.string() +
           ".damaged, not sent");
    return {};
  }
  std::vector<std::string>& records = parsed.records;
  const std::size_t whole_records = records.size();
  records.erase(std::remove_if(records.begin(), records.end(),
                               [this](const std::string& record) { return record.size() > settings_.max_record_bytes; }),
                records.end());
  const std::size_t oversized = whole_records - records.size();
  count_dropped(oversized + (parsed.damaged_bytes > 0 ? 1 : 0));
  if (parsed.damaged_bytes > 0)
    report(description_ + ": the last " + std::to_string(parsed.damaged_bytes) + " bytes of " + path.string() +
           " are not a whole record (a write cut short when the process stopped, or damage): dropped");
  if (oversized > 0)
    report(description_ + ": " + std::to_string(oversized) + " records in " + path.string() +
           " are over max_record_bytes (" + std::to_string(settings_.max_record_bytes) + "): dropped, not sent");
  // A file with no records left (or none ever: created just before the process stopped) goes.
  if (parsed.damaged_bytes > 0 || oversized > 0 || records.empty()) folder.store_batch(batch.id, records);
  return std::move(records);
}

// Removes the records Firehose confirmed or refused for good (those go to the dead-letter file)
// from their batches, then from the counts.
void FirehoseUploader::Impl::settle(const std::vector<RequestEntry>& entries, const PutAnswer& answer) {
  // The request took its records from the first batches of the outbox, in order.
  const std::size_t touched = entries.back().batch + 1;
  std::vector<std::vector<bool>> done(touched);
  for (std::size_t index = 0; index < touched; ++index) done[index].assign(outbox_[index].contents->size(), false);
  std::size_t delivered = 0;
  std::size_t refused = 0;
  std::uint64_t settled_bytes = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string& record = (*outbox_[entries[i].batch].contents)[entries[i].record];
    if (answer.records[i] == RecordOutcome::kRetry) continue;
    if (answer.records[i] == RecordOutcome::kRejected) {
      if (!dead_letter(record, answer.record_errors[i])) continue;
      ++refused;
    } else {
      ++delivered;
    }
    done[entries[i].batch][entries[i].record] = true;
    settled_bytes += record.size();
  }
  for (std::size_t index = touched; index-- > 0;) {
    if (std::find(done[index].begin(), done[index].end(), true) == done[index].end()) continue;
    Batch& batch = outbox_[index];
    std::vector<std::string> remaining;
    std::uint64_t remaining_bytes = 0;
    for (std::size_t record = 0; record < batch.contents->size(); ++record) {
      if (done[index][record]) continue;
      remaining_bytes += (*batch.contents)[record].size();
      remaining.push_back(std::move((*batch.contents)[record]));
    }
    if (batch.folder != nullptr) {
      try {
        batch.folder->spool.store_batch(batch.id, remaining);
      } catch (const std::exception& error) {
        report(description_ + ": records Firehose confirmed could not be removed from the spool (" + error.what() +
               "); a later uploader on " + spool_root_.string() + " will send them again");
      }
    }
    batch.records = remaining.size();
    batch.bytes = remaining_bytes;
    batch.contents = std::move(remaining);
    if (batch.records == 0) retire_batch(index);
  }
  count_rejected(refused);
  if (refused > 0)
    report(description_ + ": Firehose refused " + std::to_string(refused) + " records for good (" +
           redact(answer.problem, credentials()) + "); they are in " + spool::rejected_path(spool_root_).string());
  // Before the counts drop, so that a flush() that returns has seen every on_delivered call.
  if (delivered > 0 && on_delivered_) {
    try {
      on_delivered_(delivered);
    } catch (...) {
      // A throwing handler must not stop the deliveries.
    }
  }
  recount(-static_cast<std::int64_t>(delivered + refused), -static_cast<std::int64_t>(settled_bytes));
}

// Appends a refused record and its error to the dead-letter file; false when that failed (the
// record then stays in the queue).
bool FirehoseUploader::Impl::dead_letter(const std::string& record, const std::string& error) {
  const std::string_view data(record.data(), record.empty() || record.back() != '\n' ? record.size() : record.size() - 1);
  const std::string line = json{{"time", utc_now()},
                                {"delivery_stream", settings_.delivery_stream_name},
                                {"error", redact(error, credentials())},
                                {"record", data}}
                               .dump(-1, ' ', false, json::error_handler_t::replace) +
                           '\n';
  try {
    spool::append_rejected(spool_root_, line);
    return true;
  } catch (const std::exception& failure) {
    report(description_ + ": a record Firehose refused could not be written to the dead-letter file (" +
           failure.what() + "); it stays in the spool");
    return false;
  }
}

// Takes outbox_[index] out of the queue; a claimed folder with nothing left is removed.
void FirehoseUploader::Impl::retire_batch(std::size_t index) {
  Folder* folder = outbox_[index].folder;
  outbox_.erase(outbox_.begin() + static_cast<std::ptrdiff_t>(index));
  if (folder == nullptr || --folder->batches > 0 || folder->own) return;
  folder->spool.remove_if_empty();
  const std::lock_guard lock(mutex_);
  folders_.remove_if([folder](const Folder& held) { return &held == folder; });
}

// Firehose says the keys expired or are unknown: the environment or the shared files may hold
// fresh ones by now (a credentials helper, an operator), so look again at once.
void FirehoseUploader::Impl::reload_credentials(const std::string& problem) {
  std::optional<ResolvedCredentials> fresh;
  if (resolved_.credentials_chain.can_change()) {
    try {
      fresh = resolved_.credentials_chain.resolve();
    } catch (const std::invalid_argument&) {
      // None now: keep the old ones and retry later.
    }
  }
  const Credentials current = credentials();
  if (fresh && !same(fresh->credentials, current)) {
    report(description_ + ": the credentials were refused (" + redact(problem, current) + "); using the ones now in " +
           fresh->origin + " (access key " + mask_access_key(fresh->credentials.access_key_id) + ")");
    {
      const std::lock_guard lock(credentials_mutex_);
      credentials_ = std::move(*fresh);
    }
    backoff_.reset();
    next_attempt_ = Clock::now();
    return;
  }
  std::string origin;
  {
    const std::lock_guard lock(credentials_mutex_);
    origin = credentials_.origin;
  }
  // Keys given in the rule can't change: waiting long is all that can be done.
  after_failure(resolved_.credentials_chain.can_change() ? Failure::kRetry : Failure::kRejected,
                problem + " (credentials from " + origin + ")");
}

void FirehoseUploader::Impl::after_failure(Failure failure, const std::string& problem) {
  const milliseconds backoff = backoff_.after_failure();
  const milliseconds delay = failure == Failure::kRejected ? settings_.rejected_retry_delay : backoff;
  next_attempt_ = Clock::now() + delay;
  const std::string shown = redact(problem, credentials());
  GST_INFO("%s: retry %u in %lld ms after: %s; %zu records pending", description_.c_str(), backoff_.failures(),
           static_cast<long long>(delay.count()), shown.c_str(), pending());
  // A rejection needs someone to act each time; a run of transient failures is reported once.
  if (failure != Failure::kRejected && backoff_.failures() > 1) return;
  const std::string advice =
      failure == Failure::kRejected ? " (retrying won't help: check the keys, region, stream name and clock)" : "";
  report(description_ + ": PutRecordBatch failed: " + shown + advice + "; " + std::to_string(pending()) +
         " records wait in " + spool_root_.string() + ", next attempt in " + std::to_string(delay.count()) + " ms");
}

void FirehoseUploader::Impl::count_dropped(std::uint64_t records) {
  dropped_ += records;
  add_to_totals(settings_.delivery_stream_name, records, 0);
}

void FirehoseUploader::Impl::count_rejected(std::uint64_t records) {
  rejected_ += records;
  add_to_totals(settings_.delivery_stream_name, 0, records);
}

void FirehoseUploader::Impl::recount(std::int64_t records, std::int64_t bytes) {
  if (records == 0 && bytes == 0) return;
  {
    const std::lock_guard lock(mutex_);
    pending_records_ = static_cast<std::size_t>(static_cast<std::int64_t>(pending_records_) + records);
    spool_bytes_ = static_cast<std::uint64_t>(static_cast<std::int64_t>(spool_bytes_) + bytes);
  }
  spool_changed_.notify_all();
}

Credentials FirehoseUploader::Impl::credentials() const {
  const std::lock_guard lock(credentials_mutex_);
  return credentials_.credentials;
}

// Every message leaves through here, with the keys taken out of what a server may have echoed.
void FirehoseUploader::Impl::report(const std::string& message) const {
  const std::string shown = redact(message, credentials());
  GST_WARNING("%s", shown.c_str());
  if (!on_error_) return;
  try {
    on_error_(shown);
  } catch (...) {
    // A throwing handler must not stop the deliveries.
  }
}

FirehoseUploader::FirehoseUploader(FirehoseSettings settings, ErrorHandler on_error, DeliveredHandler on_delivered)
    : impl_(std::make_unique<Impl>(std::move(settings), std::move(on_error), std::move(on_delivered))) {}

FirehoseUploader::~FirehoseUploader() = default;

void FirehoseUploader::enqueue(std::string record) { impl_->enqueue(std::move(record)); }

bool FirehoseUploader::flush(std::chrono::milliseconds timeout) { return impl_->flush(timeout); }

std::size_t FirehoseUploader::pending() const { return impl_->pending(); }

std::uint64_t FirehoseUploader::dropped() const { return impl_->dropped(); }

std::uint64_t FirehoseUploader::rejected() const { return impl_->rejected(); }

UploadTotals process_upload_totals(const std::string& delivery_stream_name) {
  TotalsRegistry& registry = totals_registry();
  const std::lock_guard lock(registry.mutex);
  const auto found = registry.totals.find(delivery_stream_name);
  return found != registry.totals.end() ? found->second : UploadTotals{};
}

const FirehoseSettings& FirehoseUploader::settings() const { return impl_->settings(); }

}  // namespace emi::aws
