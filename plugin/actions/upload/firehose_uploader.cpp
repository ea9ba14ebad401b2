#include "actions/upload/firehose_uploader.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "actions/upload/aws_sigv4.h"
#include "common/gst_ptr.h"

namespace emi::aws {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kService[] = "firehose";
constexpr char kTarget[] = "Firehose_20150804.PutRecordBatch";
constexpr char kContentType[] = "application/x-amz-json-1.1";
constexpr std::size_t kServiceMaxRecords = 500;
constexpr std::size_t kServiceMaxRequestBytes = 4 * 1024 * 1024;
constexpr std::size_t kServiceMaxRecordBytes = 1000 * 1024;

// Batch files: the magic, then per record its length (32-bit little-endian), the first bytes of
// its SHA-256 (to tell a record cut short by a crash from a whole one) and the data.
constexpr std::string_view kBatchMagic{"EMIFHS1\n", 8};
constexpr std::size_t kChecksumBytes = 4;
constexpr std::size_t kFrameHeaderBytes = 4 + kChecksumBytes;
constexpr char kBatchSuffix[] = ".batch";
constexpr char kRewriteSuffix[] = ".rewrite";
constexpr char kDamagedSuffix[] = ".damaged";
constexpr char kLockName[] = "lock";

// A record in the request body: {"Data":"<base64>"}, and a comma before all but the first.
constexpr std::string_view kRecordOpen = R"({"Data":")";
constexpr std::string_view kRecordClose = R"("})";
constexpr std::string_view kBodyClose = "]}";

// Error types that mean "too fast" or "not now" whatever their HTTP status.
constexpr std::string_view kRetryableErrorTypes[] = {
    "ThrottlingException",   "ThrottledException",     "TooManyRequestsException", "RequestLimitExceeded",
    "LimitExceededException", "ServiceUnavailableException", "InternalFailure",   "RequestTimeout",
    "RequestTimeoutException"};

using CurlEasy = std::unique_ptr<CURL, ReleaseWith<curl_easy_cleanup>>;
using CurlList = std::unique_ptr<curl_slist, ReleaseWith<curl_slist_free_all>>;
using CurlUrl = std::unique_ptr<CURLU, ReleaseWith<curl_url_cleanup>>;
using CurlText = std::unique_ptr<char, ReleaseWith<curl_free>>;

