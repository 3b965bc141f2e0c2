// Writing the files and folders a user names: whole or not at all, never over something that is
// not a regular file, and checked before the long work that produces them.
//
// Every write goes to a temporary next to its target, named ".<up to 32 bytes of the name>.datarax-
// tmp-<16 random hex digits>" (at most 62 bytes, whatever the target's name), which is fsynced and
// renamed over the target only when complete: readers see the old file or the new one, never a
// part, whatever happens in between (a full disk, Ctrl-C, kill -9, a crash). The writer holds an
// flock on its temporary until the rename; temporaries whose lock nobody holds (their writer died,
// on any host) are removed by the next writer in the same folder and by check_writable
// (remove_stale_temporaries); a live writer's never are.
// Errors are InvalidArgumentError naming the operation, the path and the OS's reason:
// `save_safetensors: "/dev/null": exists and is a character device, not a regular file`.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace datarax::io {

// A file being written through a temporary; commit() puts it in place. Destroyed before commit()
// (an exception, an early return), it removes its temporary and leaves the target as it was.
class AtomicFile {
 public:
  // Checks the target as check_writable does, removes stale temporaries in its folder, and creates
  // a new temporary next to it. `op` names the operation in messages.
  AtomicFile(std::string path, std::string op);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Writes every byte or throws (disk full, file size limit, I/O error); after a failed write the
  // file can only be abandoned.
  void write(std::span<const std::byte> bytes);
  void write(std::string_view text) { write(std::as_bytes(std::span<const char>(text.data(), text.size()))); }
  // Pushes what was written to the disk (fsync), without committing.
  void sync();
  // fsync, close, rename over the target, fsync the folder. Throws on any failure, leaving the
  // target as it was.
  void commit();

  const std::string& path() const { return path_; }
  // Where the contents go until commit(): for a program that writes the file itself, by name.
  const std::string& temp_path() const { return temp_; }
  std::uint64_t bytes_written() const { return written_; }

 private:
  std::string path_, op_, temp_;
  int fd_ = -1;
  std::uint64_t written_ = 0;
};

// Replaces `path` with what `fill` writes, atomically (an AtomicFile committed after fill).
void write_file_atomically(const std::string& path, std::string_view op,
                           const std::function<void(AtomicFile&)>& fill);

// Creates the folder `path` with what `fill` writes into the temporary folder it is given, then
// fsyncs every file and the folder and renames it to `path`, then fsyncs its parent. `path` must
// not exist yet. On any failure the temporary folder is removed and the error propagates.
void write_folder_atomically(const std::string& path, std::string_view op,
                             const std::function<void(const std::string& temp_folder)>& fill);

// Deletes the folder `path` so that it vanishes at once: renamed to a temporary of this library's
// naming (which the next writer in its folder removes, should this be cut short), then removed.
void remove_folder(const std::string& path, std::string_view op);

// Before long work: whether a file can be written at `path`. Throws when something other than a
// regular file is there (a folder, a device, a FIFO, a socket, a symbolic link), when its folder
// does not exist or is not a folder, or when a file cannot be created in it (a probe is created
// and removed). Removes the folder's stale temporaries first.
void check_writable(const std::string& path, std::string_view op);
// The same for a folder that will hold files: `path` is a folder, or can be created (with its
// parents) — it is created.
void check_writable_folder(const std::string& path, std::string_view op);

// Removes the temporaries of this library in `folder` (files or folders named
// ".<name>.datarax-tmp-<16 hex digits>") whose writer is gone: nobody holds their lock (see
// src/io/temporaries.h, which also says why one still being created is left for a minute); returns
// how many. Nothing else is touched: not a live writer's temporaries (of any host that shares the
// folder, where the file system's locks span hosts), not other files.
int remove_stale_temporaries(const std::string& folder);

}  // namespace datarax::io
