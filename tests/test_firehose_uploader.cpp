// SPDX-License-Identifier: LGPL-2.1-or-later
// FirehoseUploader against tests/firehose_server.py, a local Firehose that checks each request's
// SigV4 signature with botocore and misbehaves on request: batching limits, partial failures,
// rejections for good (the dead-letter file), outages, resets, hangs, garbage, what a crash or
// kill -9 leaves in the spool, a full disk, a shared spool, and credentials as the AWS SDKs find
// them, never shown.
#include <glib.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "actions/upload/aws_credentials.h"
#include "actions/upload/firehose_client.h"
#include "actions/upload/firehose_uploader.h"
#include "actions/upload/retry_policy.h"

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

// A child process with its stdout on a pipe, read line by line; killed (SIGTERM) on destruction
// unless it was waited for.
class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> arguments) {
    std::vector<char*> argv;
    for (std::string& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    GError* raw_error = nullptr;
    if (!g_spawn_async_with_pipes(nullptr, argv.data(), nullptr, G_SPAWN_DO_NOT_REAP_CHILD, nullptr, nullptr, &pid_,
                                  nullptr, &output_, nullptr, &raw_error)) {
      g_autoptr(GError) error = raw_error;
      throw std::runtime_error("cannot start " + arguments.front() + ": " + error->message);
    }
  }
  ~ChildProcess() {
    kill(SIGTERM);
    ::close(output_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line it prints (without the newline); nullopt when it ended or kPatience passed.
  std::optional<std::string> read_line() {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (buffer_.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd readable{output_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&readable, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char chunk[4096];
      const ssize_t read = ::read(output_, chunk, sizeof chunk);
      if (read <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(read));
    }
    const std::size_t end = buffer_.find('\n');
    std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 1);
    return line;
  }
  // Sends `signal` and reaps it; its wait status.
  int kill(int signal) {
    if (pid_ <= 0) return status_;
    ::kill(pid_, signal);
    return wait();
  }
  int wait() {
    if (pid_ <= 0) return status_;
    ::waitpid(pid_, &status_, 0);
    g_spawn_close_pid(pid_);
    pid_ = 0;
    return status_;
  }

 private:
  GPid pid_ = 0;
  int output_ = -1;
  int status_ = 0;
  std::string buffer_;
};

std::string server_script() {
  const char* script = std::getenv("EMI_TEST_SERVER");
  return script != nullptr ? script : "tests/firehose_server.py";
}

// tests/firehose_server.py on a free port of 127.0.0.1, writing its logs into `directory`;
// stopped on destruction.
class FirehoseServer {
 public:
  explicit FirehoseServer(const fs::path& directory, std::vector<std::string> flags = {})
      : records_file_(directory / "records.jsonl"), requests_file_(directory / "requests.jsonl") {
    fs::create_directories(directory);
    std::vector<std::string> arguments = {EMI_PYTHON_EXECUTABLE, server_script(), "--stream", kStream, "--region",
                                          kRegion, "--access-key", kAccessKey, "--secret-key", kSecretKey,
                                          "--records", records_file_.string(), "--requests", requests_file_.string()};
    arguments.insert(arguments.end(), flags.begin(), flags.end());
    process_ = std::make_unique<ChildProcess>(arguments);
    const std::optional<std::string> port = process_->read_line();
    if (!port) throw std::runtime_error("the Firehose test server did not say its port");
    port_ = std::stoi(*port);
  }

  // From now on, connections to its port are refused.
  void stop() { process_->kill(SIGTERM); }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  // Every request: {"request", "status", "records", "failed", "body_bytes", "fault"} or {…, "error"}.
  std::vector<json> requests() const { return read_json_lines(requests_file_); }
  // Every accepted record: {"request": its request's number, "data": the record}.
  std::vector<json> records() const { return read_json_lines(records_file_); }

 private:
  fs::path records_file_;
  fs::path requests_file_;
  std::unique_ptr<ChildProcess> process_;
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

// An event the local Firehose refuses (--reject-marker / --reject-request-marker poison).
std::string poisoned_event(int n) { return json{{"n", n}, {"poison", true}}.dump(); }

std::map<int, int> once_each_but(int count, std::initializer_list<int> refused) {
  std::map<int, int> counts = once_each(count);
  for (const int n : refused) counts.erase(n);
  return counts;
}

std::vector<std::size_t> records_per_request(const std::vector<json>& requests) {
  std::vector<std::size_t> counts;
  for (const json& request : requests) counts.push_back(request.value("records", std::size_t{0}));
  return counts;
}


// Each file below `spool`, as a path relative to it.
std::vector<std::string> spool_files(const fs::path& spool) {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(spool))
    if (entry.is_regular_file()) names.push_back(fs::relative(entry.path(), spool).string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> batch_files(const fs::path& spool) {
  std::vector<std::string> batches;
  for (const std::string& name : spool_files(spool))
    if (name.find(".batch") != std::string::npos) batches.push_back(name);
  return batches;
}

mode_t mode_of(const fs::path& path) {
  struct stat status {};
  EXPECT_EQ(::lstat(path.c_str(), &status), 0) << path;
  return status.st_mode & 07777;
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
    settings.stall_timeout = milliseconds(1'000);
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
  // Messages must never show these.
  void expect_no_secrets(const std::vector<std::string>& messages, const std::string& token = "") {
    for (const std::string& message : messages) {
      EXPECT_THAT(message, testing::Not(HasSubstr(kSecretKey)));
      EXPECT_THAT(message, testing::Not(HasSubstr(kAccessKey)));
      if (!token.empty()) {
        EXPECT_THAT(message, testing::Not(HasSubstr(token)));
      }
    }
  }

  ScratchDirectory scratch;
  fs::path spool = scratch.path() / "spool";
  // Nothing from the caller's environment or ~/.aws: each test says where credentials are.
  ScopedEnvironment environment{{{"AWS_ACCESS_KEY_ID", std::nullopt},
                                 {"AWS_SECRET_ACCESS_KEY", std::nullopt},
                                 {"AWS_SESSION_TOKEN", std::nullopt},
                                 {"AWS_PROFILE", std::nullopt},
                                 {"AWS_REGION", std::nullopt},
                                 {"AWS_DEFAULT_REGION", std::nullopt},
                                 {"AWS_SHARED_CREDENTIALS_FILE", (scratch.path() / "no-credentials").string()},
                                 {"AWS_CONFIG_FILE", (scratch.path() / "no-config").string()},
                                 {"XDG_STATE_HOME", (scratch.path() / "state").string()}}};
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
  EXPECT_EQ(uploader->dropped(), 1u);

  ASSERT_TRUE(uploader->flush(kPatience));

  EXPECT_THAT(records_per_request(server.requests()), ElementsAre(500, 500, 200));
  EXPECT_EQ(arrivals(server.records()), once_each(1200));
  EXPECT_EQ(reports.delivered(), 1200u);
  EXPECT_EQ(reports.errors().size(), 1u);
  EXPECT_EQ(uploader->pending(), 0u);
  EXPECT_THAT(batch_files(spool), ElementsAre());
  uploader.reset();
  EXPECT_THAT(spool_files(spool), ElementsAre()) << "an emptied writer folder is removed";
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
  std::vector<std::string> batches = batch_files(spool);
  ASSERT_GE(batches.size(), 1u);
  const fs::path writer_folder = (spool / batches.back()).parent_path();
  // What a crash can leave: a record cut short at the end of a batch, a batch created just
  // before, a rewrite not finished.
  std::ofstream(spool / batches.back(), std::ios::app | std::ios::binary) << std::string("\x10\0\0\0ab", 6);
  std::ofstream(writer_folder / "00000000000000000098.batch");
  std::ofstream(writer_folder / "00000000000000000001.batch.rewrite") << "partial";

  FirehoseServer server(scratch.path() / "server");
  {
    auto uploader = make_uploader(settings_for(server.endpoint()));
    ASSERT_TRUE(uploader->flush(kPatience));
  }
  EXPECT_EQ(arrivals(server.records()), once_each(3));
  const std::vector<std::string> errors = reports.errors();
  ASSERT_EQ(errors.size(), 2u) << "the outage, then the record cut short";
  EXPECT_THAT(errors[1], HasSubstr(batches.back()));
  EXPECT_THAT(spool_files(spool), ElementsAre()) << "the folder of the uploader that stopped is gone";

  const std::size_t requests = server.requests().size();
  auto uploader = make_uploader(settings_for(server.endpoint()));
  EXPECT_TRUE(uploader->flush(kPatience));
  EXPECT_EQ(uploader->pending(), 0u);
  EXPECT_EQ(server.requests().size(), requests);
}

TEST_F(FirehoseUploaderTest, TakesKeysAndRegionFromTheEnvironment) {
  const ScopedEnvironment keys({{"AWS_ACCESS_KEY_ID", kAccessKey},
                                {"AWS_SECRET_ACCESS_KEY", kSecretKey},
                                {"AWS_SESSION_TOKEN", "test-session-token"},
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
  const ScopedEnvironment regions({{"AWS_SESSION_TOKEN", "token-of-the-environment's-keys"},
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

TEST_F(FirehoseUploaderTest, TakesCredentialsAndRegionFromTheSharedFilesProfile) {
  const fs::path credentials = scratch.path() / "credentials";
  const fs::path config = scratch.path() / "config";
  std::ofstream(credentials) << "[default]\naws_access_key_id = AKIADEFAULTPROFILE01\naws_secret_access_key = nope\n"
                             << "# the camera's\n[camera]\naws_access_key_id = " << kAccessKey
                             << "\naws_secret_access_key = " << kSecretKey << "\naws_session_token = profile-token\n";
  std::ofstream(config) << "[default]\nregion = us-east-1\n[profile camera]\nregion = " << kRegion << "\n";
  const ScopedEnvironment files({{"AWS_SHARED_CREDENTIALS_FILE", credentials.string()},
                                 {"AWS_CONFIG_FILE", config.string()},
                                 {"AWS_PROFILE", "camera"}});
  FirehoseServer server(scratch.path() / "server", {"--session-token", "profile-token"});
  FirehoseSettings settings = settings_for(server.endpoint());
  settings.access_key.clear();
  settings.secret_key.clear();
  settings.region.clear();
  auto uploader = make_uploader(settings);
  EXPECT_EQ(uploader->settings().region, kRegion);
  EXPECT_EQ(uploader->settings().session_token, "profile-token");

  uploader->enqueue(event(0));
  ASSERT_TRUE(uploader->flush(kPatience));
  EXPECT_EQ(arrivals(server.records()), once_each(1));
}

TEST_F(FirehoseUploaderTest, LooksForCredentialsInTheSdksOrder) {
  const fs::path credentials = scratch.path() / "credentials";
  const fs::path config = scratch.path() / "config";
  std::ofstream(credentials) << "[default]\n  aws_access_key_id=AKIAFROMCREDENTIALS1 \naws_secret_access_key=a\n";
  std::ofstream(config) << "; comment\n[default]\naws_access_key_id = AKIAFROMCONFIGFILE01\naws_secret_access_key = b\n"
                        << "[profile other]\naws_access_key_id = AKIAOTHERPROFILE0001\naws_secret_access_key = c\n";
  const ScopedEnvironment files({{"AWS_SHARED_CREDENTIALS_FILE", credentials.string()},
                                 {"AWS_CONFIG_FILE", config.string()}});
  const CredentialChain chain({});
  EXPECT_EQ(chain.resolve().credentials.access_key_id, "AKIAFROMCREDENTIALS1") << "the credentials file first";
  {
    const ScopedEnvironment profile({{"AWS_PROFILE", std::string("other")}});
    const ResolvedCredentials other = chain.resolve();
    EXPECT_EQ(other.credentials.access_key_id, "AKIAOTHERPROFILE0001") << "then the config file";
    EXPECT_THAT(other.origin, HasSubstr(config.string()));
  }
  {
    const ScopedEnvironment keys({{"AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1"}, {"AWS_SECRET_ACCESS_KEY", "d"}});
    EXPECT_EQ(chain.resolve().credentials.access_key_id, "AKIAFROMENVIRONMENT1") << "the environment before files";
    EXPECT_EQ(CredentialChain({"AKIAFROMTHERULE00001", "e", ""}).resolve().credentials.access_key_id,
              "AKIAFROMTHERULE00001")
        << "the rule's keys before all";
  }
}

TEST_F(FirehoseUploaderTest, ReadsTheCredentialsAgainWhenTheTokenExpired) {
  const fs::path credentials = scratch.path() / "credentials";
  const auto write_credentials = [&](const std::string& token) {
    std::ofstream(credentials.string() + ".new") << "[default]\naws_access_key_id = " << kAccessKey
                                                 << "\naws_secret_access_key = " << kSecretKey
                                                 << "\naws_session_token = " << token << "\n";
    fs::rename(credentials.string() + ".new", credentials);
  };
  write_credentials("old-token");
  const ScopedEnvironment files({{"AWS_SHARED_CREDENTIALS_FILE", credentials.string()}});
  FirehoseServer server(scratch.path() / "server", {"--session-token", "new-token", "--expired-token", "old-token"});
  FirehoseSettings settings = settings_for(server.endpoint());
  settings.access_key.clear();
  settings.secret_key.clear();
  settings.rejected_retry_delay = std::chrono::hours(1);  // what an expired token waited before
  auto uploader = make_uploader(settings);
  uploader->enqueue(event(0));
  ASSERT_TRUE(reports.wait_for_errors(1));
  EXPECT_THAT(reports.errors().front(), HasSubstr("ExpiredTokenException"));

  write_credentials("new-token");
  ASSERT_TRUE(uploader->flush(kPatience));
  EXPECT_EQ(arrivals(server.records()), once_each(1));
  expect_no_secrets(reports.errors(), "old-token");
}

TEST_F(FirehoseUploaderTest, NeverShowsTheSecretKeyOrTokenEvenWhenTheServerEchoesThem) {
  FirehoseServer server(scratch.path() / "server", {"--script", "echo", "--session-token", "the-session-token"});
  FirehoseSettings settings = settings_for(server.endpoint());
  settings.session_token = "the-session-token";
  auto uploader = make_uploader(settings);
  uploader->enqueue(event(0));
  ASSERT_TRUE(uploader->flush(kPatience));
  const std::vector<std::string> errors = reports.errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("AccessDeniedException"));
  EXPECT_THAT(errors[0], HasSubstr("Credential=" + mask_access_key(kAccessKey)));
  expect_no_secrets(errors, "the-session-token");
}

TEST_F(FirehoseUploaderTest, NamesTheSettingThatIsMissingOrInvalid) {
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
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.access_key.clear(), s.secret_key.clear(); }),
              HasSubstr("no credentials"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.region.clear(); }), HasSubstr("region"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.region = "eu west 1"; }), HasSubstr("region"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.delivery_stream_name.clear(); }), HasSubstr("delivery_stream_name"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.delivery_stream_name = "no spaces"; }),
              HasSubstr("delivery_stream_name"));
  // A name is a folder of the spool: it must not lead out of it.
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.delivery_stream_name = ".."; }), HasSubstr("delivery_stream_name"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.delivery_stream_name = "a/../../b"; }),
              HasSubstr("delivery_stream_name"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.delivery_stream_name = std::string(65, 'a'); }),
              HasSubstr("delivery_stream_name"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.endpoint = "ftp://firehose.example.com/"; }), HasSubstr("endpoint"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.max_records_per_request = 501; }),
              HasSubstr("max_records_per_request"));
  EXPECT_THAT(error_of([](FirehoseSettings& s) { s.max_request_bytes = 1000; }), HasSubstr("max_request_bytes"));
  EXPECT_EQ(error_of([](FirehoseSettings& s) { s.delivery_stream_name = "a-Z_0.9"; }), "accepted");
}