class FileDescriptor {
 public:
  explicit FileDescriptor(int descriptor = -1) : descriptor_(descriptor) {}
  FileDescriptor(FileDescriptor&& other) noexcept : descriptor_(std::exchange(other.descriptor_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
      close();
      descriptor_ = std::exchange(other.descriptor_, -1);
    }
    return *this;
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { close(); }
  int get() const { return descriptor_; }

 private:
  void close() {
    if (descriptor_ >= 0) ::close(descriptor_);
    descriptor_ = -1;
  }
  int descriptor_;
};

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

FileDescriptor open_file(const fs::path& path, int flags) {
  const int descriptor = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (descriptor < 0) throw_errno("cannot open " + path.string());
  return FileDescriptor(descriptor);
}

void write_all(int descriptor, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    const ssize_t written = ::write(descriptor, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write " + path.string());
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
}

void sync_file(int descriptor, const fs::path& path) {
  if (::fdatasync(descriptor) != 0) throw_errno("cannot sync " + path.string());
}

// A created, renamed or removed file is only durable once its directory is synced too.
void sync_directory(const fs::path& directory) {
  const FileDescriptor descriptor = open_file(directory, O_RDONLY | O_DIRECTORY);
  if (::fsync(descriptor.get()) != 0) throw_errno("cannot sync " + directory.string());
}

std::string read_file(const fs::path& path) {
  const FileDescriptor descriptor = open_file(path, O_RDONLY);
  std::string contents;
  char chunk[1 << 16];
  while (true) {
    const ssize_t read = ::read(descriptor.get(), chunk, sizeof chunk);
    if (read < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read " + path.string());
    }
    if (read == 0) return contents;
    contents.append(chunk, static_cast<std::size_t>(read));
  }
}

std::string record_checksum(std::string_view record) { return sha256(record).substr(0, kChecksumBytes); }

std::string encode_frame(std::string_view record) {
  std::string frame;
  frame.reserve(kFrameHeaderBytes + record.size());
  const auto length = static_cast<std::uint32_t>(record.size());
  for (int shift = 0; shift < 32; shift += 8) frame += static_cast<char>((length >> shift) & 0xff);
  frame += record_checksum(record);
  frame += record;
  return frame;
}

struct ParsedBatch {
  std::vector<std::string> records;
  std::size_t damaged_bytes = 0;  // an unreadable tail: a write cut short by a crash, or damage
  bool foreign = false;           // doesn't start as our batch files do
};

ParsedBatch parse_batch(std::string_view contents) {
  ParsedBatch batch;
  if (contents.size() < kBatchMagic.size()) {
    // Created, but the process stopped before the magic was written.
    batch.foreign = kBatchMagic.substr(0, contents.size()) != contents;
    batch.damaged_bytes = contents.size();
    return batch;
  }
  if (contents.substr(0, kBatchMagic.size()) != kBatchMagic) {
    batch.foreign = true;
    return batch;
  }
  for (std::string_view rest = contents.substr(kBatchMagic.size()); !rest.empty();) {
    std::uint32_t length = 0;
    if (rest.size() >= kFrameHeaderBytes)
      for (int i = 3; i >= 0; --i) length = (length << 8) | static_cast<unsigned char>(rest[i]);
    // After a bad frame nothing can be trusted to start where a frame starts.
    if (rest.size() < kFrameHeaderBytes || rest.size() - kFrameHeaderBytes < length ||
        record_checksum(rest.substr(kFrameHeaderBytes, length)) != rest.substr(4, kChecksumBytes)) {
      batch.damaged_bytes = rest.size();
      break;
    }
    batch.records.emplace_back(rest.substr(kFrameHeaderBytes, length));
    rest.remove_prefix(kFrameHeaderBytes + length);
  }
  return batch;
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

// What a record of `data_bytes` adds to the request body.
std::size_t record_body_bytes(std::size_t data_bytes, bool first) {
  return kRecordOpen.size() + base64_size(data_bytes) + kRecordClose.size() + (first ? 0 : 1);
}

std::string body_head(const std::string& delivery_stream_name) {
  return R"({"DeliveryStreamName":)" + json(delivery_stream_name).dump() + R"(,"Records":[)";
}

bool is_valid_stream_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-';
  });
}

