// SPDX-License-Identifier: LGPL-2.1-or-later
// The uploader's spool on disk: what survives a crash until Firehose confirmed it.
//
// A delivery stream's spool (its root) holds one folder per writer, "w-<pid>-<random>", each
// with a "lock" file its owner holds an flock on for as long as it runs, and numbered batch files
// ("<number>.batch": a magic line, then per record its length, the first bytes of its SHA-256,
// and the data). Several uploaders, in one process or many, share a root: each writes only into
// its own folder, and a folder whose lock nobody holds (its writer stopped or was killed) is
// claimed by the next uploader that looks, which sends what is left and removes it. Beside the
// folders, "rejected.jsonl" collects the records Firehose refused for good, with the error.
// Folders are 0700, files 0600, and nothing is opened through a symbolic link.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/posix_io.h"

namespace emi::aws::spool {

namespace fs = std::filesystem;

// $XDG_STATE_HOME/emi/firehose/<stream> (~/.local/state when XDG_STATE_HOME is unset).
fs::path default_root(const std::string& delivery_stream_name);

// The batch file format.
extern const std::string_view kBatchMagic;
constexpr std::size_t kRecordHeaderBytes = 8;  // length (32-bit little-endian) and checksum
std::string encode_record(std::string_view record);

struct ParsedBatch {
  std::vector<std::string> records;
  std::size_t damaged_bytes = 0;  // an unreadable tail: a write cut short by a crash, or damage
  bool foreign = false;           // doesn't start as our batch files do
};
ParsedBatch parse_batch(std::string_view contents);

// One writer's folder, locked while this object lives.
class Folder {
 public:
  // A new folder of our own below `root` (created 0700 when missing).
  static Folder create(const fs::path& root);
  // `folder` locked for us, when nobody else holds it; nullopt when someone does or it is gone.
  static std::optional<Folder> claim(const fs::path& folder);
  // The folders below `root` that hold a writer's spool (and `root` itself when an older emi
  // spooled into it directly), locked or not.
  static std::vector<fs::path> candidates(const fs::path& root);

  const fs::path& path() const { return path_; }
  fs::path batch_path(std::uint64_t id) const;
  // The batches it holds, oldest first; leftovers of rewrites a crash cut short are removed.
  std::vector<std::uint64_t> batch_ids() const;
  // A batch's records. A file that is not a batch is renamed "<name>.damaged" (foreign is set).
  ParsedBatch read_batch(std::uint64_t id) const;
  // Writes a batch with these records (atomically: a crash leaves the old file or the new one),
  // or removes it when there are none.
  void store_batch(std::uint64_t id, const std::vector<std::string>& records) const;
  // Removes the folder when it holds nothing but its lock (an older emi's root is kept).
  void remove_if_empty() const;

 private:
  Folder(fs::path path, posix::FileDescriptor lock, bool own_folder)
      : path_(std::move(path)), lock_(std::move(lock)), removable_(own_folder) {}
  fs::path path_;
  posix::FileDescriptor lock_;
  bool removable_;
};

// A batch file being written a record at a time: each record is synced before append()
// returns, and one that can't be written whole is cut off again, so the file holds whole records.
class BatchWriter {
 public:
  // Creates batch `id` in `folder`, holding just the magic (synced).
  BatchWriter(const Folder& folder, std::uint64_t id);
  // Throws std::system_error (ENOSPC, EFBIG, EIO...).
  void append(std::string_view record);
  std::uint64_t id() const { return id_; }

 private:
  fs::path path_;
  std::uint64_t id_;
  posix::FileDescriptor file_;
  std::uint64_t bytes_ = 0;  // whole records written
};

// Appends one line (a JSON object and '\n') to `root`/rejected.jsonl, synced; several writers
// may append at once.
void append_rejected(const fs::path& root, std::string_view line);
fs::path rejected_path(const fs::path& root);

}  // namespace emi::aws::spool