TEST_F(FirehoseUploaderTest, SendsKeysInClearTextOnlyToThisMachine) {
  const auto error_of = [this](const std::string& endpoint) -> std::string {
    try {
      const FirehoseUploader uploader(settings_for(endpoint), reports.error_handler());
    } catch (const std::invalid_argument& error) {
      return error.what();
    }
    return "accepted";
  };
  EXPECT_THAT(error_of("http://firehose.eu-west-1.amazonaws.com/"), HasSubstr("https://"));
  EXPECT_THAT(error_of("http://10.0.0.1:8080/"), HasSubstr("https://"));
  EXPECT_THAT(error_of("http://127.0.0.1.example.com/"), HasSubstr("https://"));
  EXPECT_EQ(error_of("http://127.0.0.1:9/"), "accepted");
  EXPECT_EQ(error_of("http://localhost:9/"), "accepted");
  EXPECT_EQ(error_of("http://[::1]:9/"), "accepted");
  EXPECT_EQ(error_of("https://vpce-0123.firehose.eu-west-1.vpce.amazonaws.com/"), "accepted");
  const std::string with_password = error_of("https://user:hunter2@firehose.example.com/");
  EXPECT_THAT(with_password, HasSubstr("password"));
  EXPECT_THAT(with_password, testing::Not(HasSubstr("hunter2")));
}