bool is_valid_region(const std::string& region) {
  return std::all_of(region.begin(), region.end(), [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

std::string default_endpoint(const std::string& region) {
  const bool china = region.rfind("cn-", 0) == 0;
  return "https://firehose." + region + (china ? ".amazonaws.com.cn/" : ".amazonaws.com/");
}

// Fills `field` from the first of these variables that is set, when it is empty; true if it did.
bool from_environment(std::string& field, std::initializer_list<const char*> variables) {
  if (!field.empty()) return false;
  for (const char* variable : variables) {
    const char* value = std::getenv(variable);
    if (value != nullptr && *value != '\0') {
      field = value;
      return true;
    }
  }
  return false;
}

void require(bool condition, const std::string& message) {
  if (!condition) throw std::invalid_argument("Firehose uploader: " + message);
}

FirehoseSettings resolve(FirehoseSettings settings) {
  const bool key_from_environment = from_environment(settings.access_key, {"AWS_ACCESS_KEY_ID"});
  from_environment(settings.secret_key, {"AWS_SECRET_ACCESS_KEY"});
  // A session token belongs to the key pair it was issued with.
  if (key_from_environment) from_environment(settings.session_token, {"AWS_SESSION_TOKEN"});
  from_environment(settings.region, {"AWS_REGION", "AWS_DEFAULT_REGION"});

  require(is_valid_stream_name(settings.delivery_stream_name),
          "delivery_stream_name '" + settings.delivery_stream_name +
              "' is not a stream name (1 to 64 of A-Z a-z 0-9 _ . -)");
  require(!settings.access_key.empty(), "no access_key: set it or AWS_ACCESS_KEY_ID");
  require(!settings.secret_key.empty(), "no secret_key: set it or AWS_SECRET_ACCESS_KEY");
  require(!settings.region.empty(), "no region: set it, AWS_REGION or AWS_DEFAULT_REGION");
  require(is_valid_region(settings.region), "region '" + settings.region + "' is not a region name (like us-east-1)");
  require(!settings.spool_dir.empty(), "spool_dir is empty");
  require(settings.max_records_per_request >= 1 && settings.max_records_per_request <= kServiceMaxRecords,
          "max_records_per_request must be 1 to 500, is " + std::to_string(settings.max_records_per_request));
  require(settings.max_record_bytes >= 1 && settings.max_record_bytes <= kServiceMaxRecordBytes,
          "max_record_bytes must be 1 to 1024000, is " + std::to_string(settings.max_record_bytes));
  require(settings.max_request_bytes <= kServiceMaxRequestBytes,
          "max_request_bytes must be at most 4 MiB, is " + std::to_string(settings.max_request_bytes));
  const std::size_t largest_request = body_head(settings.delivery_stream_name).size() +
                                      record_body_bytes(settings.max_record_bytes, true) + kBodyClose.size();
  require(largest_request <= settings.max_request_bytes,
          "max_request_bytes (" + std::to_string(settings.max_request_bytes) +
              ") can't hold one record of max_record_bytes (" + std::to_string(settings.max_record_bytes) + ")");
  require(settings.max_spool_bytes >= settings.max_record_bytes, "max_spool_bytes is below max_record_bytes");
  require(settings.batch_delay.count() >= 0, "batch_delay is negative");
  require(settings.retry_delay.count() > 0, "retry_delay must be positive");
  require(settings.max_retry_delay >= settings.retry_delay, "max_retry_delay is below retry_delay");
  require(settings.rejected_retry_delay.count() > 0, "rejected_retry_delay must be positive");
  require(settings.connect_timeout.count() > 0 && settings.request_timeout.count() > 0,
          "connect_timeout and request_timeout must be positive");
  if (settings.endpoint.empty()) settings.endpoint = default_endpoint(settings.region);
  return settings;
}

struct Endpoint {
  std::string url;
  std::string host;  // the Host header: name, and :port when the URL has one
  std::string path;
};

Endpoint parse_endpoint(const std::string& url) {
  const auto invalid = [&url](const std::string& why) {
    return std::invalid_argument("Firehose uploader: endpoint '" + url + "' " + why);
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
  if (scheme != "https" && scheme != "http") throw invalid("must be https:// (or http:// for a local server)");
  if (part(CURLUPART_QUERY) || part(CURLUPART_FRAGMENT)) throw invalid("must not have a query or fragment");
  Endpoint endpoint{url, part(CURLUPART_HOST).value_or(""), part(CURLUPART_PATH).value_or("/")};
  if (const auto port = part(CURLUPART_PORT)) endpoint.host += ':' + *port;
  return endpoint;
}

void initialise_curl() {
  // Once per process, before the first handle; libcurl's global state is never torn down, as
  // other code in the process may use it.
  static const CURLcode result = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (result != CURLE_OK)
    throw std::runtime_error(std::string("Firehose uploader: libcurl failed to initialise: ") +
                             curl_easy_strerror(result));
}

std::size_t append_to_string(char* data, std::size_t size, std::size_t count, void* target) {
  static_cast<std::string*>(target)->append(data, size * count);
  return size * count;
}

int abort_when_stopping(void* stopping, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(stopping)->load() ? 1 : 0;
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

bool is_retryable_type(const std::string& type) {
  return std::find(std::begin(kRetryableErrorTypes), std::end(kRetryableErrorTypes), type) !=
         std::end(kRetryableErrorTypes);
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
  const FirehoseSettings& settings() const { return settings_; }

 private:
  // A batch file waiting to be sent.
  struct Batch {
    std::uint64_t id = 0;
    std::size_t records = 0;     // as last counted
    std::uint64_t bytes = 0;     // of record data
    std::optional<std::vector<std::string>> contents;  // read when it goes into a request
  };
  // The batch file enqueue() appends to.
  struct OpenBatch {
    std::uint64_t id = 0;
    FileDescriptor file;
    std::uint64_t file_bytes = 0;
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
  enum class Verdict { kAnswered, kRetry, kRejected, kStopped };
  struct Attempt {
    Verdict verdict = Verdict::kRetry;
    std::vector<bool> confirmed;  // per entry, when answered
    std::string problem;          // why not all were confirmed
  };

  fs::path batch_path(std::uint64_t id) const;
  std::vector<std::uint64_t> open_spool();
  void configure_curl();

  // enqueue() side, with mutex_ held.
  void append_locked(const std::string& record);
  void open_batch_locked();
  void seal_locked();

  // Worker side.
  void run(const std::vector<std::uint64_t>& leftover_batches);
  void recover(const std::vector<std::uint64_t>& ids);
  bool wait_for_work();
  void send_next_request();
  void load(Batch& batch);
  std::vector<std::string> read_batch(std::uint64_t id);
  void store_batch(std::uint64_t id, const std::vector<std::string>& records);
  Attempt post(const std::string& body, std::size_t records);
  void settle(const std::vector<RequestEntry>& entries, const std::vector<bool>& confirmed);
  void after_failure(Verdict verdict, const std::string& problem);
  milliseconds retry_backoff();
  void recount(std::int64_t records, std::int64_t bytes);
  void report(const std::string& message) const;

  const FirehoseSettings settings_;
  const Credentials credentials_;
  const Endpoint endpoint_;
  const ErrorHandler on_error_;
  const DeliveredHandler on_delivered_;
  const fs::path spool_dir_;
  const std::string body_head_;
  const std::string description_;  // "Firehose stream 'name' at URL", for messages
  FileDescriptor spool_lock_;

  mutable std::mutex mutex_;
  std::condition_variable worker_wake_;
  std::condition_variable spool_changed_;
  // Guarded by mutex_ (stopping_ is also read by libcurl's progress callback).
  std::atomic<bool> stopping_{false};
  std::optional<OpenBatch> open_;
  std::deque<Batch> sealed_;      // closed batches the worker hasn't taken yet, oldest first
  std::uint64_t next_batch_id_ = 1;
  std::size_t pending_records_ = 0;
  std::uint64_t spool_bytes_ = 0;
  bool recovered_ = false;        // the batches an earlier uploader left are counted
  unsigned flush_waiters_ = 0;

  // The worker's own.
  std::deque<Batch> outbox_;      // batches to send, oldest first
  CurlEasy curl_;
  char curl_error_[CURL_ERROR_SIZE] = {};
  unsigned consecutive_failures_ = 0;
  Clock::time_point next_attempt_;
  std::mt19937 random_{std::random_device{}()};

  std::thread worker_;  // last: starts once everything above exists
};

FirehoseUploader::Impl::Impl(FirehoseSettings settings, ErrorHandler on_error, DeliveredHandler on_delivered)
    : settings_(resolve(std::move(settings))),
      credentials_{settings_.access_key, settings_.secret_key, settings_.session_token},
      endpoint_(parse_endpoint(settings_.endpoint)),
      on_error_(std::move(on_error)),
      on_delivered_(std::move(on_delivered)),
      spool_dir_(settings_.spool_dir),
      body_head_(body_head(settings_.delivery_stream_name)),
      description_("Firehose stream '" + settings_.delivery_stream_name + "' at " + settings_.endpoint) {
  initialise_curl();
  curl_.reset(curl_easy_init());
  if (!curl_) throw std::runtime_error("Firehose uploader: libcurl can't make a handle");
  configure_curl();
  std::vector<std::uint64_t> leftover_batches = open_spool();
  if (!leftover_batches.empty()) next_batch_id_ = leftover_batches.back() + 1;
  worker_ = std::thread([this, leftover = std::move(leftover_batches)] { run(leftover); });
}

FirehoseUploader::Impl::~Impl() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  worker_wake_.notify_all();
  worker_.join();
}

fs::path FirehoseUploader::Impl::batch_path(std::uint64_t id) const {
  char name[32];
  std::snprintf(name, sizeof name, "%020" PRIu64 "%s", id, kBatchSuffix);
  return spool_dir_ / name;
}

// Creates and locks the spool directory; the ids of the batches left there, oldest first.
std::vector<std::uint64_t> FirehoseUploader::Impl::open_spool() {
  const auto fail = [this](const std::string& why) {
    return std::runtime_error("Firehose uploader: spool_dir " + spool_dir_.string() + ": " + why);
  };
  std::error_code error;
  fs::create_directories(spool_dir_, error);
  if (error) throw fail("cannot create it: " + error.message());
  const fs::path lock_path = spool_dir_ / kLockName;
  const int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0) throw fail("cannot open " + lock_path.string() + ": " + std::strerror(errno));
  spool_lock_ = FileDescriptor(lock);
  // Two uploaders on one spool would send its records twice.
  if (::flock(lock, LOCK_EX | LOCK_NB) != 0)
    throw fail(errno == EWOULDBLOCK ? "another Firehose uploader is using it" : std::strerror(errno));

  std::vector<std::uint64_t> ids;
  for (const fs::directory_entry& entry : fs::directory_iterator(spool_dir_, error)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() == kRewriteSuffix) {
      // A rewrite the process didn't finish: the batch file it was to replace is still whole.
      fs::remove(entry.path(), error);
      continue;
    }
    const std::string stem = entry.path().stem().string();
    if (entry.path().extension() == kBatchSuffix && !stem.empty() &&
        std::all_of(stem.begin(), stem.end(), [](unsigned char c) { return std::isdigit(c); }))
      ids.push_back(std::stoull(stem));
  }
  if (error) throw fail("cannot list it: " + error.message());
  std::sort(ids.begin(), ids.end());
  return ids;
}

void FirehoseUploader::Impl::configure_curl() {
  CURL* curl = curl_.get();
  curl_easy_setopt(curl, CURLOPT_URL, endpoint_.url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // a worker thread: no SIGALRM for DNS timeouts
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(settings_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(settings_.request_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "emi/" EMI_VERSION);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_to_string);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error_);
  // The destructor must not wait for a request_timeout: the progress callback aborts.
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, abort_when_stopping);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &stopping_);
}

void FirehoseUploader::Impl::enqueue(std::string record) {
  record += '\n';
  if (record.size() > settings_.max_record_bytes) {
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
      problem = "the spool " + spool_dir_.string() + " holds " + std::to_string(spool_bytes_) +
                " bytes of records not yet delivered, max_spool_bytes is " + std::to_string(settings_.max_spool_bytes);
    } else {
      try {
        const std::size_t sealed_before = sealed_.size();
        append_locked(record);
        ++pending_records_;
        spool_bytes_ += record.size();
        // The worker needs to know when a batch starts (its delay runs) or is full.
        wake_worker = sealed_.size() != sealed_before || (open_ && open_->records == 1);
      } catch (const std::exception& error) {
        problem = error.what();
      }
    }
  }
  if (!problem.empty()) report(description_ + ": a record could not be spooled (" + problem + "): dropped");
  if (wake_worker) worker_wake_.notify_one();
}

