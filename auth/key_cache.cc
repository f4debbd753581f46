#include "auth/key_cache.h"

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <system_error>

#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

namespace infergate::auth {
namespace {

// Entries stay fresh this long: scitokens-cpp refetches an issuer's keys itself once they
// pass "next_update", and the gateway refreshes them far more often than this.
constexpr std::int64_t kFreshSeconds = 10LL * 365 * 24 * 3600;

class CacheDir {
 public:
  CacheDir() {
    const char* tmp = std::getenv("TMPDIR");
    const std::string parent = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
    remove_orphans(parent);
    std::string pattern =
        parent + "/" + std::string(kPrefix) + std::to_string(::getpid()) + ".XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) {
      path_ = pattern;
      ::mkdir((path_ + "/scitokens").c_str(), 0700);
      ::setenv("XDG_CACHE_HOME", path_.c_str(), 1);
    }
  }
  ~CacheDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  CacheDir(const CacheDir&) = delete;
  CacheDir& operator=(const CacheDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  static constexpr std::string_view kPrefix = "infergate-keys.";

  // The caches of gateways that died without cleaning up (SIGKILL, a crash): named by
  // their pid, ours, and that pid is gone.
  static void remove_orphans(const std::string& parent) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
      const std::string name = entry.path().filename().string();
      if (!name.starts_with(kPrefix)) continue;
      const pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + kPrefix.size()));
      struct stat st {};
      if (pid <= 0 || ::lstat(entry.path().c_str(), &st) != 0 || st.st_uid != ::geteuid() ||
          !S_ISDIR(st.st_mode)) {
        continue;
      }
      if (::kill(pid, 0) != 0 && errno == ESRCH) std::filesystem::remove_all(entry.path(), ec);
    }
  }

  std::string path_;
};

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

}  // namespace

const std::string& key_cache_dir() {
  static const CacheDir dir;
  return dir.path();
}

std::mutex& key_cache_mutex() {
  static std::mutex mu;
  return mu;
}

bool store_issuer_keys(const std::string& issuer, const std::string& jwks, std::string& error) {
  const std::string& dir = key_cache_dir();
  std::lock_guard lock(key_cache_mutex());
  if (dir.empty()) {
    error = "no key cache directory (mkdtemp failed)";
    return false;
  }
  // The file and table scitokens-cpp reads (scitokens_cache.cpp), and its entry format.
  const std::string file = dir + "/scitokens/scitokens_cpp.sqllite";
  sqlite3* raw = nullptr;
  const int opened = sqlite3_open(file.c_str(), &raw);
  std::unique_ptr<sqlite3, DbCloser> db(raw);
  if (opened != SQLITE_OK) {
    error = "cannot open " + file + ": " + sqlite3_errstr(opened);
    return false;
  }
  sqlite3_busy_timeout(db.get(), 1000);
  // Readers on the data plane never wait for this writer.
  sqlite3_exec(db.get(), "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
  if (sqlite3_exec(db.get(),
                   "CREATE TABLE IF NOT EXISTS keycache (issuer text UNIQUE PRIMARY KEY NOT "
                   "NULL, keys text NOT NULL)",
                   nullptr, nullptr, nullptr) != SQLITE_OK) {
    error = std::string("cannot make the key table: ") + sqlite3_errmsg(db.get());
    return false;
  }
  const std::int64_t until = static_cast<std::int64_t>(std::time(nullptr)) + kFreshSeconds;
  const std::string entry = "{\"jwks\":" + jwks + ",\"next_update\":" + std::to_string(until) +
                            ",\"expires\":" + std::to_string(until) + "}";
  sqlite3_stmt* raw_statement = nullptr;
  if (sqlite3_prepare_v2(db.get(), "INSERT OR REPLACE INTO keycache VALUES (?, ?)", -1,
                         &raw_statement, nullptr) != SQLITE_OK) {
    error = std::string("cannot store keys: ") + sqlite3_errmsg(db.get());
    return false;
  }
  std::unique_ptr<sqlite3_stmt, StatementFinalizer> statement(raw_statement);
  sqlite3_bind_text(statement.get(), 1, issuer.data(), static_cast<int>(issuer.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_text(statement.get(), 2, entry.data(), static_cast<int>(entry.size()),
                    SQLITE_TRANSIENT);
  if (sqlite3_step(statement.get()) != SQLITE_DONE) {
    error = std::string("cannot store keys: ") + sqlite3_errmsg(db.get());
    return false;
  }
  return true;
}

}  // namespace infergate::auth
