// FirehoseUploader against tests/firehose_server.py, a local Firehose that checks each request's
// SigV4 signature with botocore: batching limits, partial failures, rejections, outages, what a
// crash leaves in the spool, and settings from the environment.
#include <glib.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actions/upload/firehose_uploader.h"

namespace emi::aws {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using testing::ElementsAre;
using testing::HasSubstr;

constexpr char kStream[] = "emi-test-stream";
constexpr char kRegion[] = "eu-west-1";
constexpr char kAccessKey[] = "AKIAEMITESTKEY000001";
constexpr char kSecretKey[] = "emi/test/secret+key/0123456789abcdefghij";
constexpr milliseconds kPatience{20'000};  // waits that end far sooner when all is well
constexpr std::size_t kFourMiB = 4 * 1024 * 1024;

// A directory of its own, removed at the end. In RAM where there is a RAM disk: the spool syncs
// every record, which a busy disk makes take milliseconds, and these tests check behaviour, not
// the disk.
class ScratchDirectory {
 public:
  ScratchDirectory() {
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string pattern = (base / "emi-firehose-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~ScratchDirectory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<json> read_json_lines(const fs::path& path) {
  std::vector<json> entries;
  std::ifstream file(path);
  for (std::string line; std::getline(file, line);)
    if (!line.empty()) entries.push_back(json::parse(line));
  return entries;
}

// tests/firehose_server.py on a free port of 127.0.0.1, writing its logs into `directory`;
// stopped on destruction.
class FirehoseServer {
 public:
  explicit FirehoseServer(const fs::path& directory, std::vector<std::string> flags = {})
      : records_file_(directory / "records.jsonl"), requests_file_(directory / "requests.jsonl") {
    fs::create_directories(directory);
    const char* script = std::getenv("EMI_TEST_SERVER");
    std::vector<std::string> arguments = {EMI_PYTHON_EXECUTABLE, script != nullptr ? script : "tests/firehose_server.py",
                                          "--stream", kStream, "--region", kRegion, "--access-key", kAccessKey,
                                          "--secret-key", kSecretKey, "--records", records_file_.string(),
                                          "--requests", requests_file_.string()};
    arguments.insert(arguments.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (std::string& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    GError* raw_error = nullptr;
    if (!g_spawn_async_with_pipes(nullptr, argv.data(), nullptr, G_SPAWN_DO_NOT_REAP_CHILD, nullptr, nullptr, &pid_,
                                  nullptr, &output_, nullptr, &raw_error)) {
      g_autoptr(GError) error = raw_error;
      throw std::runtime_error(std::string("cannot start the Firehose test server: ") + error->message);
    }
    port_ = read_port();
  }
  ~FirehoseServer() {
    stop();
    ::close(output_);
  }
  FirehoseServer(const FirehoseServer&) = delete;
  FirehoseServer& operator=(const FirehoseServer&) = delete;

  // From now on, connections to its port are refused.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    g_spawn_close_pid(pid_);
    pid_ = 0;
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  // Every request: {"request", "status", "records", "failed", "body_bytes"} or {…, "error"}.
  std::vector<json> requests() const { return read_json_lines(requests_file_); }
  // Every accepted record: {"request": its request's number, "data": the record}.
  std::vector<json> records() const { return read_json_lines(records_file_); }

 private:
  int read_port() {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (line.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd readable{output_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&readable, 1, static_cast<int>(left.count())) <= 0)
        throw std::runtime_error("the Firehose test server did not say its port");
      char chunk[64];
      const ssize_t read = ::read(output_, chunk, sizeof chunk);
      if (read <= 0) throw std::runtime_error("the Firehose test server stopped before saying its port");
      line.append(chunk, static_cast<std::size_t>(read));
    }
    return std::stoi(line);
  }

  fs::path records_file_;
  fs::path requests_file_;
  GPid pid_ = 0;
  int output_ = -1;
  int port_ = 0;
};

// What the uploader said through its callbacks.
class Reports {
 public:
  FirehoseUploader::ErrorHandler error_handler() {
    return [this](const std::string& message) {
      const std::lock_guard lock(mutex_);
      errors_.push_back(message);
      changed_.notify_all();
    };
  }
  FirehoseUploader::DeliveredHandler delivered_handler() {
    return [this](std::size_t records) {
      const std::lock_guard lock(mutex_);
      delivered_ += records;
    };
  }
  // Whether `count` errors came within kPatience.
  bool wait_for_errors(std::size_t count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return errors_.size() >= count; });
  }
  std::vector<std::string> errors() const {
    const std::lock_guard lock(mutex_);
    return errors_;
  }
  std::size_t delivered() const {
    const std::lock_guard lock(mutex_);
    return delivered_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> errors_;
  std::size_t delivered_ = 0;
};

// Sets (or, for nullopt, unsets) environment variables; restores them on destruction.
class ScopedEnvironment {
 public:
  explicit ScopedEnvironment(const std::map<std::string, std::optional<std::string>>& variables) {
    for (const auto& [name, value] : variables) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old != nullptr ? std::optional<std::string>(old) : std::nullopt;
      set(name, value);
    }
  }
  ~ScopedEnvironment() {
    for (const auto& [name, value] : saved_) set(name, value);
  }

 private:
  static void set(const std::string& name, const std::optional<std::string>& value) {
    if (value)
      ::setenv(name.c_str(), value->c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
  std::map<std::string, std::optional<std::string>> saved_;
};

std::string event(int n, std::size_t padding = 0) {
  return json{{"n", n}, {"predicted_class", "black swan"}, {"padding", std::string(padding, 'x')}}.dump();
}

// How many times each event arrived, by its "n".
std::map<int, int> arrivals(const std::vector<json>& records) {
  std::map<int, int> counts;
  for (const json& record : records) {
    const std::string data = record.at("data");
    EXPECT_EQ(data.back(), '\n') << "each record is one line";
    ++counts[json::parse(data).at("n").get<int>()];
  }
  return counts;
}

std::map<int, int> once_each(int count) {
  std::map<int, int> counts;
  for (int n = 0; n < count; ++n) counts[n] = 1;
  return counts;
}

std::vector<std::size_t> records_per_request(const std::vector<json>& requests) {
  std::vector<std::size_t> counts;
  for (const json& request : requests) counts.push_back(request.value("records", std::size_t{0}));
  return counts;
}

std::vector<std::string> spool_contents(const fs::path& spool) {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(spool)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

class FirehoseUploaderTest : public testing::Test {
 protected:
  // Small back-offs, so that retries happen within the test.
  FirehoseSettings settings_for(const std::string& endpoint) const {
    FirehoseSettings settings;
    settings.delivery_stream_name = kStream;
    settings.access_key = kAccessKey;
    settings.secret_key = kSecretKey;
    settings.region = kRegion;
    settings.endpoint = endpoint;
    settings.spool_dir = spool.string();
    settings.batch_delay = milliseconds(10);
    settings.retry_delay = milliseconds(10);
    settings.max_retry_delay = milliseconds(50);
    settings.rejected_retry_delay = milliseconds(50);
    settings.connect_timeout = milliseconds(2'000);
    settings.request_timeout = milliseconds(10'000);
    return settings;
  }
  // Batches go only when full or flushed, so requests have a known shape.
  FirehoseSettings flushed_settings_for(const std::string& endpoint) const {
    FirehoseSettings settings = settings_for(endpoint);
    settings.batch_delay = std::chrono::hours(1);
    return settings;
  }
  std::unique_ptr<FirehoseUploader> make_uploader(const FirehoseSettings& settings) {
    return std::make_unique<FirehoseUploader>(settings, reports.error_handler(), reports.delivered_handler());
  }
  // The endpoint of a server that has stopped: connections are refused.
  std::string unreachable_endpoint() {
    FirehoseServer server(scratch.path() / "stopped");
    return server.endpoint();
  }

  ScratchDirectory scratch;
  fs::path spool = scratch.path() / "spool";
  Reports reports;
};

TEST_F(FirehoseUploaderTest, SendsAtMost500RecordsPerRequestAndDropsOversizedRecords) {
  FirehoseServer server(scratch.path() / "server");
  auto uploader = make_uploader(flushed_settings_for(server.endpoint()));
  for (int n = 0; n < 1200; ++n) {
    uploader->enqueue(event(n));
    if (n == 600) uploader->enqueue(event(-1, 1100 * 1024));
  }
  EXPECT_EQ(reports.errors().size(), 1u) << "the 1,100 KiB record is reported when enqueued";

  ASSERT_TRUE(uploader->flush(kPatience));

  EXPECT_THAT(records_per_request(server.requests()), ElementsAre(500, 500, 200));
  EXPECT_EQ(arrivals(server.records()), once_each(1200));
  EXPECT_EQ(reports.delivered(), 1200u);
  EXPECT_EQ(reports.errors().size(), 1u);
  EXPECT_EQ(uploader->pending(), 0u);
  EXPECT_THAT(spool_contents(spool), ElementsAre("lock"));
}

TEST_F(FirehoseUploaderTest, KeepsEachRequestWithin4MiB) {
  FirehoseServer server(scratch.path() / "server");
  auto uploader = make_uploader(flushed_settings_for(server.endpoint()));
  // 900 KiB each: base64 makes three 3.6 MB, four would be 4.9 MB.
  for (int n = 0; n < 7; ++n) uploader->enqueue(event(n, 900 * 1024));

  ASSERT_TRUE(uploader->flush(kPatience));

  const std::vector<json> requests = server.requests();
  EXPECT_THAT(records_per_request(requests), ElementsAre(3, 3, 1));
  for (const json& request : requests) EXPECT_LE(request.at("body_bytes").get<std::size_t>(), kFourMiB);
  EXPECT_EQ(arrivals(server.records()), once_each(7));
  EXPECT_TRUE(reports.errors().empty());
}

TEST_F(FirehoseUploaderTest, ResendsOnlyTheRecordsThatFailed) {
  FirehoseServer server(scratch.path() / "server", {"--fail-records", "3"});
  auto uploader = make_uploader(flushed_settings_for(server.endpoint()));
  for (int n = 0; n < 10; ++n) uploader->enqueue(event(n));

  ASSERT_TRUE(uploader->flush(kPatience));

  const std::vector<json> requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].at("records"), 10);
  EXPECT_EQ(requests[0].at("failed"), 3);
  EXPECT_EQ(requests[1].at("records"), 3);
  EXPECT_EQ(requests[1].at("failed"), 0);
  const std::vector<json> records = server.records();
  EXPECT_EQ(arrivals(records), once_each(10));
  for (const json& record : records) {
    const int n = json::parse(record.at("data").get<std::string>()).at("n");
    EXPECT_EQ(record.at("request"), n < 3 ? 2 : 1) << "event " << n;
  }
  EXPECT_EQ(reports.delivered(), 10u);
  EXPECT_EQ(reports.errors().size(), 1u) << "a run of failures is reported once";
}

TEST_F(FirehoseUploaderTest, ReportsARejectedSignatureAndKeepsTheRecords) {
  FirehoseServer server(scratch.path() / "server");
  FirehoseSettings settings = settings_for(server.endpoint());
  settings.secret_key = "not-the-secret-key";
  {
    auto uploader = make_uploader(settings);
    for (int n = 0; n < 5; ++n) uploader->enqueue(event(n));
    ASSERT_TRUE(reports.wait_for_errors(1));
    EXPECT_THAT(reports.errors().front(), HasSubstr("HTTP 403 InvalidSignatureException"));
    EXPECT_EQ(uploader->pending(), 5u);
  }
  EXPECT_TRUE(server.records().empty());
  for (const json& request : server.requests()) EXPECT_EQ(request.at("status"), 403);

  settings.secret_key = kSecretKey;
  auto uploader = make_uploader(settings);
  ASSERT_TRUE(uploader->flush(kPatience));
  EXPECT_EQ(arrivals(server.records()), once_each(5));
}

TEST_F(FirehoseUploaderTest, AnOutageLosesNothing) {
  {
    auto uploader = make_uploader(settings_for(unreachable_endpoint()));
    for (int n = 0; n < 20; ++n) uploader->enqueue(event(n));
    ASSERT_TRUE(reports.wait_for_errors(1));
    EXPECT_EQ(uploader->pending(), 20u);
  }

  FirehoseServer server(scratch.path() / "server");
  auto uploader = make_uploader(settings_for(server.endpoint()));
  ASSERT_TRUE(uploader->flush(kPatience));

  EXPECT_EQ(arrivals(server.records()), once_each(20));
  EXPECT_EQ(reports.delivered(), 20u);
  EXPECT_EQ(reports.errors().size(), 1u) << "the outage is reported once";
}

TEST_F(FirehoseUploaderTest, RecoversWhatACrashLeftAndSendsNothingTwice) {
  {
    auto uploader = make_uploader(settings_for(unreachable_endpoint()));
    for (int n = 0; n < 3; ++n) uploader->enqueue(event(n));
    ASSERT_TRUE(reports.wait_for_errors(1));
  }
  std::vector<std::string> batches = spool_contents(spool);
  ASSERT_GE(batches.size(), 2u);  // the lock, and at least one batch
  // What a crash can leave: a record cut short at the end of a batch, a batch created just
  // before, a rewrite not finished.
  std::ofstream(spool / batches[batches.size() - 2], std::ios::app | std::ios::binary) << std::string("\x10\0\0\0ab", 6);
  std::ofstream(spool / "00000000000000000098.batch");
  std::ofstream(spool / "00000000000000000001.batch.rewrite") << "partial";

  FirehoseServer server(scratch.path() / "server");
  {
    auto uploader = make_uploader(settings_for(server.endpoint()));
    ASSERT_TRUE(uploader->flush(kPatience));
  }
  EXPECT_EQ(arrivals(server.records()), once_each(3));
  const std::vector<std::string> errors = reports.errors();
  ASSERT_EQ(errors.size(), 2u) << "the outage, then the record cut short";
  EXPECT_THAT(errors[1], HasSubstr(batches[batches.size() - 2]));
  EXPECT_THAT(spool_contents(spool), ElementsAre("lock"));

  const std::size_t requests = server.requests().size();
  auto uploader = make_uploader(settings_for(server.endpoint()));
  EXPECT_TRUE(uploader->flush(kPatience));
  EXPECT_EQ(uploader->pending(), 0u);
  EXPECT_EQ(server.requests().size(), requests);
}

TEST_F(FirehoseUploaderTest, TakesKeysAndRegionFromTheEnvironment) {
  const ScopedEnvironment environment({{"AWS_ACCESS_KEY_ID", kAccessKey},
                                       {"AWS_SECRET_ACCESS_KEY", kSecretKey},
                                       {"AWS_SESSION_TOKEN", "test-session-token"},
                                       {"AWS_REGION", std::nullopt},
                                       {"AWS_DEFAULT_REGION", kRegion}});
  FirehoseServer server(scratch.path() / "server", {"--session-token", "test-session-token"});
  FirehoseSettings settings = settings_for(server.endpoint());
  settings.access_key.clear();
  settings.secret_key.clear();
  settings.region.clear();
  auto uploader = make_uploader(settings);
  EXPECT_EQ(uploader->settings().access_key, kAccessKey);
  EXPECT_EQ(uploader->settings().session_token, "test-session-token");
  EXPECT_EQ(uploader->settings().region, kRegion);

  uploader->enqueue(event(0));
  ASSERT_TRUE(uploader->flush(kPatience));
  EXPECT_EQ(arrivals(server.records()), once_each(1));
}

TEST_F(FirehoseUploaderTest, PrefersAwsRegionAndIgnoresTheTokenOfOtherKeys) {
  const ScopedEnvironment environment({{"AWS_SESSION_TOKEN", "token-of-the-environment's-keys"},
                                       {"AWS_REGION", "ap-northeast-1"},
                                       {"AWS_DEFAULT_REGION", kRegion}});
  FirehoseSettings settings = settings_for("");
  settings.region.clear();
  const FirehoseUploader uploader(settings, reports.error_handler());
  EXPECT_EQ(uploader.settings().region, "ap-northeast-1");
  EXPECT_EQ(uploader.settings().endpoint, "https://firehose.ap-northeast-1.amazonaws.com/");
  EXPECT_EQ(uploader.settings().session_token, "");
}

TEST_F(FirehoseUploaderTest, DefaultEndpointInChina) {
  FirehoseSettings settings = settings_for("");
  settings.region = "cn-north-1";
  const FirehoseUploader uploader(settings, reports.error_handler());
  EXPECT_EQ(uploader.settings().endpoint, "https://firehose.cn-north-1.amazonaws.com.cn/");
}

TEST_F(FirehoseUploaderTest, NamesTheSettingThatIsMissingOrInvalid) {
  const ScopedEnvironment environment({{"AWS_ACCESS_KEY_ID", std::nullopt},
                                       {"AWS_SECRET_ACCESS_KEY", std::nullopt},
                                       {"AWS_REGION", std::nullopt},
                                       {"AWS_DEFAULT_REGION", std::nullopt}});
  const auto error_of = [this](const std::function<void(FirehoseSettings&)>& change) -> std::string {
    FirehoseSettings settings = settings_for("");
    change(settings);
    try {
      const FirehoseUploader uploader(settings, reports.error_handler());
    } catch (const std::invalid_argument& error) {
      return error.what();
    }
    return "accepted";
  };
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.access_key.clear(); }), HasSubstr("access_key"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.secret_key.clear(); }), HasSubstr("secret_key"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.region.clear(); }), HasSubstr("region"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.region = "eu west 1"; }), HasSubstr("region"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.delivery_stream_name.clear(); }), HasSubstr("delivery_stream_name"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.delivery_stream_name = "no spaces"; }),
              HasSubstr("delivery_stream_name"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.spool_dir.clear(); }), HasSubstr("spool_dir"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.endpoint = "ftp://firehose.example.com/"; }), HasSubstr("endpoint"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.max_records_per_request = 501; }),
              HasSubstr("max_records_per_request"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.max_request_bytes = 1000; }), HasSubstr("max_request_bytes"));
}

TEST_F(FirehoseUploaderTest, OneUploaderPerSpool) {
  const FirehoseUploader first(settings_for("http://127.0.0.1:9/"), reports.error_handler());
  EXPECT_THROW(make_uploader(settings_for("http://127.0.0.1:9/")), std::runtime_error);
}

}  // namespace
}  // namespace emi::aws