void FirehoseUploader::Impl::append_locked(const std::string& record) {
  if (open_ && (open_->records == settings_.max_records_per_request ||
                open_->body_bytes + record_body_bytes(record.size(), false) > settings_.max_request_bytes))
    seal_locked();
  if (!open_) open_batch_locked();
  const fs::path path = batch_path(open_->id);
  try {
    write_all(open_->file.get(), encode_frame(record), path);
    sync_file(open_->file.get(), path);
  } catch (const std::exception&) {
    // Cut off a partial record so the file stays whole records, and start a new file next time
    // in case that failed too.
    if (::ftruncate(open_->file.get(), static_cast<off_t>(open_->file_bytes)) == 0) ::fdatasync(open_->file.get());
    seal_locked();
    throw;
  }
  const bool first = open_->records == 0;
  if (first) open_->first_record = Clock::now();
  open_->file_bytes += kFrameHeaderBytes + record.size();
  open_->records += 1;
  open_->record_bytes += record.size();
  open_->body_bytes += record_body_bytes(record.size(), first);
  if (open_->records == settings_.max_records_per_request) seal_locked();
}

void FirehoseUploader::Impl::open_batch_locked() {
  const std::uint64_t id = next_batch_id_++;
  const fs::path path = batch_path(id);
  FileDescriptor file = open_file(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND);
  try {
    write_all(file.get(), kBatchMagic, path);
    sync_file(file.get(), path);
    sync_directory(spool_dir_);
  } catch (const std::exception&) {
    std::error_code ignored;  // the first error is the one to report
    fs::remove(path, ignored);
    throw;
  }
  open_.emplace();
  open_->id = id;
  open_->file = std::move(file);
  open_->file_bytes = kBatchMagic.size();
  open_->body_bytes = body_head_.size() + kBodyClose.size();
}

