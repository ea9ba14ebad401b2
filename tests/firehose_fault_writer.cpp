// SPDX-License-Identifier: LGPL-2.1-or-later
// A process that uploads events with FirehoseUploader, for the fault tests and bench/faults.py:
// one that can be killed with SIGKILL mid-upload, or that runs on a full disk.
//
//   firehose_fault_writer --endpoint URL --spool DIR --stream NAME --region R --access-key K
//       --secret-key S [--first N] [--count N] [--padding BYTES] [--max-records N]
//       [--full-disk BYTES] [--flush-seconds S]
//
// Enqueues events {"n": first..first+count-1, "padding": "x..."}, prints "enqueued <count>", then
// flushes and prints one JSON line: enqueued, delivered, dropped, rejected, pending, flushed,
// errors, disk, max_rss_kib. With --full-disk the spool lives on a tmpfs of that many bytes, mounted in a
// private mount namespace (as root, or in a user namespace), else every file is limited to that
// size with RLIMIT_FSIZE: either way the disk refuses records once it is full.
#include <gst/gst.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "actions/upload/firehose_uploader.h"

namespace {

namespace fs = std::filesystem;

bool write_text(const char* path, const std::string& text) {
  std::ofstream file(path);
  file << text;
  return static_cast<bool>(file.flush());
}

// A tmpfs of `bytes` over `folder`, seen by this process only; false when it can't be had.
bool mount_small_tmpfs(const fs::path& folder, std::size_t bytes) {
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  if (::unshare(CLONE_NEWNS) != 0) {
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
    if (!write_text("/proc/self/setgroups", "deny") ||
        !write_text("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") ||
        !write_text("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1"))
      return false;
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  const std::string options = "size=" + std::to_string(bytes) + ",mode=0700";
  return ::mount("tmpfs", folder.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(nullptr, nullptr);  // for GST_DEBUG=emi-upload:5
  std::map<std::string, std::string> options{{"--first", "0"}, {"--count", "100"}, {"--padding", "0"},
                                             {"--max-records", "500"}, {"--full-disk", "0"},
                                             {"--flush-seconds", "60"}};
  for (int i = 1; i + 1 < argc; i += 2) options[argv[i]] = argv[i + 1];
  for (const char* required : {"--endpoint", "--spool", "--stream", "--region", "--access-key", "--secret-key"}) {
    if (options.count(required) == 0) {
      std::fprintf(stderr, "firehose_fault_writer: %s is required\n", required);
      return 2;
    }
  }
  const fs::path spool = options["--spool"];
  const std::size_t full_disk = std::stoul(options["--full-disk"]);
  std::string disk = "plain";
  if (full_disk > 0) {
    fs::create_directories(spool);
    if (mount_small_tmpfs(spool, full_disk)) {
      disk = "tmpfs";
    } else {
      // Writes past the limit fail with EFBIG instead of killing the process.
      ::signal(SIGXFSZ, SIG_IGN);
      const rlimit limit{full_disk, full_disk};
      if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) {
        std::perror("setrlimit");
        return 2;
      }
      disk = "rlimit";
    }
  }

  emi::aws::FirehoseSettings settings;
  settings.delivery_stream_name = options["--stream"];
  settings.region = options["--region"];
  settings.access_key = options["--access-key"];
  settings.secret_key = options["--secret-key"];
  settings.endpoint = options["--endpoint"];
  settings.spool_dir = spool.string();
  settings.max_records_per_request = std::stoul(options["--max-records"]);
  settings.batch_delay = std::chrono::milliseconds(10);
  settings.retry_delay = std::chrono::milliseconds(10);
  settings.max_retry_delay = std::chrono::milliseconds(100);
  settings.stall_timeout = std::chrono::milliseconds(2000);
  std::atomic<std::size_t> errors{0};
  std::atomic<std::size_t> delivered{0};
  const int first = std::stoi(options["--first"]);
  const int count = std::stoi(options["--count"]);
  const std::string padding(std::stoul(options["--padding"]), 'x');
  nlohmann::json summary;
  {
    emi::aws::FirehoseUploader uploader(
        settings, [&errors](const std::string& message) {
          ++errors;
          std::fprintf(stderr, "firehose_fault_writer: %s\n", message.c_str());
        },
        [&delivered](std::size_t records) { delivered += records; });
    for (int n = first; n < first + count; ++n) uploader.enqueue(nlohmann::json{{"n", n}, {"padding", padding}}.dump());
    std::printf("enqueued %d\n", count);
    std::fflush(stdout);
    const bool flushed = uploader.flush(std::chrono::seconds(std::stoi(options["--flush-seconds"])));
    summary = {{"enqueued", count},          {"delivered", delivered.load()}, {"dropped", uploader.dropped()},
               {"rejected", uploader.rejected()}, {"pending", uploader.pending()}, {"flushed", flushed},
               {"disk", disk}};
  }
  summary["errors"] = errors.load();
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  summary["max_rss_kib"] = usage.ru_maxrss;
  std::printf("%s\n", summary.dump().c_str());
  return 0;
}
