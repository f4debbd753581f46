// A child process for integration tests: started with arguments, its stdout and stderr
// captured line by line, waited on with deadlines, killed when the test ends. A report
// from a sanitizer in its output (the child built with -fsanitize=...) fails the
// running test when the Process is destroyed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace infergate::testing {

class Process {
 public:
  // Starts `path` with `args`. Output lines are kept (and echoed to the test's stderr
  // with a prefix when echo is true). `env`: "NAME=value" entries that the child gets on
  // top of (or instead of the same names in) this process's environment.
  Process(std::string path, std::vector<std::string> args, bool echo = true,
          std::vector<std::string> env = {});
  ~Process();  // SIGKILL if still running, then reaps

  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();

  // Waits until an output line contains `needle`; returns that line, or nullopt on
  // timeout or exit.
  std::optional<std::string> wait_for_line(const std::string& needle,
                                           std::chrono::milliseconds timeout);
  // Waits for a line "... listening on HOST:PORT" and returns PORT (0 on failure).
  int wait_for_port(const std::string& needle, std::chrono::milliseconds timeout);

  void signal(int sig);
  // Waits for exit; returns the exit code (128+signal if killed), nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  // Every line so far, stdout and stderr interleaved.
  std::vector<std::string> lines();

 private:
  void read_loop(int fd);

  std::string name_;
  pid_t pid_ = -1;
  bool echo_;
  std::optional<int> exit_code_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::string sanitizer_report_;  // the first line of one, if any
  int open_streams_ = 2;
  std::thread out_reader_;
  std::thread err_reader_;
};

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace infergate::testing