TEST_F(FirehoseUploaderTest, TheDefaultSpoolIsPerStreamInTheStateFolderAndPrivate) {
  FirehoseServer server(scratch.path() / "server", {"--script", "500"});
  FirehoseSettings settings = settings_for(server.endpoint());
  settings.spool_dir.clear();
  settings.retry_delay = settings.max_retry_delay = std::chrono::hours(1);  // until flush()
  auto uploader = make_uploader(settings);
  const fs::path expected = scratch.path() / "state" / "emi" / "firehose" / kStream;
  EXPECT_EQ(uploader->settings().spool_dir, expected.string());
  uploader->enqueue(event(0));
  ASSERT_TRUE(reports.wait_for_errors(1));  // the record waits in a batch file
  for (const fs::path& folder : {expected.parent_path().parent_path(), expected.parent_path(), expected})
    EXPECT_EQ(mode_of(folder), 0700u) << folder;
  const std::vector<std::string> batches = batch_files(expected);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(mode_of(expected / batches[0]), 0600u);
  EXPECT_EQ(mode_of((expected / batches[0]).parent_path()), 0700u);
  ASSERT_TRUE(uploader->flush(kPatience));
}

TEST_F(FirehoseUploaderTest, RefusesASpoolThatIsASymbolicLink) {
  fs::create_directories(scratch.path() / "elsewhere");
  fs::create_directory_symlink(scratch.path() / "elsewhere", spool);
  EXPECT_THROW(make_uploader(settings_for("http://127.0.0.1:9/")), std::runtime_error);
  EXPECT_TRUE(fs::is_empty(scratch.path() / "elsewhere"));
}