void FirehoseUploader::Impl::seal_locked() {
  if (open_->records == 0) {
    std::error_code ignored;  // an empty batch file left behind is skipped when read
    fs::remove(batch_path(open_->id), ignored);
  } else {
    sealed_.push_back(Batch{open_->id, open_->records, open_->record_bytes, std::nullopt});
  }
  open_.reset();
}

bool FirehoseUploader::Impl::flush(milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ++flush_waiters_;
  worker_wake_.notify_one();
  const bool empty = spool_changed_.wait_for(lock, timeout, [this] { return recovered_ && pending_records_ == 0; });
  --flush_waiters_;
  return empty;
}

std::size_t FirehoseUploader::Impl::pending() const {
  const std::lock_guard lock(mutex_);
  return pending_records_;
}

void FirehoseUploader::Impl::run(const std::vector<std::uint64_t>& leftover_batches) {
  recover(leftover_batches);
  while (wait_for_work()) {
    try {
      send_next_request();
    } catch (const std::exception& error) {
      // Spool I/O failed, or memory ran out: nothing was confirmed, so try again later.
      after_failure(Verdict::kRetry, error.what());
    }
  }
}

// Counts the records an earlier uploader left, checking (and repairing) their files on the way.
void FirehoseUploader::Impl::recover(const std::vector<std::uint64_t>& ids) {
  for (const std::uint64_t id : ids) {
    if (stopping_) break;
    Batch batch{id, 0, 0, std::nullopt};
    bool readable = true;
    try {
      load(batch);
    } catch (const std::exception& error) {
      readable = false;
      report(description_ + ": spool batch " + batch_path(id).string() + " can't be read now (" + error.what() +
             "); trying again when sending");
    }
    batch.contents.reset();  // read again when sent: a long outage may have left a lot
    if (!readable || batch.records > 0) outbox_.push_back(std::move(batch));
  }
  {
    const std::lock_guard lock(mutex_);
    recovered_ = true;
  }
  spool_changed_.notify_all();
}

