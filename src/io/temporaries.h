// Internal: the temporaries of datarax/io/file.h's writers — their names, the lock that says their
// writer is alive, and the clean-up of those whose writer is gone.
//
// A temporary is named ".<up to 32 bytes of the target's name>.datarax-tmp-<16 hex digits>": the
// same on every host, at most 62 bytes whatever the target's name (a legal 255-byte target name
// still gets a legal temporary), unique by its random part. Its writer holds an exclusive flock on
// it from the moment it has its final mode until it is renamed into place or removed. So a
// temporary is stale exactly when nobody holds its lock: the writer died (kill -9, a crash, a
// restarted pod under another host name), and the kernel released the lock with it. Liveness is
// never judged by a pid or a host name.
//
// Between creating the temporary and locking it there is a moment without the lock; a temporary
// is created with a marker mode (0200 for a file, 0500 for a folder: modes no umask gives) and
// gets its real mode only once locked, and a temporary in the marker mode is left alone for a
// minute (its writer may be between the two calls).
#pragma once

#include <string>
#include <string_view>

namespace datarax::io::detail {

// A temporary's path next to `target`.
std::string temp_name_for(const std::string& target);
// Whether `filename` (no folder) is named like a temporary of this library.
bool is_temp_name(std::string_view filename);

// A temporary held by this process: creates it (a file or a folder) and takes its lock; the
// destructor releases the lock (after the caller renamed or removed the temporary). Throws
// file_error naming `op` and `target` when it cannot be created.
class HeldTemp {
 public:
  enum class Kind { file, folder };
  HeldTemp(const std::string& target, Kind kind, std::string_view op);
  // Takes the lock of an existing folder `path` and gives it a temporary's name (for removal).
  static HeldTemp rename_folder(const std::string& path, std::string_view op);
  HeldTemp(HeldTemp&& other) noexcept;
  HeldTemp& operator=(HeldTemp&&) = delete;
  HeldTemp(const HeldTemp&) = delete;
  ~HeldTemp();

  const std::string& path() const { return path_; }
  // The open descriptor (write-only for a file, the folder's for a folder).
  int fd() const { return fd_; }
  // Closes the descriptor now (releasing the lock); returns close()'s result.
  int release();

 private:
  HeldTemp() = default;
  std::string path_;
  int fd_ = -1;
};

// Creates a temporary (a file: its descriptor is write-only; a folder: its descriptor is the
// folder's) next to `target`, locked and held by this process; `path` receives its name. The
// caller closes the descriptor once the temporary is renamed or removed, then calls forget_temp.
int create_held(const std::string& target, HeldTemp::Kind kind, std::string_view op, std::string& path);
void forget_temp(const std::string& path);

}  // namespace datarax::io::detail