TEST_F(FirehoseUploaderTest, UploadersShareASpoolAndEachSendsItsOwn) {
  FirehoseServer server(scratch.path() / "server");
  auto first = make_uploader(flushed_settings_for(server.endpoint()));
  auto second = make_uploader(flushed_settings_for(server.endpoint()));
  for (int n = 0; n < 20; ++n) (n % 2 == 0 ? first : second)->enqueue(event(n));
  ASSERT_TRUE(first->flush(kPatience));
  ASSERT_TRUE(second->flush(kPatience));
  EXPECT_EQ(arrivals(server.records()), once_each(20));
  EXPECT_TRUE(reports.errors().empty());
}

TEST_F(FirehoseUploaderTest, ALiveUploaderTakesOverWhatAStoppedOneLeftInTheSharedSpool) {
  FirehoseServer server(scratch.path() / "server");
  auto live = make_uploader(settings_for(server.endpoint()));
  {
    auto stopped = make_uploader(settings_for(unreachable_endpoint()));
    for (int n = 0; n < 5; ++n) stopped->enqueue(event(n));
  }
  // A new uploader looks at once; a running one when it next looks (here: the next one).
  auto next = make_uploader(settings_for(server.endpoint()));
  ASSERT_TRUE(next->flush(kPatience));
  EXPECT_EQ(arrivals(server.records()), once_each(5));
  EXPECT_THAT(batch_files(spool), ElementsAre());
}

