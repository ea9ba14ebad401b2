// SPDX-License-Identifier: LGPL-2.1-or-later
// POSIX file I/O for files that hold user data and must survive a crash: an owned descriptor,
// one write-all, private files (0600) in private folders (0700) opened without following links,
// fsync of files and folders, and replace-by-rename. Shared by every writer in the plugin.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace emi::posix {

// Owns a file descriptor: closes it once.
class FileDescriptor {
 public:
  explicit FileDescriptor(int descriptor = -1) noexcept : descriptor_(descriptor) {}
  FileDescriptor(FileDescriptor&& other) noexcept : descriptor_(std::exchange(other.descriptor_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
      reset();
      descriptor_ = std::exchange(other.descriptor_, -1);
    }
    return *this;
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { reset(); }

  int get() const noexcept { return descriptor_; }
  explicit operator bool() const noexcept { return descriptor_ >= 0; }
  void reset() noexcept {
    if (descriptor_ >= 0) ::close(descriptor_);
    descriptor_ = -1;
  }

 private:
  int descriptor_;
};

[[noreturn]] inline void throw_errno(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), what);
}

// Writes all of `data`, through short writes and EINTR. 0, or the errno of the write that
// failed (ENOSPC, EFBIG, EIO...): what was written before it stays written.
inline int write_all(int descriptor, std::string_view data) noexcept {
  while (!data.empty()) {
    const ssize_t written = ::write(descriptor, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
  return 0;
}

// write_all, throwing std::system_error naming `path`.
inline void write_all_or_throw(int descriptor, std::string_view data, const std::filesystem::path& path) {
  if (const int error = write_all(descriptor, data); error != 0) throw_errno(error, "cannot write " + path.string());
}

// Opens `path` with O_CLOEXEC and O_NOFOLLOW (a link planted in its place is refused, not
// followed); a file it creates is 0600. Throws std::system_error naming the path.
inline FileDescriptor open_private(const std::filesystem::path& path, int flags) {
  const int descriptor = ::open(path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (descriptor < 0) throw_errno(errno, "cannot open " + path.string());
  return FileDescriptor(descriptor);
}

inline void sync_data(int descriptor, const std::filesystem::path& path) {
  if (::fdatasync(descriptor) != 0) throw_errno(errno, "cannot sync " + path.string());
}

// A created, renamed or removed file is only durable once its folder is synced too.
inline void sync_directory(const std::filesystem::path& directory) {
  const FileDescriptor descriptor = open_private(directory, O_RDONLY | O_DIRECTORY);
  if (::fsync(descriptor.get()) != 0) throw_errno(errno, "cannot sync " + directory.string());
}

// Creates `directory` and its missing parents, each created one 0700; an existing `directory`
// is left as it is unless `private_leaf`, which makes it 0700 too. Refuses a link in place of
// the leaf. Throws std::system_error.
inline void create_private_directories(const std::filesystem::path& directory, bool private_leaf = true) {
  std::filesystem::path partial;
  for (const std::filesystem::path& part : directory) {
    partial /= part;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) throw_errno(errno, "cannot create " + partial.string());
  }
  struct stat status {};
  if (::lstat(directory.c_str(), &status) != 0) throw_errno(errno, "cannot use " + directory.string());
  if (!S_ISDIR(status.st_mode)) throw_errno(ENOTDIR, "cannot use " + directory.string());
  if (private_leaf && (status.st_mode & 077) != 0 && status.st_uid == ::geteuid() &&
      ::chmod(directory.c_str(), 0700) != 0)
    throw_errno(errno, "cannot make " + directory.string() + " private");
}

// Replaces `path` with `contents` so that a crash leaves the old file or the new one, never a
// mix: written to `path`.tmp (0600), synced, renamed over `path`, the folder synced.
inline void replace_file(const std::filesystem::path& path, std::string_view contents) {
  std::filesystem::path temporary = path;
  temporary += ".tmp";
  {
    const FileDescriptor file = open_private(temporary, O_WRONLY | O_CREAT | O_TRUNC);
    write_all_or_throw(file.get(), contents, temporary);
    sync_data(file.get(), temporary);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) throw_errno(errno, "cannot rename " + temporary.string());
  sync_directory(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path());
}

}  // namespace emi::posix
