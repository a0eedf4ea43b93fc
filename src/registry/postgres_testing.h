// Test helper: a real PostgreSQL server for the unit tests of the PostgreSQL
// registry store and of what uses it. For unit tests only.
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace berth::testing {

// The PostgreSQL server the PostgreSQL cases run against: the one ctest's
// fixture started (its directory in $BERTH_TEST_POSTGRES_DIR), else a
// private one this process starts on first use and stops at exit, both
// with scripts/private_postgres.sh. Each test gets a new, empty database.
class TestPostgres {
 public:
  static TestPostgres& Get() {
    static TestPostgres instance;
    return instance;
  }
  // Why the PostgreSQL cases cannot run here (no server binaries), or "".
  const std::string& skip_reason() const { return skip_reason_; }
  const std::string& error() const { return error_; }

  // The URL of a new database, or "" (and error() says why).
  std::string CreateDatabase() {
    static std::atomic<int> counter{0};
    const std::string name = "t" + std::to_string(getpid()) + "_" + std::to_string(counter++);
    std::string url = Run("createdb '" + dir_.string() + "' " + name);
    if (url.empty()) error_ = "cannot create database " + name;
    return url;
  }

  // Drops the database `url` names, ending its connections (as a store that
  // went away would). False if the script failed.
  bool DropDatabase(const std::string& url) {
    const std::string name = url.substr(url.rfind('/') + 1);
    return Run("dropdb '" + dir_.string() + "' " + name) == "dropped";
  }

 private:
  TestPostgres() {
    if (const char* shared = std::getenv("BERTH_TEST_POSTGRES_DIR"); shared != nullptr && *shared) {
      dir_ = shared;
    } else {
      std::string tmpl = (std::filesystem::temp_directory_path() / "berth_pg_XXXXXX").string();
      if (mkdtemp(tmpl.data()) == nullptr) {
        error_ = "cannot create a temporary directory";
        return;
      }
      dir_ = tmpl;
      owned_ = true;
      Run("start '" + dir_.string() + "'");
    }
    skip_reason_ = ReadFile(dir_ / "skip");
    if (skip_reason_.empty() && ReadFile(dir_ / "url").empty()) {
      error_ = "no PostgreSQL server was started in " + dir_.string() + " (see its logs)";
    }
  }
  ~TestPostgres() {
    if (owned_) Run("stop '" + dir_.string() + "'");
  }

  static std::string ReadFile(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
  // The script's first line of output.
  static std::string Run(const std::string& args) {
    const std::string command = std::string(BERTH_SCRIPTS_DIR) + "/private_postgres.sh " + args;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return "";
    char line[512] = {};
    std::string out = std::fgets(line, sizeof(line), pipe) != nullptr ? line : "";
    while (std::fgets(line, sizeof(line), pipe) != nullptr) {
    }
    const int rc = pclose(pipe);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return rc == 0 ? out : "";
  }

  std::filesystem::path dir_;
  bool owned_ = false;
  std::string skip_reason_;
  std::string error_;
};

}  // namespace berth::testing