TEST_F(FirehoseUploaderTest, RecordsRefusedForGoodGoToTheDeadLetterFileAndTheQueueMovesOn) {
  FirehoseServer server(scratch.path() / "server", {"--reject-marker", "poison"});
  auto uploader = make_uploader(flushed_settings_for(server.endpoint()));
  for (int n = 0; n < 10; ++n)
    uploader->enqueue(n == 3 || n == 7 ? poisoned_event(n) : event(n));

  ASSERT_TRUE(uploader->flush(kPatience));

  EXPECT_EQ(arrivals(server.records()), once_each_but(10, {3, 7}));
  EXPECT_EQ(uploader->rejected(), 2u);
  EXPECT_EQ(uploader->pending(), 0u);
  const std::vector<json> rejected = read_json_lines(spool / "rejected.jsonl");
  ASSERT_EQ(rejected.size(), 2u);
  for (const json& entry : rejected) {
    EXPECT_THAT(entry.at("error").get<std::string>(), HasSubstr("InvalidArgumentException"));
    EXPECT_EQ(entry.at("delivery_stream"), kStream);
    EXPECT_EQ(json::parse(entry.at("record").get<std::string>()).at("poison"), true);
  }
  EXPECT_EQ(mode_of(spool / "rejected.jsonl"), 0600u);
  EXPECT_EQ(server.requests().size(), 1u) << "nothing was sent twice";
}