bool FirehoseUploader::Impl::wait_for_work() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const Clock::time_point now = Clock::now();
    if (open_ && open_->records > 0 && (flush_waiters_ > 0 || now >= open_->first_record + settings_.batch_delay))
      seal_locked();
    for (; !sealed_.empty(); sealed_.pop_front()) outbox_.push_back(std::move(sealed_.front()));
    if (!outbox_.empty() && now >= next_attempt_) return true;
    if (!outbox_.empty())
      worker_wake_.wait_until(lock, next_attempt_);
    else if (open_ && open_->records > 0)
      worker_wake_.wait_until(lock, open_->first_record + settings_.batch_delay);
    else
      worker_wake_.wait(lock);
  }
  return false;
}

// Sends the oldest records that fit one request and settles the answer.
void FirehoseUploader::Impl::send_next_request() {
  std::vector<RequestEntry> entries;
  std::string body = body_head_;
  bool request_full = false;
  for (std::size_t index = 0; index < outbox_.size() && !request_full;) {
    Batch& batch = outbox_[index];
    if (!batch.contents) load(batch);
    if (batch.contents->empty()) {
      outbox_.erase(outbox_.begin() + static_cast<std::ptrdiff_t>(index));
      continue;
    }
    for (std::size_t record = 0; record < batch.contents->size(); ++record) {
      const std::string& data = (*batch.contents)[record];
      if (entries.size() == settings_.max_records_per_request ||
          body.size() + record_body_bytes(data.size(), entries.empty()) + kBodyClose.size() >
              settings_.max_request_bytes) {
        request_full = true;
        break;
      }
      if (!entries.empty()) body += ',';
      body += kRecordOpen;
      append_base64(body, data);
      body += kRecordClose;
      entries.push_back({index, record});
    }
    ++index;
  }
  body += kBodyClose;
  if (entries.empty()) return;

  const Attempt attempt = post(body, entries.size());
  if (attempt.verdict == Verdict::kStopped) return;
  if (attempt.verdict == Verdict::kAnswered) settle(entries, attempt.confirmed);
  if (attempt.problem.empty()) {
    consecutive_failures_ = 0;
    next_attempt_ = Clock::now();
  } else {
    after_failure(attempt.verdict == Verdict::kAnswered ? Verdict::kRetry : attempt.verdict, attempt.problem);
  }
}

