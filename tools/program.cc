#include "program.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace datarax::tools {

namespace {

struct Fd {
  int fd = -1;
  ~Fd() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

}  // namespace

std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  const std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (std::size_t at = 0; at <= dirs.size();) {
    const std::size_t colon = std::min(dirs.find(':', at), dirs.size());
    const std::string dir = dirs.substr(at, colon - at);
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    at = colon + 1;
  }
  return "";
}

ProgramResult run_program(const std::vector<std::string>& args, std::string_view input,
                          std::chrono::milliseconds deadline, std::size_t max_output) {
  ProgramResult result;
  // stdin is a socket, so that a write to a program that has gone fails (EPIPE) instead of
  // raising SIGPIPE in this process (send with MSG_NOSIGNAL).
  int in_pair[2], out_pipe[2], err_pipe[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pair) != 0) return result;
  Fd in_parent{in_pair[0]}, in_child{in_pair[1]};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  Fd out_parent{out_pipe[0]}, out_child{out_pipe[1]};
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return result;
  Fd err_parent{err_pipe[0]}, err_child{err_pipe[1]};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_child.fd, 0);
  posix_spawn_file_actions_adddup2(&actions, out_child.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_child.fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);  // SIGPIPE, SIGXFSZ as the program expects them
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char* empty_env[] = {nullptr};
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), empty_env);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (spawned != 0) return result;
  in_child.close();
  out_child.close();
  err_child.close();
  ::fcntl(in_parent.fd, F_SETFL, O_NONBLOCK);
  if (input.empty()) in_parent.close();

  const auto end = std::chrono::steady_clock::now() + deadline;
  std::size_t sent = 0;
  bool killed = false;
  char buf[65536];
  while (out_parent.fd >= 0 || err_parent.fd >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    pollfd fds[3] = {{in_parent.fd, POLLOUT, 0}, {out_parent.fd, POLLIN, 0}, {err_parent.fd, POLLIN, 0}};
    if (::poll(fds, 3, static_cast<int>(std::min<std::int64_t>(left.count(), 1000))) < 0 && errno != EINTR) break;
    if (in_parent.fd >= 0 && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = ::send(in_parent.fd, input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || sent == input.size()) in_parent.close();
    }
    for (int i : {1, 2}) {
      Fd& fd = i == 1 ? out_parent : err_parent;
      if (fd.fd < 0 || !(fds[i].revents & (POLLIN | POLLERR | POLLHUP))) continue;
      const ssize_t n = ::read(fd.fd, buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        fd.close();
        continue;
      }
      if (n < 0) continue;
      std::string& to = i == 1 ? result.out : result.err;
      to.append(buf, static_cast<std::size_t>(n));
      if (i == 2 && to.size() > 4096) to.erase(0, to.size() - 4096);
      if (i == 1 && to.size() > max_output) {
        ::kill(pid, SIGKILL);
        killed = true;
        fd.close();
      }
    }
  }
  // Its output is closed; it must also exit by the deadline.
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, killed ? 0 : WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return result;
    if (!killed && std::chrono::steady_clock::now() >= end) result.timed_out = true;
    if (result.timed_out && !killed) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    if (!killed) ::usleep(10000);
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return result;
}

}  // namespace datarax::tools