TEST_F(FirehoseUploaderTest, FindsTheOneRecordAWholeRequestIsRefusedFor) {
  FirehoseServer server(scratch.path() / "server", {"--reject-request-marker", "poison"});
  auto uploader = make_uploader(flushed_settings_for(server.endpoint()));
  for (int n = 0; n < 40; ++n) uploader->enqueue(n == 29 ? poisoned_event(n) : event(n));

  ASSERT_TRUE(uploader->flush(kPatience));

  EXPECT_EQ(arrivals(server.records()), once_each_but(40, {29}));
  EXPECT_EQ(uploader->rejected(), 1u);
  const std::vector<json> rejected = read_json_lines(spool / "rejected.jsonl");
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(json::parse(rejected[0].at("record").get<std::string>()).at("n"), 29);
  // Halving: 40, 20, 10, 5, 2, 1 refused, the good ones in between sent once.
  EXPECT_LE(server.requests().size(), 16u);
}

TEST_F(FirehoseUploaderTest, TheOldestRecordRefusedForItsRequestIsFoundToo) {
  FirehoseServer server(scratch.path() / "server", {"--reject-request-marker", "poison"});
  auto uploader = make_uploader(flushed_settings_for(server.endpoint()));
  for (int n = 0; n < 8; ++n) uploader->enqueue(n == 0 ? poisoned_event(n) : event(n));

  ASSERT_TRUE(uploader->flush(kPatience));

  EXPECT_EQ(arrivals(server.records()), once_each_but(8, {0}));
  EXPECT_EQ(uploader->rejected(), 1u);
}