// Reads the batch's records, and counts them anew.
void FirehoseUploader::Impl::load(Batch& batch) {
  std::vector<std::string> records = read_batch(batch.id);
  std::uint64_t bytes = 0;
  for (const std::string& record : records) bytes += record.size();
  recount(static_cast<std::int64_t>(records.size()) - static_cast<std::int64_t>(batch.records),
          static_cast<std::int64_t>(bytes) - static_cast<std::int64_t>(batch.bytes));
  batch.records = records.size();
  batch.bytes = bytes;
  batch.contents = std::move(records);
}

// The records of a batch file that can be sent. What can't (a tail cut short by a crash, a
// record over max_record_bytes, a file that isn't a batch) is reported and leaves the spool.
std::vector<std::string> FirehoseUploader::Impl::read_batch(std::uint64_t id) {
  const fs::path path = batch_path(id);
  if (!fs::exists(path)) {
    report(description_ + ": spool batch " + path.string() + " was removed by someone else; its records are lost");
    return {};
  }
  ParsedBatch parsed = parse_batch(read_file(path));
  if (parsed.foreign) {
    const fs::path aside = path.string() + kDamagedSuffix;
    fs::rename(path, aside);
    report(description_ + ": " + path.string() + " is not a spool batch file; moved to " + aside.string() +
           ", not sent");
    return {};
  }
  std::vector<std::string>& records = parsed.records;
  const std::size_t whole_records = records.size();
  records.erase(std::remove_if(records.begin(), records.end(),
                               [this](const std::string& record) { return record.size() > settings_.max_record_bytes; }),
                records.end());
  const std::size_t oversized = whole_records - records.size();
  if (parsed.damaged_bytes > 0)
    report(description_ + ": the last " + std::to_string(parsed.damaged_bytes) + " bytes of " + path.string() +
           " are not a whole record (a write cut short when the process stopped, or damage): dropped");
  if (oversized > 0)
    report(description_ + ": " + std::to_string(oversized) + " records in " + path.string() +
           " are over max_record_bytes (" + std::to_string(settings_.max_record_bytes) + "): dropped, not sent");
  // A file with no records left (or none ever: created just before the process stopped) goes.
  if (parsed.damaged_bytes > 0 || oversized > 0 || records.empty()) store_batch(id, records);
  return std::move(records);
}

// Replaces a batch file with these records (atomically), or removes it when there are none.
void FirehoseUploader::Impl::store_batch(std::uint64_t id, const std::vector<std::string>& records) {
  const fs::path path = batch_path(id);
  if (records.empty()) {
    fs::remove(path);
  } else {
    fs::path rewrite = path;
    rewrite += kRewriteSuffix;
    std::string contents(kBatchMagic);
    for (const std::string& record : records) contents += encode_frame(record);
    const FileDescriptor file = open_file(rewrite, O_WRONLY | O_CREAT | O_TRUNC);
    write_all(file.get(), contents, rewrite);
    sync_file(file.get(), rewrite);
    fs::rename(rewrite, path);
  }
  sync_directory(spool_dir_);
}

FirehoseUploader::Impl::Attempt FirehoseUploader::Impl::post(const std::string& body, std::size_t records) {
  Request request;
  request.method = "POST";
  request.host = endpoint_.host;
  request.path = endpoint_.path;
  request.headers = {{"Content-Type", kContentType}, {"X-Amz-Target", kTarget}};
  request.payload = body;
  const Signature signature =
      sign(request, credentials_, {settings_.region, kService, false}, std::chrono::system_clock::now());

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

  std::string answer_text;
  CURL* curl = curl_.get();
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer_text);
  curl_error_[0] = '\0';
  const CURLcode transfer = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);

  Attempt attempt;
  if (transfer == CURLE_ABORTED_BY_CALLBACK && stopping_) {
    attempt.verdict = Verdict::kStopped;
    return attempt;
  }
  if (transfer != CURLE_OK) {
    attempt.problem = std::string("no answer: ") + (curl_error_[0] != '\0' ? curl_error_ : curl_easy_strerror(transfer));
    return attempt;
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  const json answer = json::parse(answer_text, nullptr, false);
  if (status != 200) {
    const std::string type = error_type_of(answer);
    const std::string message = error_message_of(answer);
    attempt.problem = "HTTP " + std::to_string(status) + (type.empty() ? "" : " " + type) +
                      (message.empty() ? "" : ": " + message);
    const bool retryable = status >= 500 || status == 429 || is_retryable_type(type);
    attempt.verdict = retryable ? Verdict::kRetry : Verdict::kRejected;
    return attempt;
  }
  const json* responses = answer.is_object() && answer.contains("RequestResponses") ? &answer["RequestResponses"] : nullptr;
  if (responses == nullptr || !responses->is_array() || responses->size() != records) {
    attempt.problem = "an answer without one RequestResponses entry per record: " + answer_text.substr(0, 200);
    return attempt;
  }
  attempt.verdict = Verdict::kAnswered;
  std::size_t failed = 0;
  std::string first_error;
  for (const json& entry : *responses) {
    const bool confirmed = entry.is_object() && entry.contains("RecordId") && !entry.contains("ErrorCode");
    attempt.confirmed.push_back(confirmed);
    if (confirmed) continue;
    if (failed++ == 0) first_error = text_field(entry, "ErrorCode") + ": " + text_field(entry, "ErrorMessage");
  }
  if (failed > 0)
    attempt.problem = std::to_string(failed) + " of " + std::to_string(records) + " records failed (" + first_error + ")";
  return attempt;
}

