// SPDX-License-Identifier: LGPL-2.1-or-later
#include "actions/upload/spool.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>

#include "actions/upload/aws_sigv4.h"

namespace emi::aws::spool {
namespace {

constexpr std::size_t kChecksumBytes = kRecordHeaderBytes - 4;
constexpr char kBatchSuffix[] = ".batch";
constexpr char kRewriteSuffix[] = ".rewrite";
constexpr char kDamagedSuffix[] = ".damaged";
constexpr char kLockName[] = "lock";
constexpr char kWriterPrefix[] = "w-";
constexpr char kRejectedName[] = "rejected.jsonl";
constexpr int kFolderNameAttempts = 8;

std::string record_checksum(std::string_view record) { return sha256(record).substr(0, kChecksumBytes); }

std::string read_all(const fs::path& path) {
  const posix::FileDescriptor file = posix::open_private(path, O_RDONLY);
  std::string contents;
  char chunk[1 << 16];
  while (true) {
    const ssize_t read = ::read(file.get(), chunk, sizeof chunk);
    if (read < 0) {
      if (errno == EINTR) continue;
      posix::throw_errno(errno, "cannot read " + path.string());
    }
    if (read == 0) return contents;
    contents.append(chunk, static_cast<std::size_t>(read));
  }
}

bool is_number(const std::string& text) {
  return !text.empty() && text.size() <= 20 &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

const std::string_view kBatchMagic{"EMIFHS1\n", 8};

fs::path default_root(const std::string& delivery_stream_name) {
  const char* state = std::getenv("XDG_STATE_HOME");
  fs::path base;
  if (state != nullptr && fs::path(state).is_absolute()) {
    base = state;
  } else {
    const char* home = std::getenv("HOME");
    base = fs::path(home != nullptr && *home != '\0' ? home : "/") / ".local" / "state";
  }
  return base / "emi" / "firehose" / delivery_stream_name;
}

std::string encode_record(std::string_view record) {
  std::string frame;
  frame.reserve(kRecordHeaderBytes + record.size());
  const auto length = static_cast<std::uint32_t>(record.size());
  for (int shift = 0; shift < 32; shift += 8) frame += static_cast<char>((length >> shift) & 0xff);
  frame += record_checksum(record);
  frame += record;
  return frame;
}

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
    if (rest.size() >= kRecordHeaderBytes)
      for (int i = 3; i >= 0; --i) length = (length << 8) | static_cast<unsigned char>(rest[i]);
    // After a bad record nothing can be trusted to start where a record starts.
    if (rest.size() < kRecordHeaderBytes || rest.size() - kRecordHeaderBytes < length ||
        record_checksum(rest.substr(kRecordHeaderBytes, length)) != rest.substr(4, kChecksumBytes)) {
      batch.damaged_bytes = rest.size();
      break;
    }
    batch.records.emplace_back(rest.substr(kRecordHeaderBytes, length));
    rest.remove_prefix(kRecordHeaderBytes + length);
  }
  return batch;
}

Folder Folder::create(const fs::path& root) {
  posix::create_private_directories(root);
  std::mt19937_64 random{std::random_device{}()};
  for (int attempt = 0; attempt < kFolderNameAttempts; ++attempt) {
    char name[64];
    std::snprintf(name, sizeof name, "%s%ld-%016" PRIx64, kWriterPrefix, static_cast<long>(::getpid()), random());
    const fs::path path = root / name;
    if (::mkdir(path.c_str(), 0700) != 0) {
      if (errno == EEXIST) continue;
      posix::throw_errno(errno, "cannot create " + path.string());
    }
    posix::FileDescriptor lock = posix::open_private(path / kLockName, O_RDWR | O_CREAT | O_EXCL);
    // Another uploader may have taken the new, empty folder for an orphan between the two steps:
    // it removes it, and we take another name.
    if (::flock(lock.get(), LOCK_EX | LOCK_NB) == 0) return Folder(path, std::move(lock), true);
  }
  throw std::runtime_error("cannot create a spool folder of our own in " + root.string());
}

std::optional<Folder> Folder::claim(const fs::path& folder) {
  const int descriptor = ::open((folder / kLockName).c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (descriptor < 0) return std::nullopt;  // being created or removed, or not a spool folder
  posix::FileDescriptor lock(descriptor);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return std::nullopt;
  // Its last owner may have emptied and removed it while we waited for the lock.
  struct stat status {};
  if (::fstat(lock.get(), &status) != 0 || status.st_nlink == 0) return std::nullopt;
  const bool writer_folder = folder.filename().string().rfind(kWriterPrefix, 0) == 0;
  return Folder(folder, std::move(lock), writer_folder);
}

std::vector<fs::path> Folder::candidates(const fs::path& root) {
  std::vector<fs::path> folders;
  std::error_code error;
  if (fs::is_regular_file(root / kLockName, error)) folders.push_back(root);
  for (const fs::directory_entry& entry : fs::directory_iterator(root, error)) {
    if (entry.path().filename().string().rfind(kWriterPrefix, 0) == 0 && entry.is_directory(error) &&
        !entry.is_symlink(error))
      folders.push_back(entry.path());
  }
  return folders;
}

fs::path Folder::batch_path(std::uint64_t id) const {
  char name[32];
  std::snprintf(name, sizeof name, "%020" PRIu64 "%s", id, kBatchSuffix);
  return path_ / name;
}

std::vector<std::uint64_t> Folder::batch_ids() const {
  std::vector<std::uint64_t> ids;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(path_, error)) {
    const fs::path& path = entry.path();
    if (path.extension() == kRewriteSuffix) {
      // A rewrite the process didn't finish: the batch file it was to replace is still whole.
      std::error_code ignored;
      fs::remove(path, ignored);
    } else if (path.extension() == kBatchSuffix && is_number(path.stem().string())) {
      ids.push_back(std::stoull(path.stem().string()));
    }
  }
  if (error) throw std::system_error(error, "cannot list " + path_.string());
  std::sort(ids.begin(), ids.end());
  return ids;
}

ParsedBatch Folder::read_batch(std::uint64_t id) const {
  const fs::path path = batch_path(id);
  ParsedBatch parsed = parse_batch(read_all(path));
  if (parsed.foreign) fs::rename(path, path.string() + kDamagedSuffix);
  return parsed;
}

void Folder::store_batch(std::uint64_t id, const std::vector<std::string>& records) const {
  const fs::path path = batch_path(id);
  if (records.empty()) {
    fs::remove(path);
  } else {
    fs::path rewrite = path;
    rewrite += kRewriteSuffix;
    std::string contents(kBatchMagic);
    for (const std::string& record : records) contents += encode_record(record);
    {
      const posix::FileDescriptor file = posix::open_private(rewrite, O_WRONLY | O_CREAT | O_TRUNC);
      posix::write_all_or_throw(file.get(), contents, rewrite);
      posix::sync_data(file.get(), rewrite);
    }
    fs::rename(rewrite, path);
  }
  posix::sync_directory(path_);
}

BatchWriter::BatchWriter(const Folder& folder, std::uint64_t id)
    : path_(folder.batch_path(id)), id_(id), file_(posix::open_private(path_, O_WRONLY | O_CREAT | O_EXCL | O_APPEND)) {
  try {
    posix::write_all_or_throw(file_.get(), kBatchMagic, path_);
    posix::sync_data(file_.get(), path_);
    posix::sync_directory(folder.path());
  } catch (const std::exception&) {
    std::error_code ignored;  // the first error is the one to report
    fs::remove(path_, ignored);
    throw;
  }
  bytes_ = kBatchMagic.size();
}

void BatchWriter::append(std::string_view record) {
  const std::string encoded = encode_record(record);
  try {
    posix::write_all_or_throw(file_.get(), encoded, path_);
    posix::sync_data(file_.get(), path_);
  } catch (const std::exception&) {
    if (::ftruncate(file_.get(), static_cast<off_t>(bytes_)) == 0) ::fdatasync(file_.get());
    throw;
  }
  bytes_ += encoded.size();
}

void Folder::remove_if_empty() const {
  if (!removable_) return;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(path_, error))
    if (entry.path().filename() != kLockName) return;
  if (error) return;
  // Unlinked while we hold its lock: a claim that opened it before sees it gone (st_nlink 0).
  fs::remove(path_ / kLockName, error);
  fs::remove(path_, error);
}

fs::path rejected_path(const fs::path& root) { return root / kRejectedName; }

void append_rejected(const fs::path& root, std::string_view line) {
  const fs::path path = rejected_path(root);
  const posix::FileDescriptor file = posix::open_private(path, O_WRONLY | O_CREAT | O_APPEND);
  // One writer at a time, so that lines of several uploaders never interleave.
  if (::flock(file.get(), LOCK_EX) != 0) posix::throw_errno(errno, "cannot lock " + path.string());
  posix::write_all_or_throw(file.get(), line, path);
  posix::sync_data(file.get(), path);
}

}  // namespace emi::aws::spool