TEST_F(FirehoseUploaderTest, AStreamThatRefusesEveryRequestDeadLettersNothing) {
  FirehoseServer server(scratch.path() / "server", {"--reject-request-marker", "\"n\":"});
  auto uploader = make_uploader(flushed_settings_for(server.endpoint()));
  for (int n = 0; n < 8; ++n) uploader->enqueue(event(n));
  EXPECT_FALSE(uploader->flush(milliseconds(1'000)));
  EXPECT_EQ(uploader->rejected(), 0u);
  EXPECT_EQ(uploader->pending(), 8u);
  EXPECT_FALSE(fs::exists(spool / "rejected.jsonl"));
  EXPECT_THAT(reports.errors().back(), HasSubstr("check the delivery stream"));
}

TEST_F(FirehoseUploaderTest, FlushMakesOneAttemptAtOnceWhateverTheBackOff) {
  FirehoseServer server(scratch.path() / "server", {"--script", "500"});
  FirehoseSettings settings = settings_for(server.endpoint());
  settings.retry_delay = std::chrono::hours(1);
  settings.max_retry_delay = std::chrono::hours(1);
  auto uploader = make_uploader(settings);
  uploader->enqueue(event(0));
  ASSERT_TRUE(reports.wait_for_errors(1));  // the 500: next attempt in half an hour or more

  ASSERT_TRUE(uploader->flush(kPatience));
  EXPECT_EQ(arrivals(server.records()), once_each(1));
}

TEST_F(FirehoseUploaderTest, DropsRecordsOnlyPastTheSpoolCapAndCountsThem) {
  FirehoseSettings settings = settings_for(unreachable_endpoint());
  const std::size_t record_bytes = event(0, 1000).size() + 1;
  settings.max_record_bytes = record_bytes;
  settings.max_spool_bytes = 10 * record_bytes;
  auto uploader = make_uploader(settings);
  for (int n = 0; n < 14; ++n) uploader->enqueue(event(n, 1000));
  EXPECT_EQ(uploader->dropped(), 4u);
  EXPECT_EQ(uploader->pending(), 10u);
}

TEST_F(FirehoseUploaderTest, ASlowUplinkIsNotCutOffWhileItMoves) {
  // 64 KiB every 0.3 s: a 1 MiB body takes about 5 s, five times stall_timeout.
  FirehoseServer server(scratch.path() / "server", {"--read-delay", "0.3"});
  FirehoseSettings settings = flushed_settings_for(server.endpoint());
  settings.min_speed_bytes_per_second = 1024;
  auto uploader = make_uploader(settings);
  for (int n = 0; n < 4; ++n) uploader->enqueue(event(n, 190 * 1024));
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(uploader->flush(kPatience));
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GT(took, 2 * settings.stall_timeout) << "the request outlasted the stall timeout";
  EXPECT_EQ(arrivals(server.records()), once_each(4));
  EXPECT_TRUE(reports.errors().empty());
}

// Each fault the local Firehose can play, met twice in a row: every record still arrives once,
// and the run of failures is reported once.
class FirehoseFaultTest : public FirehoseUploaderTest, public testing::WithParamInterface<const char*> {};

TEST_P(FirehoseFaultTest, EveryRecordArrivesOnce) {
  const std::string fault = GetParam();
  FirehoseServer server(scratch.path() / "server", {"--script", fault + "," + fault, "--hang-seconds", "30"});
  auto uploader = make_uploader(flushed_settings_for(server.endpoint()));
  for (int n = 0; n < 10; ++n) uploader->enqueue(event(n));

  ASSERT_TRUE(uploader->flush(kPatience));

  EXPECT_EQ(arrivals(server.records()), once_each(10));
  EXPECT_EQ(reports.delivered(), 10u);
  EXPECT_EQ(reports.errors().size(), 1u);
  EXPECT_GE(server.requests().size(), 3u);
  EXPECT_EQ(uploader->dropped(), 0u);
  EXPECT_EQ(uploader->rejected(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Faults, FirehoseFaultTest,
                         testing::Values("500", "429", "throttle", "partial", "garbage", "reset", "hang", "huge"));

std::string fault_writer() {
  const char* writer = std::getenv("EMI_FAULT_WRITER");
  return writer != nullptr ? writer : "firehose_fault_writer";
}

std::vector<std::string> writer_arguments(const std::string& endpoint, const fs::path& spool,
                                          std::vector<std::string> more) {
  std::vector<std::string> arguments = {fault_writer(), "--endpoint", endpoint, "--spool", spool.string(),
                                        "--stream", kStream, "--region", kRegion, "--access-key", kAccessKey,
                                        "--secret-key", kSecretKey};
  arguments.insert(arguments.end(), more.begin(), more.end());
  return arguments;
}

TEST_F(FirehoseUploaderTest, AfterAKillMidUploadTheNextRunDeliversEveryRecord) {
  constexpr int kEvents = 1000;
  constexpr std::size_t kBatch = 50;
  FirehoseServer server(scratch.path() / "server", {"--answer-delay", "0.05"});
  {
    ChildProcess writer(writer_arguments(server.endpoint(), spool,
                                         {"--count", std::to_string(kEvents), "--max-records", std::to_string(kBatch)}));
    ASSERT_EQ(writer.read_line(), "enqueued " + std::to_string(kEvents));
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (server.records().size() < 200 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(5));  // polling a file another process writes
    const int status = writer.kill(SIGKILL);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "it finished before the kill";
  }
  ASSERT_LT(server.records().size(), static_cast<std::size_t>(kEvents)) << "killed mid-upload";

  auto next_run = make_uploader(settings_for(server.endpoint()));
  ASSERT_TRUE(next_run->flush(kPatience));

  const std::map<int, int> counts = arrivals(server.records());
  std::size_t duplicates = 0;
  for (int n = 0; n < kEvents; ++n) {
    ASSERT_EQ(counts.count(n), 1u) << "event " << n << " was lost";
    duplicates += counts.at(n) - 1;
  }
  EXPECT_LE(duplicates, kBatch) << "at most the request in flight is sent again";
  EXPECT_THAT(batch_files(spool), ElementsAre());
}

TEST_F(FirehoseUploaderTest, AFullDiskLosesNothing) {
  constexpr int kEvents = 200;
  // A 48 KiB disk, and 200 KiB of events while Firehose fails: the disk fills, records wait in
  // memory, then everything goes.
  FirehoseServer server(scratch.path() / "server", {"--script", "500,500,500,500,500"});
  ChildProcess writer(writer_arguments(server.endpoint(), spool,
                                       {"--count", std::to_string(kEvents), "--padding", "1000", "--max-records",
                                        "20", "--full-disk", std::to_string(48 * 1024)}));
  ASSERT_EQ(writer.read_line(), "enqueued " + std::to_string(kEvents));
  const std::optional<std::string> line = writer.read_line();
  ASSERT_TRUE(line.has_value());
  const json summary = json::parse(*line);
  std::cout << "full disk by " << summary.at("disk") << "\n";
  EXPECT_EQ(summary.at("flushed"), true);
  EXPECT_EQ(summary.at("dropped"), 0);
  EXPECT_EQ(summary.at("delivered"), kEvents);
  EXPECT_EQ(arrivals(server.records()), once_each(kEvents));
  EXPECT_GE(summary.at("errors").get<int>(), 2) << "the outage and the full disk were reported";
}

// The parts, without a server.
TEST(FirehoseAnswer, SaysWhatBecameOfEachRecord) {
  const PutAnswer answer = parse_put_answer(
      200,
      R"({"FailedPutCount":2,"RequestResponses":[{"RecordId":"a"},)"
      R"({"ErrorCode":"ServiceUnavailableException","ErrorMessage":"Slow down."},)"
      R"({"ErrorCode":"InvalidArgumentException","ErrorMessage":"bad"}]})",
      3);
  EXPECT_EQ(answer.kind, PutAnswer::Kind::kAnswered);
  EXPECT_THAT(answer.records, ElementsAre(RecordOutcome::kConfirmed, RecordOutcome::kRetry, RecordOutcome::kRejected));
  EXPECT_EQ(parse_put_answer(200, R"({"RequestResponses":[]})", 3).kind, PutAnswer::Kind::kRetry);
  EXPECT_EQ(parse_put_answer(200, "<html>", 1).kind, PutAnswer::Kind::kRetry);
  EXPECT_EQ(parse_put_answer(503, "", 1).kind, PutAnswer::Kind::kRetry);
  EXPECT_EQ(parse_put_answer(400, R"({"__type":"ThrottlingException"})", 1).kind, PutAnswer::Kind::kRetry);
  EXPECT_EQ(parse_put_answer(400, R"({"__type":"ExpiredTokenException"})", 1).kind, PutAnswer::Kind::kBadCredentials);
  EXPECT_EQ(parse_put_answer(400, R"({"__type":"UnrecognizedClientException"})", 1).kind,
            PutAnswer::Kind::kBadCredentials);
  EXPECT_EQ(parse_put_answer(400, R"({"__type":"InvalidArgumentException"})", 1).kind, PutAnswer::Kind::kBadRecords);
  EXPECT_EQ(parse_put_answer(413, "", 1).kind, PutAnswer::Kind::kBadRecords);
  EXPECT_EQ(parse_put_answer(400, R"({"__type":"ResourceNotFoundException"})", 1).kind, PutAnswer::Kind::kRejected);
}

TEST(FirehoseBackoff, DoublesUpToItsCapHalfOfItRandom) {
  Backoff backoff(milliseconds(100), milliseconds(1'000));
  const milliseconds ceilings[] = {milliseconds(100), milliseconds(200), milliseconds(400), milliseconds(800),
                                   milliseconds(1'000), milliseconds(1'000)};
  for (const milliseconds ceiling : ceilings) {
    const milliseconds delay = backoff.after_failure();
    EXPECT_GE(delay, ceiling / 2);
    EXPECT_LE(delay, ceiling);
  }
  EXPECT_EQ(backoff.failures(), 6u);
  backoff.reset();
  EXPECT_LE(backoff.after_failure(), milliseconds(100));
}

TEST(FirehoseRefusalSearch, HalvesUntilTheRecordIsAloneAndGivesUpOnItOnceOthersWent) {
  RefusalSearch search(500);
  search.refused(500);
  EXPECT_EQ(search.request_limit(), 250u);
  search.delivered();  // the first 250 went
  search.refused(250);
  search.refused(125);
  EXPECT_EQ(search.request_limit(), 62u);
  EXPECT_EQ(search.refused_alone(true, "bad"), RefusalSearch::Verdict::kGiveUpOnIt);
  EXPECT_EQ(search.request_limit(), 500u) << "found: requests are whole again";
}

TEST(FirehoseRefusalSearch, TellsTheOldestRecordFromAStreamThatRefusesEverything) {
  RefusalSearch search(4);
  search.refused(4);
  search.refused(2);
  EXPECT_EQ(search.refused_alone(true, "bad"), RefusalSearch::Verdict::kTryTheNextAlone);
  EXPECT_EQ(search.suspect(), "bad");
  EXPECT_EQ(search.request_limit(), 1u);
  EXPECT_EQ(search.refused_alone(false, "bad too"), RefusalSearch::Verdict::kTheStreamRefuses);
  EXPECT_FALSE(search.suspect().has_value());
  EXPECT_EQ(search.request_limit(), 4u);
}

TEST(FirehoseCredentials, AreMaskedAndRedacted) {
  EXPECT_EQ(mask_access_key("AKIAEMITESTKEY000001"), "****0001");
  EXPECT_EQ(mask_access_key("AB"), "****AB");
  const Credentials credentials{"AKIAEMITESTKEY000001", "s3cr3t/key", "tok3n"};
  EXPECT_EQ(redact("Credential=AKIAEMITESTKEY000001/x key s3cr3t/key token tok3n", credentials),
            "Credential=****0001/x key [redacted] token [redacted]");
}

}  // namespace
}  // namespace emi::aws