// Removes the records Firehose confirmed from their batch files, then from the counts.
void FirehoseUploader::Impl::settle(const std::vector<RequestEntry>& entries, const std::vector<bool>& confirmed) {
  // The request took its records from the first batches of the outbox, in order.
  const std::size_t touched = entries.back().batch + 1;
  std::vector<std::vector<bool>> done(touched);
  for (std::size_t index = 0; index < touched; ++index) done[index].assign(outbox_[index].contents->size(), false);
  std::size_t delivered = 0;
  std::uint64_t delivered_bytes = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!confirmed[i]) continue;
    done[entries[i].batch][entries[i].record] = true;
    ++delivered;
    delivered_bytes += (*outbox_[entries[i].batch].contents)[entries[i].record].size();
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
    try {
      store_batch(batch.id, remaining);
    } catch (const std::exception& error) {
      report(description_ + ": records Firehose confirmed could not be removed from the spool (" + error.what() +
             "); a later uploader on " + spool_dir_.string() + " will send them again");
    }
    if (remaining.empty()) {
      outbox_.erase(outbox_.begin() + static_cast<std::ptrdiff_t>(index));
    } else {
      batch.records = remaining.size();
      batch.bytes = remaining_bytes;
      batch.contents = std::move(remaining);
    }
  }
  // Before the counts drop, so that a flush() that returns has seen every on_delivered call.
  if (delivered > 0 && on_delivered_) {
    try {
      on_delivered_(delivered);
    } catch (...) {
      // A throwing handler must not stop the deliveries.
    }
  }
  recount(-static_cast<std::int64_t>(delivered), -static_cast<std::int64_t>(delivered_bytes));
}

void FirehoseUploader::Impl::after_failure(Verdict verdict, const std::string& problem) {
  ++consecutive_failures_;
  const milliseconds delay = verdict == Verdict::kRejected ? settings_.rejected_retry_delay : retry_backoff();
  next_attempt_ = Clock::now() + delay;
  // A rejection needs someone to act each time; a run of transient failures is reported once.
  if (verdict != Verdict::kRejected && consecutive_failures_ > 1) return;
  const std::string advice =
      verdict == Verdict::kRejected ? " (retrying won't help: check the keys, region, stream name and clock)" : "";
  report(description_ + ": PutRecordBatch failed: " + problem + advice + "; " + std::to_string(pending()) +
         " records wait in " + spool_dir_.string() + ", next attempt in " + std::to_string(delay.count()) + " ms");
}

// Exponential back-off, capped, with "equal jitter": half fixed, half random, so that devices
// that failed together don't retry together.
milliseconds FirehoseUploader::Impl::retry_backoff() {
  const unsigned doublings = std::min(consecutive_failures_ - 1, 20u);
  const milliseconds ceiling = std::min(settings_.max_retry_delay, settings_.retry_delay * (std::int64_t{1} << doublings));
  const milliseconds half = ceiling / 2;
  std::uniform_int_distribution<milliseconds::rep> extra(0, (ceiling - half).count());
  return half + milliseconds(extra(random_));
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

void FirehoseUploader::Impl::report(const std::string& message) const {
  if (!on_error_) return;
  try {
    on_error_(message);
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

const FirehoseSettings& FirehoseUploader::settings() const { return impl_->settings(); }

}  // namespace emi::aws
